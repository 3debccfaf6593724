"""The exported SavedModel: layout, signatures against the Keras model, and the documented clients."""

import base64
import json
import os
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf

from cmsc_tf.numerics.color import rgb2ycbcr, ycbcr2rgb
from cmsc_tf.deploy.saved_model import export_saved_model, read_metadata
from cmsc_tf.numerics.imresize_np import imresize_np
from cmsc_tf.deploy.upscaler import Upscaler
from deploy_models import random_rgb, small_cmsc

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "serving.md"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = small_cmsc()
    base = tmp_path_factory.mktemp("savedmodels")
    path = export_saved_model(model, base, "tiny", version=3)
    return model, base, path, tf.saved_model.load(str(path))


def reference_upscale(model, rgb, scale):
    """The serving pipeline from the float64 NumPy references and the Keras model."""
    ycbcr = imresize_np(rgb2ycbcr(rgb.astype(np.float64) / 255), scale)
    y = model(ycbcr[None, ..., :1].astype(np.float32), training=False)[-1].numpy()[0]
    rgb_float = ycbcr2rgb(np.concatenate([y.astype(np.float64), ycbcr[..., 1:]], -1))
    return np.floor(rgb_float * 255 + 0.5).astype(np.uint8)


def assert_same_image(actual, expected):
    # float32 graph vs float64 reference: a rounding boundary may flip a pixel by one.
    assert actual.shape == expected.shape
    difference = np.abs(actual.astype(int) - expected)
    assert difference.max() <= 1
    assert np.mean(difference) < 0.01


def test_layout_is_versioned_atomic_and_carries_metadata(exported):
    model, base, path, _ = exported
    assert path == base / "tiny" / "3"
    assert sorted(os.listdir(base / "tiny")) == ["3"]  # no staging folder left behind
    assert (path / "saved_model.pb").is_file()
    assert read_metadata(path)["receptive_radius"] == model.receptive_radius == 12
    with pytest.raises(FileExistsError, match="already exists"):
        export_saved_model(model, base, "tiny", version=3)


def test_network_signature_reproduces_the_keras_model(exported):
    model, _, _, loaded = exported
    y = np.random.default_rng(0).uniform(size=(2, 19, 26, 1)).astype(np.float32)
    out = loaded.signatures["luminance"](bicubic_y=tf.constant(y))["final"].numpy()
    np.testing.assert_allclose(out, model(y, training=False)[-1].numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale,size", [(2.0, (26, 38)), (2.5, (33, 48))])
def test_serving_default_matches_the_reference_pipeline(exported, scale, size):
    model, _, _, loaded = exported
    rgb = random_rgb(13, 19, seed=4)
    out = loaded.signatures["serving_default"](images=tf.constant(rgb[None]), scale=tf.constant(scale))["images"]
    assert out.dtype == tf.uint8 and tuple(out.shape) == (1, *size, 3)  # ceil(13 * 2.5) = 33
    assert_same_image(out.numpy()[0], reference_upscale(model, rgb, scale))


def test_encoded_signature_takes_images_of_different_sizes(exported):
    model, _, _, loaded = exported
    images = [random_rgb(12, 9, seed=1), random_rgb(7, 16, seed=2)]
    encoded = [tf.io.encode_png(image).numpy() for image in images]
    out = loaded.signatures["upscale_encoded"](image_bytes=tf.constant(encoded), scale=tf.constant(2.0))
    for png, image in zip(out["png_bytes"].numpy(), images):
        assert_same_image(tf.io.decode_png(png).numpy(), reference_upscale(model, image, 2.0))


def test_out_of_range_scale_is_refused_with_a_message(exported):
    _, _, _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match="scale must be at most 8"):
        loaded.signatures["serving_default"](images=tf.zeros([1, 4, 4, 3], tf.uint8), scale=tf.constant(9.0))


def test_upscaler_on_the_savedmodel_gives_the_serving_pixels(exported):
    _, base, _, loaded = exported
    rgb = random_rgb(15, 11, seed=5)
    served = loaded.signatures["serving_default"](images=tf.constant(rgb[None]), scale=tf.constant(3.0))["images"]
    # The parent folder: the Upscaler picks the highest version, as TF-Serving does.
    assert_same_image(Upscaler(base / "tiny").upscale(rgb, 3.0), served.numpy()[0])


