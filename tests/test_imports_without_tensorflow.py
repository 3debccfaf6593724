"""`cmsc_tf`, the model, the NumPy numerics and the image sets import on a machine without TensorFlow;
`import cmsc_tf` itself loads neither Keras nor TensorFlow; the default inference path (a preset's
dynamic-int8 LiteRT network, `Upscaler` and `cmsc-upscale`) runs with both blocked.

training.main runs on JAX where TensorFlow is not installed; a child process
blocks every `tensorflow` import (Keras on the JAX backend) and uses each
TensorFlow-free module once.
"""

import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from tests import training_helpers as helpers

NO_TENSORFLOW = helpers.BLOCK_TENSORFLOW + """
import numpy as np
import cmsc_tf
import cmsc_tf.models
from cmsc_tf.numerics import color, degradation, imresize_np
from cmsc_tf.io import image_sets, images, atomic
model = cmsc_tf.build_model("cmsc", num_features=4, num_stages=1, num_modules=1)
hr = np.random.default_rng(0).uniform(size=(12, 12))
assert degradation.degrade(degradation.modcrop(hr, 3), 3).shape == (12, 12)
assert cmsc_tf.imresize_np(hr, 0.5).shape == (6, 6)
(name, y), *_ = image_sets.read_luminance_set("skimage_test")
assert name == "astronaut" and y.ndim == 2 and y.dtype == np.uint8
print(sorted(m for m in sys.modules if m.startswith("tensorflow")))
"""


def test_tensorflow_free_modules_import_without_tensorflow():
    pytest.importorskip("jax")  # the Keras backend of a machine without TensorFlow
    env = dict(helpers.python_env(), KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW], cwd=helpers.REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"  # no tensorflow module was loaded


# `import cmsc_tf` loads neither Keras nor TensorFlow (cmsc-upscale --help answers
# without them), yet Keras finds cmsc_tf's classes whichever is imported next.
LIGHT_IMPORT = """
import sys
import cmsc_tf
assert not {"keras", "tensorflow"} & set(sys.modules), sorted(m for m in sys.modules if m.startswith(("keras", "tens")))
import %s
import keras
model = keras.saving.load_model("savedmodels/cmsc_compact.keras")
assert isinstance(model, cmsc_tf.CMSC) and keras.saving.get_registered_object("cmsc_tf>ConvUnit") is cmsc_tf.ConvUnit
print("ok")
"""


@pytest.mark.parametrize("first", ["keras", "tensorflow"])
def test_import_cmsc_tf_is_light_and_keras_still_finds_its_classes(first):
    """TensorFlow imports Keras while it loads: the classes are registered then too."""
    result = subprocess.run([sys.executable, "-c", LIGHT_IMPORT % first], cwd=helpers.REPO_ROOT,
                            env=helpers.python_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.split() == ["ok"], result.stderr[-3000:]


# The default path with every tensorflow and keras import failing: Upscaler on
# an array, cmsc-upscale on a file, and an unknown model refused listing the presets.
DEFAULT_PATH = helpers.BLOCK_TENSORFLOW_AND_KERAS + """
import numpy as np
import PIL.Image
from cmsc_tf import Upscaler
from cmsc_tf.deploy import cli
out_dir, image_path = sys.argv[1:]
upscaler = Upscaler("cmsc_compact")
assert upscaler.precision == "dynamic_int8"
np.save(out_dir + "/upscaler.npy", upscaler.upscale(image_path, 3))
assert cli.run_cli([image_path, "--scale", "2", "--out", out_dir]) == 0
assert cli.run_cli([image_path, "--scale", "2", "--model", "cmsc_tiny", "--out", out_dir]) == 2
print(sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras", "jax", "tf_keras"}))
"""


def test_default_path_runs_without_tensorflow_and_keras(tmp_path):
    from cmsc_tf.deploy.upscaler import Upscaler

    rgb = np.random.default_rng(1).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    PIL.Image.fromarray(rgb).save(tmp_path / "in.png")
    result = subprocess.run([sys.executable, "-c", DEFAULT_PATH, str(tmp_path), str(tmp_path / "in.png")],
                            cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "cmsc-upscale: error: cannot load model: model not found: cmsc_tiny" in result.stderr
    assert "the presets: cmsc_compact, cmsc_full, vdsr" in result.stderr
    # The same pixels as here, where TensorFlow may be loaded: nothing changes with it.
    upscaler = Upscaler("cmsc_compact")
    np.testing.assert_array_equal(np.load(tmp_path / "upscaler.npy"), upscaler.upscale(rgb, 3))
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / "in_x2.png")), upscaler.upscale(rgb, 2))
