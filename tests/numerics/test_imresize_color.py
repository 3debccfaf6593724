"""MATLAB-exact imresize and colour conversion, against real MATLAB output and hand-derived values."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from cmsc_tf.numerics import color, color_tf
from cmsc_tf.numerics.imresize_np import imresize_np, weight_matrix_np
from cmsc_tf.numerics.imresize_tf import imresize_tf, weight_matrix_tf


def _golden_files(shared_dir):
    files = sorted(pathlib.Path(shared_dir, "datasets", "matlab_golden", "Set5").glob("*.npz"))
    assert len(files) == 12, "expected 4 images x 3 scales of MATLAB golden output"
    return files


def _scale_of(path):
    return int(path.stem.rsplit("_x", 1)[1])


# --- NumPy reference against MATLAB -----------------------------------------


def test_numpy_imresize_and_rgb2ycbcr_match_matlab_golden(shared_dir):
    for path in _golden_files(shared_dir):
        golden = np.load(path)
        scale = _scale_of(path)
        rgb = golden["hr_rgb"].astype(np.float64) / 255
        hr_y = color.rgb2ycbcr(rgb)[..., 0] * 255
        np.testing.assert_allclose(hr_y, golden["hr_y"], rtol=0, atol=1e-10, err_msg=path.name)
        lr_y = imresize_np(golden["hr_y"], 1 / scale)
        np.testing.assert_allclose(lr_y, golden["lr_y"], rtol=0, atol=1e-10, err_msg=path.name)
        bicubic_y = imresize_np(golden["lr_y"], scale)
        np.testing.assert_allclose(bicubic_y, golden["bicubic_y"], rtol=0, atol=1e-10, err_msg=path.name)
        # Colour, [H, W, 3] through imresize then rgb2ycbcr.
        lr_ycbcr = color.rgb2ycbcr(imresize_np(rgb, 1 / scale))
        np.testing.assert_allclose(lr_ycbcr, golden["lr_ycbcr"], rtol=0, atol=1e-10, err_msg=path.name)


def test_x2_weights_hand_derived():
    # Kernel a=-0.5 at distances 1.75, 0.75, 0.25, 1.25: -0.0234375, 0.2265625,
    # 0.8671875, -0.0703125. Output 1 reads u=0.75, taps -1..2 mirror to 2,1,1,2.
    matrix = weight_matrix_np(4, 8, 2.0)
    np.testing.assert_allclose(matrix[0], [1.09375, -0.09375, 0, 0], atol=1e-15)
    # Output 3 reads u=1.75: taps 0..3 -> pixels 1,1,2,3.
    np.testing.assert_allclose(matrix[2], [0.203125, 0.8671875, -0.0703125, 0], atol=1e-15)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-15)


def test_shrinking_stretches_the_kernel():
    # Antialiasing at x1/2: output 9 (1-based) reads u = 9 / 0.5 - 0.5 = 17.5
    # with h(t) = 0.5 k(0.5 t), so input pixels 14..21 (1-based) contribute
    # 0.5 k at 0.5 |17.5 - tap| = 1.75, 1.25, 0.75, 0.25, ... (sum already 1).
    matrix = weight_matrix_np(32, 16, 0.5)
    half = [-0.01171875, -0.03515625, 0.11328125, 0.43359375]
    np.testing.assert_allclose(matrix[8, 13:21], half + half[::-1], atol=1e-15)
    assert np.count_nonzero(matrix[8]) == 8


def test_uint8_semantics():
    rng = np.random.default_rng(0)
    edge = np.zeros((6, 6), np.uint8)
    edge[:, 3:] = 255
    up = imresize_np(edge, 2.0)
    assert up.dtype == np.uint8 and up.shape == (12, 12)
    up_float = imresize_np(edge.astype(np.float64), 2.0)
    # The cubic kernel overshoots at an edge; uint8 clips, float keeps it.
    assert up_float.min() < 0 and up_float.max() > 255
    np.testing.assert_array_equal(up, np.floor(np.clip(up_float, 0, 255) + 0.5))
    # MATLAB rounds after each dimension: rows (equal scales -> rows first), then columns.
    image = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    rows = np.floor(np.clip(np.tensordot(weight_matrix_np(7, 5, 0.7), image.astype(np.float64), ([1], [0])), 0, 255) + 0.5)
    both = np.tensordot(weight_matrix_np(9, 7, 0.7), rows, ([1], [1])).transpose(1, 0, 2)
    np.testing.assert_array_equal(imresize_np(image, 0.7), np.floor(np.clip(both, 0, 255) + 0.5))


def test_constant_image_any_scale_and_output_shape():
    image = np.full((13, 7), 0.25)
    for scale in (0.3, 1 / 3, 0.5, 1.0, 1.7, 2, 3.5):
        out = imresize_np(image, scale)
        assert out.shape == (int(np.ceil(13 * scale)), int(np.ceil(7 * scale)))
        np.testing.assert_allclose(out, 0.25, atol=1e-14)
    assert imresize_np(image, output_shape=(20, 3)).shape == (20, 3)
    np.testing.assert_array_equal(imresize_np(image[..., None], 2).shape, (26, 14, 1))


def test_smaller_scale_dimension_goes_first():
    # With output_shape (5, 14) from (10, 7): columns grow (x2), rows shrink
    # (x0.5), so rows go first; check against the explicit order.
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (10, 7), dtype=np.uint8)
    rows_first = np.floor(np.clip(weight_matrix_np(10, 5, 0.5) @ image, 0, 255) + 0.5)
    expected = np.floor(np.clip(rows_first @ weight_matrix_np(7, 14, 2.0).T, 0, 255) + 0.5)
    np.testing.assert_array_equal(imresize_np(image, output_shape=(5, 14)), expected)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({}, ValueError),
        ({"scale": 2, "output_shape": (4, 4)}, ValueError),
        ({"scale": 0}, ValueError),
        ({"scale": -2}, ValueError),
        ({"scale": float("nan")}, ValueError),
        ({"scale": 1e6}, ValueError),
        ({"output_shape": (0, 4)}, ValueError),
        ({"output_shape": (4,)}, ValueError),
    ],
)
def test_numpy_bad_arguments_get_clear_errors(kwargs, error):
    with pytest.raises(error, match="imresize"):
        imresize_np(np.zeros((8, 8)), **kwargs)


def test_numpy_bad_images_get_clear_errors():
    with pytest.raises(ValueError, match="imresize_np"):
        imresize_np(np.zeros((2, 3, 4, 5)), 2)
    with pytest.raises(TypeError, match="imresize_np"):
        imresize_np(np.zeros((4, 4), bool), 2)


# --- TensorFlow twin -----------------------------------------------------------


def test_tf_imresize_matches_matlab_golden_to_float32_precision(shared_dir):
    for path in _golden_files(shared_dir):
        golden = np.load(path)
        scale = _scale_of(path)
        lr_y = imresize_tf(golden["hr_y"][..., None], 1 / scale).numpy()[..., 0]
        # 0..255 values: float32 carries ~7 significant digits.
        np.testing.assert_allclose(lr_y, golden["lr_y"], rtol=0, atol=2e-4, err_msg=path.name)
        bicubic_y = imresize_tf(golden["lr_y"][None, ..., None], scale).numpy()[0, ..., 0]
        np.testing.assert_allclose(bicubic_y, golden["bicubic_y"], rtol=0, atol=2e-4, err_msg=path.name)
        rgb = golden["hr_rgb"].astype(np.float32) / 255
        lr_ycbcr = color_tf.rgb2ycbcr_tf(imresize_tf(rgb, 1 / scale)).numpy()
        np.testing.assert_allclose(lr_ycbcr, golden["lr_ycbcr"], rtol=0, atol=2e-6, err_msg=path.name)


@pytest.mark.parametrize("in_length, scale", [(13, 0.37), (12, 1 / 3), (9, 1.7), (20, 0.25), (5, 4.0), (1, 3.0)])
def test_tf_weight_matrix_matches_numpy(in_length, scale):
    out_length = int(np.ceil(in_length * scale))
    expected = weight_matrix_np(in_length, out_length, scale)
    got = weight_matrix_tf(tf.constant(in_length), tf.constant(out_length), tf.constant(scale, tf.float64))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-7)


def test_tf_dynamic_shapes_tensor_scale_and_tf_data():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float32), tf.TensorSpec([], tf.float64)])
    def down_up(image, scale):
        return imresize_tf(imresize_tf(image, 1 / scale), scale)

    rng = np.random.default_rng(2)
    for shape, scale in (((24, 18, 1), 3.0), ((16, 20, 2), 2.0), ((12, 12, 1), 4.0)):
        image = rng.random(shape)
        expected = np.stack([imresize_np(imresize_np(image[..., c], 1 / scale), scale) for c in range(shape[2])], -1)
        got = down_up(tf.constant(image, tf.float32), tf.constant(scale, tf.float64)).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)

    images = tf.data.Dataset.from_tensor_slices(rng.random((3, 10, 10, 1)).astype(np.float32))
    shrunk = images.map(lambda im: imresize_tf(im, output_shape=tf.constant([5, 4])))
    for item in shrunk:
        assert item.shape == (5, 4, 1)


def test_tf_output_shape_and_batch():
    rng = np.random.default_rng(3)
    batch = rng.random((2, 11, 8, 3))
    got = imresize_tf(tf.constant(batch, tf.float32), output_shape=(7, 13)).numpy()
    expected = np.stack([imresize_np(b, output_shape=(7, 13)) for b in batch])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_tf_bad_arguments_get_clear_errors():
    image = tf.zeros((8, 8, 1))
    with pytest.raises(ValueError, match="imresize_tf"):
        imresize_tf(image)
    with pytest.raises(ValueError, match="imresize_tf"):
        imresize_tf(tf.zeros((8, 8)), 2.0)
    with pytest.raises(ValueError, match="imresize_tf"):
        imresize_tf(image, 0.0)
    with pytest.raises(ValueError, match="imresize_tf"):
        imresize_tf(image, output_shape=(0, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="scale must be positive"):
        imresize_tf(image, tf.constant(-1.0, tf.float64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds"):
        imresize_tf(image, tf.constant(1e5, tf.float64))


# --- colour ------------------------------------------------------------------


def test_rgb2ycbcr_uint8_hand_values():
    pixels = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]]], np.uint8)
    ycbcr = color.rgb2ycbcr(pixels)
    assert ycbcr.dtype == np.uint8
    # Y = 16 + 65.481 R/255 + ...; white -> 16 + 219 = 235; red -> 81.481 -> 81;
    # blue -> 16 + 24.966 = 40.966 -> 41; Cb of blue: 128 + 112 = 240.
    np.testing.assert_array_equal(ycbcr[0, :, 0], [16, 235, 81, 41])
    np.testing.assert_array_equal(ycbcr[0, 3], [41, 240, 110])
    np.testing.assert_array_equal(ycbcr[0, 0], [16, 128, 128])


def test_ycbcr_round_trip():
    rng = np.random.default_rng(4)
    rgb = rng.random((5, 6, 3))
    np.testing.assert_allclose(color.ycbcr2rgb(color.rgb2ycbcr(rgb)), rgb, atol=1e-12)
    np.testing.assert_allclose(color_tf.ycbcr2rgb_tf(color_tf.rgb2ycbcr_tf(rgb)).numpy(), rgb, atol=1e-5)
    rgb8 = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    back = color.ycbcr2rgb(color.rgb2ycbcr(rgb8))
    assert back.dtype == np.uint8
    assert np.abs(back.astype(int) - rgb8).max() <= 2  # two roundings of a contracting map


def test_luminance_rule():
    rng = np.random.default_rng(5)
    gray = rng.integers(0, 256, (4, 5), dtype=np.uint8)
    np.testing.assert_array_equal(color.luminance(gray), gray)  # no 16..235 compression
    np.testing.assert_array_equal(color.luminance(gray[..., None]), gray)
    np.testing.assert_array_equal(color.luminance(np.stack([gray, gray * 0], -1)), gray)  # gray + alpha
    rgb = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (4, 5, 1), dtype=np.uint8)], -1)
    expected = np.floor(16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255 + 0.5)
    np.testing.assert_array_equal(color.luminance(rgb), expected)
    np.testing.assert_array_equal(color.luminance(rgba), expected)
    with pytest.raises(TypeError, match="uint8"):
        color.luminance(rgb.astype(np.float32))
    with pytest.raises(ValueError, match="luminance"):
        color.luminance(np.zeros((4, 5, 6), np.uint8))