def documented_client(marker):
    """Executes the python block that follows ``<!-- client:marker -->`` in docs/serving.md."""
    text = DOCS.read_text()
    block = re.search(rf"<!-- client:{marker} -->\s*```python\n(.*?)```", text, re.S)
    assert block, f"docs/serving.md has no {marker} client block"
    namespace = {}
    exec(compile(block.group(1), str(DOCS), "exec"), namespace)
    return namespace


def check_inputs_against_signature(signature, tensors):
    """Names, dtypes and shapes of request tensors against the signature's input specs."""
    specs = signature.structured_input_signature[1]
    assert set(tensors) == set(specs)
    for name, value in tensors.items():
        assert value.dtype == specs[name].dtype, name
        assert specs[name].shape.is_compatible_with(value.shape), name


def test_documented_grpc_request_matches_the_signature(exported):
    tf_serving = pytest.importorskip("tensorflow_serving.apis.predict_pb2")  # noqa: F841
    model, _, _, loaded = exported
    client = documented_client("grpc")
    rgb = random_rgb(10, 14, seed=6)
    request = client["grpc_request"](rgb[None], 2.0, model="tiny")
    signature = loaded.signatures[request.model_spec.signature_name]
    tensors = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    check_inputs_against_signature(signature, tensors)
    outputs = signature(**tensors)
    assert set(request.output_filter) <= set(outputs)
    assert_same_image(outputs["images"].numpy()[0], reference_upscale(model, rgb, 2.0))


def rest_tensors(body, signature):
    """What TF-Serving's REST layer makes of a JSON body: tensors of the signature's dtypes.

    Columnar ("inputs"): each named value as it is. Row ("instances"): each
    name's values stacked over the rows, a new first dimension.
    """
    specs = signature.structured_input_signature[1]
    body = json.loads(json.dumps(body))
    if "inputs" in body:
        columns = body["inputs"]
    else:
        columns = {name: [row[name] for row in body["instances"]] for name in body["instances"][0]}
    tensors = {}
    for name, value in columns.items():
        if specs[name].dtype == tf.string:
            value = [base64.b64decode(v["b64"]) for v in value]
        tensors[name] = tf.constant(value, dtype=specs[name].dtype)
    return tensors


def test_documented_rest_bodies_match_the_signatures(exported):
    model, _, _, loaded = exported
    client = documented_client("rest")
    rgb = random_rgb(9, 12, seed=7)
    body = client["rest_request_body"](rgb[None], 2.0)
    signature = loaded.signatures[body["signature_name"]]
    tensors = rest_tensors(body, signature)
    check_inputs_against_signature(signature, tensors)
    assert_same_image(signature(**tensors)["images"].numpy()[0], reference_upscale(model, rgb, 2.0))

    body = client["rest_encoded_body"]([tf.io.encode_png(rgb).numpy()], 2.0)
    signature = loaded.signatures[body["signature_name"]]
    tensors = rest_tensors(body, signature)
    check_inputs_against_signature(signature, tensors)
    png = signature(**tensors)["png_bytes"].numpy()[0]
    assert_same_image(tf.io.decode_png(png).numpy(), reference_upscale(model, rgb, 2.0))


def test_documented_row_format_gives_each_image_its_own_scale(exported):
    model, _, _, loaded = exported
    images = [random_rgb(8, 11, seed=8), random_rgb(10, 6, seed=9)]
    body = documented_client("rest")["rest_encoded_rows"]([tf.io.encode_png(i).numpy() for i in images], [2.0, 3.0])
    signature = loaded.signatures[body["signature_name"]]
    tensors = rest_tensors(body, signature)
    assert tensors["scale"].shape == [2]  # what TF-Serving makes of the rows' scales
    check_inputs_against_signature(signature, tensors)
    pngs = signature(**tensors)["png_bytes"].numpy()
    for png, image, scale in zip(pngs, images, (2.0, 3.0)):
        assert_same_image(tf.io.decode_png(png).numpy(), reference_upscale(model, image, scale))


