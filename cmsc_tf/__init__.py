"""cmsc-tf: the Cascaded Multi-Scale Cross network (Hu et al. 2018) in Keras 3."""

from cmsc_tf.layers import (
    ConvUnit,
    MultiScaleCrossBlock,
    ResidualFeaturesSubnetwork,
    WeightedEnsemble,
)
from cmsc_tf.losses import HalfSquaredError, cascade_alpha, cascade_loss
from cmsc_tf.model import CMSC, VARIANTS, build_model, variant_config
from cmsc_tf.vdsr_weights import load_vdsr_weights

__version__ = "0.1.0"
