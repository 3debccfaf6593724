"""Reading images of every common pixel mode into uint8 arrays, and writing them atomically.

Arrays are uint8 ``[H, W]`` (gray), ``[H, W, 2]`` (gray + alpha),
``[H, W, 3]`` (RGB) or ``[H, W, 4]`` (RGBA). Palette images become RGB, or
RGBA when the palette has transparency; 16-bit images are scaled to 8 bits
(``round(v / 257)``, the map that sends 65535 to 255); CMYK, YCbCr, HSV and
CIELAB are converted to RGB (CIELAB colorimetrically, to sRGB); 32-bit float
images (mode ``F``) are refused. An animation or a multi-page file (GIF,
APNG, WebP, TIFF with more than one frame) is refused, not cut to its first
frame. EXIF orientation is applied on read
(a phone photo comes out upright); written files carry no EXIF.

Every image is checked against the pixel budget (:mod:`cmsc_tf.io.pixel_budget`)
from its header, before a single pixel is decoded: a refused image costs a
header read, however large it claims to be.

Every failure raises :class:`ImageError` with a one-line message that names
the file; nothing is ever left half-written.
"""

import os
import pathlib
import stat
import warnings

import numpy as np
import PIL.Image
import PIL.ImageOps

from cmsc_tf.io import atomic, pixel_budget

# Pillow modes whose pixels are 16- or 32-bit integers (16-bit PNG/TIFF gray).
_WIDE_INTEGER_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_DIRECT_MODES = ("L", "LA", "RGB", "RGBA")
# Other modes with an alpha channel (premultiplied, palette) -> the mode they become.
_ALPHA_MODES = {"La": "LA", "PA": "RGBA", "RGBa": "RGBA"}


class ImageError(ValueError):
    """A file that cannot be read or written as an image; the message names the file.

    A ValueError, so that every command line that reports bad input
    (`ValueError` -> one-line message) reports bad images too.
    """


class ImageTooLargeError(ImageError, pixel_budget.PixelBudgetError):
    """An image over the pixel budget: caught as an :class:`ImageError` and as a ``PixelBudgetError``."""


def wide_to_uint8(array):
    # 16-bit data: 0..65535 -> 0..255 with round(v / 257); the "I" mode of a
    # 16-bit PNG holds the same 0..65535 values in int32.
    return np.floor(np.clip(array.astype(np.float64), 0, 65535) / 257.0 + 0.5).astype(np.uint8)


def to_array(image, name="image"):
    """A PIL image -> uint8 array (see the module docstring for the mode rules)."""
    if min(image.size) < 1:
        raise ImageError(f"{name}: image is empty ({image.size[0]}x{image.size[1]} pixels)")
    mode = image.mode
    if mode in _WIDE_INTEGER_MODES:
        return wide_to_uint8(np.asarray(image))
    if mode == "F":
        raise ImageError(f"{name}: floating-point images (Pillow mode 'F') are not supported")
    try:
        if mode == "1":
            image = image.convert("L")
        elif mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif mode == "LAB":
            image = _lab_to_rgb(image)
        elif mode in _ALPHA_MODES:
            image = image.convert(_ALPHA_MODES[mode])
        elif mode not in _DIRECT_MODES:
            image = image.convert("RGB")
    except ValueError as error:  # Pillow: "conversion from X to Y not supported"
        raise ImageError(f"{name}: Pillow mode {mode!r} cannot be converted to RGB ({error})") from None
    return np.asarray(image, dtype=np.uint8)


def _lab_to_rgb(image):
    # CIELAB is not a tint of RGB: its bands are lightness and two opponent axes (the
    # second band's name, A, is no alpha). Through LittleCMS, as every Pillow version has it.
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    return ImageCms.applyTransform(image, transform)


def check_single_frame(image, name="image"):
    """Refuses an animation or a multi-page file (from its frame headers, no pixel decoded).

    Upscaling its first frame alone would silently drop the rest. A camera's
    MPO JPEG is taken whole: its first frame is the photograph, the others
    previews of it.
    """
    if getattr(image, "is_animated", False) and image.format != "MPO":
        raise ImageError(f"{name}: holds {image.n_frames} frames (an animation or a multi-page file); only "
                         "single images are upscaled: save the frame you want as a file of its own")


