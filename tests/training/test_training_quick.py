"""quick.flags end to end: the README's main job, on the embedded skimage photographs.

One epoch of its four (75 steps): the model, data, optimizer, validation and
every export are quick.flags' own, and one epoch already clears bicubic by
about 0.2 dB or more at every scale (a full run: about 0.3 to 0.55 dB).
"""

import importlib.util
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import cmsc_tf  # noqa: F401  (registers the model classes for keras.models.load_model)
from tests import training_helpers as helpers


@pytest.mark.slow
def test_quick_flags_trains_beats_bicubic_and_exports(tmp_path):
    model_dir, export_prefix = tmp_path / "run", tmp_path / "savedmodels" / "quick"
    result = helpers.run_main(["--flagfile=quick.flags", f"--model_dir={model_dir}",
                               f"--export_prefix={export_prefix}", "--epochs=1"],
                              timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["step"] == 75
    # Held-out photographs (astronaut, chelsea, coins), protocol PSNR, every scale.
    for scale in ("2", "3", "4"):
        assert summary["psnr"][scale] > summary["bicubic"][scale] + 0.05, summary

    # The exported .keras and SavedModel compute the same function.
    x = np.random.default_rng(0).random((1, 24, 32, 1)).astype(np.float32)
    loaded = keras.models.load_model(export_prefix.with_suffix(".keras"))
    from_keras = keras.ops.convert_to_numpy(loaded(x, training=False)[-1])
    saved = tf.saved_model.load(str(export_prefix / "1"))  # TF-Serving layout, first version
    from_saved = saved.signatures["luminance"](bicubic_y=tf.constant(x))["final"].numpy()
    np.testing.assert_allclose(from_keras, from_saved, atol=1e-5)
    # ... and so does the float16 TFLite file, to float16 weight precision.
    from cmsc_tf.deploy.tflite import TFLiteNetwork

    from_tflite = TFLiteNetwork(export_prefix.parent / "quick_float16.tflite")(x[0])
    np.testing.assert_allclose(from_keras[0], from_tflite, atol=2e-3)
    assert (model_dir / "flags.txt").exists() and (model_dir / "training_log.csv").exists()
    if importlib.util.find_spec("tensorboard") is not None:
        assert list((model_dir / "tensorboard").rglob("events.out.tfevents.*"))