def test_serving_default_rows_share_one_scale(exported):
    model, _, _, loaded = exported
    signature = loaded.signatures["serving_default"]
    rgb = [random_rgb(7, 9, seed=10), random_rgb(7, 9, seed=11)]
    rows = {"instances": [{"images": image.tolist(), "scale": 2.5} for image in rgb]}
    out = signature(**rest_tensors(rows, signature))["images"].numpy()
    for upscaled, image in zip(out, rgb):
        assert_same_image(upscaled, reference_upscale(model, image, 2.5))
    rows["instances"][1]["scale"] = 3.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="image 1: scale 3 differs from the scale of image 0"):
        signature(**rest_tensors(rows, signature))


@pytest.mark.parametrize("scale", [[2.0, 2.0], [[2.0]]])
def test_a_scale_of_another_shape_is_refused_naming_it(exported, scale):
    encoded = tf.io.encode_png(random_rgb(5, 5)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"scale: one value, or one per image \(3 images\)"):
        exported[3].signatures["upscale_encoded"](image_bytes=tf.constant([encoded] * 3), scale=tf.constant(scale))


def test_committed_vdsr_savedmodel_is_the_public_vdsr(shared_dir):
    """savedmodels/vdsr/1 (in the repository) reproduces build_model('vdsr') with the public weights."""
    import cmsc_tf

    committed = pathlib.Path(__file__).resolve().parents[2] / "savedmodels" / "vdsr" / "1"
    model = cmsc_tf.load_vdsr_weights(
        cmsc_tf.build_model("vdsr"), str(shared_dir / "reference_models" / "vdsr_291_x234.npz")
    )
    y = np.random.default_rng(3).uniform(size=(1, 17, 23, 1)).astype(np.float32)
    out = tf.saved_model.load(str(committed)).signatures["luminance"](bicubic_y=tf.constant(y))["final"]
    np.testing.assert_allclose(out.numpy(), model(y, training=False).numpy(), rtol=0, atol=1e-5)
    assert read_metadata(committed)["receptive_radius"] == model.receptive_radius == 20


@pytest.fixture(scope="module")
def tiled(exported, tmp_path_factory):
    """The same model exported with 7-pixel tiles: every test image spans many tiles, borders included."""
    model = exported[0]
    path = export_saved_model(model, tmp_path_factory.mktemp("tiled"), "tiny", tile=7)
    return model, tf.saved_model.load(str(path))


def test_tiled_graph_gives_the_untiled_pixels(tiled):
    model, loaded = tiled
    rgb = np.stack([random_rgb(13, 19, seed=5), random_rgb(13, 19, seed=6)])
    out = loaded.signatures["serving_default"](images=tf.constant(rgb), scale=tf.constant(2.5))["images"].numpy()
    assert out.shape == (2, 33, 48, 3)
    for result, image in zip(out, rgb):
        assert_same_image(result, reference_upscale(model, image, 2.5))
    encoded = [tf.io.encode_png(image).numpy() for image in (rgb[0], rgb[1][:9, :16])]
    pngs = loaded.signatures["upscale_encoded"](image_bytes=tf.constant(encoded), scale=tf.constant(3.0))
    for png, image in zip(pngs["png_bytes"].numpy(), (rgb[0], rgb[1][:9, :16])):
        assert_same_image(tf.io.decode_png(png).numpy(), reference_upscale(model, image, 3.0))


def test_tiled_luminance_reproduces_the_keras_model(tiled):
    model, loaded = tiled
    y = np.random.default_rng(1).uniform(size=(2, 23, 30, 1)).astype(np.float32)
    out = loaded.signatures["luminance"](bicubic_y=tf.constant(y))["final"].numpy()
    np.testing.assert_allclose(out, model(y, training=False)[-1].numpy(), rtol=0, atol=1e-5)


def test_luminance_is_within_the_pixel_budget(exported):
    loaded = exported[3]
    # Shapes only: a [1, 1, 32769, 1] plane is over the side limit without being large.
    with pytest.raises(tf.errors.InvalidArgumentError, match="over the input limit"):
        loaded.signatures["luminance"](bicubic_y=tf.zeros([1, 1, 32769, 1]))


@pytest.mark.parametrize("tile", [0, 1025, 2.5])
def test_export_tile_is_bounded(exported, tmp_path, tile):
    with pytest.raises(ValueError, match="from 1 to 1024"):
        export_saved_model(exported[0], tmp_path, "tiny", tile=tile)
