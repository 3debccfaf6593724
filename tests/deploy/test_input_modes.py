"""Every kind of image the Upscaler takes: odd Pillow modes, animations, and a fuzz of its PIL and
array entry points (issue 23, points 7 and the fuzz).

The contract: a uint8 result of the right shape, or one line of the project's errors
(``ImageError`` for an image that cannot be used, ``PixelBudgetError`` for one too large),
never another exception.
"""

import math

import numpy as np
import PIL.Image
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmsc_tf.deploy import cli
from cmsc_tf.deploy.upscaler import Upscaler
from cmsc_tf.io import images, pixel_budget
from deploy_models import bicubic_cmsc


@pytest.fixture(scope="module")
def identity():
    # The network returns its input: the result is bicubic, so flat colours stay flat.
    return Upscaler(bicubic_cmsc(), tile=8)


def lab_bytes(lightness, a, b):
    """Pillow's 8-bit CIELAB encoding: L* scaled to 0..255, a* and b* offset by 128."""
    return round(lightness * 255 / 100), round(a) + 128, round(b) + 128


# CIELAB (D50, the ICC connection space) of sRGB colours, from the CIE formulas.
LAB_COLOURS = [
    ((100, 0, 0), (255, 255, 255), 2),
    ((0, 0, 0), (0, 0, 0), 2),
    ((50, 0, 0), (119, 119, 119), 1),  # L* = 50 is Y = 0.184, sRGB 119
    ((54.29, 80.81, 69.89), (255, 0, 0), 8),  # sRGB red; 8 bits of L*, a*, b* move it a few levels
]


def test_a_lab_tiff_comes_out_in_its_srgb_colours(identity, tmp_path):
    image = PIL.Image.new("LAB", (8 * len(LAB_COLOURS), 8))
    for i, (lab, _, _) in enumerate(LAB_COLOURS):
        image.paste(lab_bytes(*lab), (8 * i, 0, 8 * i + 8, 8))
    image.save(tmp_path / "lab.tif")

    from_path = identity.upscale(tmp_path / "lab.tif", 2)
    with PIL.Image.open(tmp_path / "lab.tif") as opened:
        assert opened.mode == "LAB"
        from_pil = np.asarray(identity.upscale(opened, 2))

    assert from_path.shape == (16, 16 * len(LAB_COLOURS), 3)  # RGB, not the RGBA it was written as
    np.testing.assert_array_equal(from_pil, from_path)
    for i, (_, rgb, tolerance) in enumerate(LAB_COLOURS):
        centre = from_path[8, 16 * i + 8].astype(int)
        assert np.abs(centre - rgb).max() <= tolerance, (i, centre)


@pytest.mark.parametrize("mode,value,rgb", [
    ("CMYK", (255, 0, 0, 0), (0, 255, 255)),      # cyan ink
    ("CMYK", (0, 0, 0, 255), (0, 0, 0)),          # black ink
    ("CMYK", (0, 0, 0, 0), (255, 255, 255)),      # no ink
    ("YCbCr", (128, 128, 128), (128, 128, 128)),  # JPEG's full-range YCbCr: neutral chroma is grey
    ("I;16", 200 * 257, 200),                     # 16-bit gray: round(v / 257)
    ("I", 70000, 255),                            # 32-bit gray beyond 16 bits: clipped
    ("I", -5, 0),
])
def test_odd_modes_give_the_same_colour_from_a_path_and_a_pil_image(identity, tmp_path, mode, value, rgb):
    path = tmp_path / f"{mode.replace(';', '')}.tif"
    PIL.Image.new(mode, (6, 5), value).save(path)
    with PIL.Image.open(path) as opened:
        from_pil = np.asarray(identity.upscale(opened, 2))
    from_path = identity.upscale(path, 2)

    np.testing.assert_array_equal(from_pil, from_path)
    expected = np.broadcast_to(np.asarray(rgb, np.uint8), from_path.shape)
    assert from_path.shape[:2] == (10, 12)
    np.testing.assert_array_equal(from_path, expected)


def test_a_float_image_is_refused_in_one_line_on_every_entry(identity, tmp_path):
    path = tmp_path / "float.tif"
    PIL.Image.new("F", (6, 5), 0.5).save(path)
    with pytest.raises(images.ImageError, match=rf"^{path}: floating-point images \(Pillow mode 'F'\)"):
        identity.upscale(path, 2)
    with PIL.Image.open(path) as opened, pytest.raises(images.ImageError, match=r"^image: floating-point"):
        identity.upscale(opened, 2)
    with pytest.raises(images.ImageError, match=r"^image: expected a uint8, uint16 or bool array, got float32"):
        identity.upscale(np.full((5, 6), 0.5, np.float32), 2)


def animation(path, frames=3, **options):
    pictures = [PIL.Image.new("RGB", (8, 6), (60 * i, 0, 0)) for i in range(frames)]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], **options)
    return path


