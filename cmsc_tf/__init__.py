"""cmsc-tf: the Cascaded Multi-Scale Cross network (Hu et al. 2018) in Keras 3.

The model, its layers and its loss need Keras alone, so they import (and
register their Keras classes) on any Keras backend: `training.main` trains
them with JAX on machines without TensorFlow, fed by its NumPy source
(`training.data.source`). The other names below load on
first use: most need TensorFlow (image operations, export, `Upscaler`) or
pyrtools (metrics); `imresize_np` needs NumPy only.
"""

import importlib

from cmsc_tf.models.layers import (
    ConvUnit,
    MultiScaleCrossBlock,
    ResidualFeaturesSubnetwork,
    WeightedEnsemble,
)
from cmsc_tf.models.losses import HalfSquaredError, cascade_alpha, cascade_loss
from cmsc_tf.models.model import CMSC, VARIANTS, build_model, variant_config
from cmsc_tf.models.vdsr_weights import load_vdsr_weights

__version__ = "0.1.0"

# name -> module of the names loaded on first use.
_LAZY_NAMES = {
    "luminance": "cmsc_tf.numerics.color",
    "rgb2ycbcr": "cmsc_tf.numerics.color",
    "rgb2ycbcr_tf": "cmsc_tf.numerics.color_tf",
    "ycbcr2rgb": "cmsc_tf.numerics.color",
    "ycbcr2rgb_tf": "cmsc_tf.numerics.color_tf",
    "export_saved_model": "cmsc_tf.deploy.saved_model",
    "imresize_np": "cmsc_tf.numerics.imresize_np",
    "imresize_tf": "cmsc_tf.numerics.imresize_tf",
    "ifc": "cmsc_tf.eval.metrics",
    "psnr": "cmsc_tf.eval.metrics",
    "ssim": "cmsc_tf.eval.metrics",
    "Upscaler": "cmsc_tf.deploy.upscaler",
}


def __getattr__(name):
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cmsc_tf' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_NAMES))
