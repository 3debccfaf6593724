"""`cmsc_tf`, the model, the NumPy numerics and the image sets import on a machine without TensorFlow;
`import cmsc_tf` itself loads neither Keras nor TensorFlow.

training.main runs on JAX where TensorFlow is not installed; a child process
blocks every `tensorflow` import (Keras on the JAX backend) and uses each
TensorFlow-free module once.
"""

import subprocess
import sys

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