@pytest.mark.parametrize("name", ["anim.gif", "anim.png", "anim.webp", "pages.tif"])
def test_an_animation_is_refused_not_cut_to_its_first_frame(identity, tmp_path, capsys, name):
    path = animation(tmp_path / name)
    message = "holds 3 frames (an animation or a multi-page file); only single images are upscaled"
    with pytest.raises(images.ImageError, match=rf"^{path}: " + message.replace("(", r"\(").replace(")", r"\)")):
        identity.upscale(path, 2)
    with PIL.Image.open(path) as opened, pytest.raises(images.ImageError, match=r"^image: holds 3 frames"):
        identity.upscale(opened, 2)

    model = tmp_path / "m.keras"
    bicubic_cmsc().save(model)
    out = tmp_path / "out"
    code = cli.run_cli([str(path), "--scale", "2", "--model", str(model), "--out", str(out)])

    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"cmsc-upscale: error: {path}: {message}")
    assert not out.exists() or not any(out.iterdir())


def test_a_still_gif_is_upscaled(identity, tmp_path):
    path = animation(tmp_path / "still.gif", frames=1)
    assert identity.upscale(path, 2).shape == (12, 16, 3)


# ---------------------------------------------------------------------------
# Fuzz: random PIL images and arrays
# ---------------------------------------------------------------------------

# Pillow mode -> channels of the result (0: [H, W]); "F" is refused.
MODE_CHANNELS = {"1": 0, "L": 0, "I": 0, "I;16": 0, "I;16B": 0, "P": 3, "LA": 2, "La": 2, "PA": 4,
                 "RGB": 3, "RGBX": 3, "RGBA": 4, "RGBa": 4, "CMYK": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "F": None}
SCALES = st.sampled_from([1.0, 1.5, 2.0, 3.3])


def expected_shape(height, width, channels, scale):
    out = (math.ceil(height * scale), math.ceil(width * scale))
    return out if channels == 0 else (*out, channels)


def check_result(result, shape):
    result = np.asarray(result)
    assert result.dtype == np.uint8 and result.shape == shape


def check_refusal(error, prefix):
    assert isinstance(error, (images.ImageError, pixel_budget.PixelBudgetError)), repr(error)
    assert "\n" not in str(error) and str(error).startswith(prefix), str(error)


@st.composite
def pil_images(draw):
    mode = draw(st.sampled_from(sorted(MODE_CHANNELS)))
    width, height = draw(st.integers(0, 9)), draw(st.integers(0, 9))
    size = len(PIL.Image.new(mode, (1, 1)).tobytes()) * width * height  # every byte pattern: NaN, inf in "F"
    image = PIL.Image.frombytes(mode, (width, height), draw(st.binary(min_size=size, max_size=size)))
    if mode == "P" and draw(st.booleans()):
        image.info["transparency"] = draw(st.integers(0, 255))
    return image


def test_random_pil_images_give_a_result_or_one_clear_line(identity):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(image=pil_images(), scale=SCALES)
    def fuzz(image, scale):
        channels = MODE_CHANNELS[image.mode]
        if image.mode == "P" and "transparency" in image.info:
            channels = 4
        try:
            result = identity.upscale(image, scale)
        except Exception as error:  # noqa: BLE001 (the type is the point)
            assert channels is None or min(image.size) == 0, repr(error)
            check_refusal(error, "image: ")
            return
        assert isinstance(result, PIL.Image.Image)
        check_result(result, expected_shape(image.size[1], image.size[0], channels, scale))

    fuzz()


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.bool_, np.float32, np.float64, np.int64, np.int8]))
    ndim = draw(st.integers(1, 4))
    shape = [draw(st.integers(0, 7)) for _ in range(ndim)]
    if ndim == 3:
        shape[2] = draw(st.integers(1, 5))
    if draw(st.integers(0, 5)) == 0:
        # A giant that costs nothing: one element, broadcast (zero strides).
        shape[:2] = draw(st.sampled_from([(20000, 20000), (1, 40000), (9000, 9000)]))
        return np.broadcast_to(np.zeros((), dtype), shape)
    values = draw(st.lists(st.sampled_from([0, 1, 255, 65535, -3, 0.5, np.nan, np.inf, -np.inf]),
                           min_size=1, max_size=4))
    with np.errstate(invalid="ignore", over="ignore"):
        flat = np.resize(np.array(values, np.float64), int(np.prod(shape)))
        return flat.astype(dtype).reshape(shape)


def test_random_arrays_give_a_result_or_one_clear_line(identity):
    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(array=arrays(), scale=SCALES)
    def fuzz(array, scale):
        usable = (array.dtype in (np.uint8, np.uint16, np.bool_) and array.ndim in (2, 3)
                  and (array.ndim == 2 or array.shape[2] <= 4) and min(array.shape[:2]) > 0)
        fits = max(array.shape[:2]) <= 7  # the giants are all over the budget
        try:
            result = identity.upscale(array, scale)
        except Exception as error:  # noqa: BLE001 (the type is the point)
            assert not (usable and fits), repr(error)
            check_refusal(error, "image: " if not usable else "")
            return
        assert usable and fits
        check_result(result, expected_shape(*array.shape[:2], array.shape[2] if array.ndim == 3 else 0, scale))

    fuzz()
