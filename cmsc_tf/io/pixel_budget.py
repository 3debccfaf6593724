"""The one pixel budget of every input and output path (CLI, Upscaler, evaluation, SavedModel).

A request is refused, before anything of its size is allocated, when an
input image or the output it asks for is larger than these limits. Inputs
are measured from their header (before decoding), outputs from the input
size and the scale. The limits bound the memory of one request: the largest
output is 64 Mpx of uint8 RGB (192 MB) plus the float32 luminance planes of
one tile, whatever the image.
"""

# Longest side of any image in or out (MATLAB imresize's index arithmetic and
# the PNG/JPEG encoders are safe below it).
MAX_SIDE = 1 << 15
# Pixels of one input image (e.g. 8192 x 8192).
MAX_INPUT_PIXELS = 8192 * 8192
# Pixels of one output image (e.g. 8192 x 8192: a 4000 x 4000 photograph at x2 fits).
MAX_OUTPUT_PIXELS = 8192 * 8192


class PixelBudgetError(ValueError):
    """An image, or the output it asks for, exceeds the pixel budget."""


def check_input_size(width, height, name="image"):
    """Raises PixelBudgetError when a `width` x `height` input is over the budget."""
    if width < 1 or height < 1:
        raise PixelBudgetError(f"{name}: empty image ({width}x{height})")
    if max(width, height) > MAX_SIDE or width * height > MAX_INPUT_PIXELS:
        raise PixelBudgetError(
            f"{name}: {width}x{height} pixels is over the input limit "
            f"({MAX_INPUT_PIXELS:,} pixels, {MAX_SIDE} per side)")


def check_output_size(width, height, name="output"):
    """Raises PixelBudgetError when a `width` x `height` output is over the budget."""
    if max(width, height) > MAX_SIDE or width * height > MAX_OUTPUT_PIXELS:
        raise PixelBudgetError(
            f"{name}: {width}x{height} pixels is over the output limit "
            f"({MAX_OUTPUT_PIXELS:,} pixels, {MAX_SIDE} per side); use a smaller scale or image")