def _png_header_size(path):
    """(width, height) from a PNG's IHDR, or None: Pillow refuses zero-sized PNGs
    as "cannot identify", which would hide the real problem from the user."""
    with open(path, "rb") as f:
        header = f.read(24)
    if len(header) == 24 and header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR":
        return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    return None


def _check_size(width, height, name, check):
    """The input budget, then ``check(width, height)`` (e.g. the output's), before any pixel is decoded."""
    if min(width, height) < 1:
        raise ImageError(f"{name}: image is empty ({width}x{height} pixels)")
    try:
        pixel_budget.check_input_size(width, height, name=name)
        if check is not None:
            check(width, height)
    except pixel_budget.PixelBudgetError as error:
        message = str(error)
        raise ImageTooLargeError(message if message.startswith(str(name)) else f"{name}: {message}") from None


def from_pil(image, check=None, name="image"):
    """A PIL image -> upright uint8 array, refused from its size before decoding (as :func:`read_image`)."""
    _check_size(*image.size, name, check)
    check_single_frame(image, name)
    return to_array(PIL.ImageOps.exif_transpose(image), name)


def read_image(path, check=None):
    """Reads ``path`` into a uint8 array, upright; raises :class:`ImageError` naming the file.

    ``check(width, height)``, if given, runs on the header's size before
    decoding (after the input budget): a ``PixelBudgetError`` it raises (an
    output too large) becomes an :class:`ImageTooLargeError` naming the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(os.stat(path).st_mode):
        # Opening a FIFO blocks until a writer comes; a device may never end.
        raise ImageError(f"{path}: not a regular file (a FIFO, socket or device)")
    try:
        # Pillow's own bomb guard (PIL.Image.MAX_IMAGE_PIXELS, a process-wide
        # setting left as the user has it) warns in open() above its limit and
        # raises above twice that. Our budget is stricter than its default,
        # so the warning is silenced and our check decides, naming the size;
        # its error (a header beyond both) becomes our error too.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(path) as image:
                return _decode(image, path, check)
    except ImageError:
        raise
    except PIL.Image.DecompressionBombError as error:
        raise ImageTooLargeError(
            f"{path}: over the input limit ({pixel_budget.MAX_INPUT_PIXELS:,} pixels, "
            f"{pixel_budget.MAX_SIDE} per side): {error}"
        ) from None
    except PIL.UnidentifiedImageError:
        size = _png_header_size(path)
        if size is not None and min(size) == 0:
            raise ImageError(f"{path}: image is empty ({size[0]}x{size[1]} pixels)") from None
        raise ImageError(f"{path}: unsupported or unrecognised image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow reports truncated or damaged data with these (and zero sizes
        # in headers as SyntaxError / ValueError).
        raise ImageError(f"{path}: corrupt or unreadable image data ({error})") from None


def _decode(image, path, check):
    """An opened (header-only) image -> upright uint8 array, refused before decoding if over the budget."""
    _check_size(*image.size, path, check)
    check_single_frame(image, path)
    image.load()
    # In place: a rotated copy would double the decoded image's memory.
    PIL.ImageOps.exif_transpose(image, in_place=True)
    return to_array(image, path)


def output_format(path):
    """Pillow's format name for ``path``'s extension; raises :class:`ImageError` if none."""
    extension = pathlib.Path(path).suffix.lower()
    image_format = PIL.Image.registered_extensions().get(extension)
    if image_format is None or image_format not in PIL.Image.SAVE:
        raise ImageError(f"{path}: cannot write images with extension {extension or '(none)'!r}")
    return image_format


def write_image(path, array):
    """Writes a uint8 array to ``path`` atomically: a temporary file in the same folder, then a rename.

    JPEG cannot hold alpha, so an RGBA/LA array written as JPEG raises
    :class:`ImageError` rather than silently dropping the channel.
    """
    path = os.fspath(path)
    image_format = output_format(path)
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ImageError(f"{path}: can only write uint8 [H, W] or [H, W, C] arrays, got {array.dtype} {array.shape}")
    image = PIL.Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)
    if image_format == "JPEG" and image.mode in ("LA", "RGBA"):
        raise ImageError(f"{path}: JPEG cannot store the alpha channel; write PNG instead")
    try:
        with atomic.atomic_path(path) as temporary:
            image.save(temporary, format=image_format)
    except OSError as error:
        raise ImageError(f"{path}: cannot write ({error})") from None
