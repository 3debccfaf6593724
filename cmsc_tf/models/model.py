"""The CMSC model (Fig. 2, Eq. 4-7) and the variants the paper compares.

Reference: Y. Hu, X. Gao, J. Li, Y. Huang, H. Wang, "Single Image
Super-Resolution via Cascaded Multi-Scale Cross Network", arXiv:1802.08808,
2018. Section III-C; variants from Section IV-C (Tables I-II, Fig. 4-7).

Every variant is a named set of constructor arguments of the one `CMSC`
class; `build_model(variant, **overrides)` is the public entry point.
"""

import keras

from cmsc_tf.models.layers import ConvUnit, ResidualFeaturesSubnetwork, WeightedEnsemble
from cmsc_tf.models.serialization import constructor_arguments, constructor_config

# The basic nets of Fig. 4: conv, 4 stacked modules, conv to residual, + x.
_BASIC_NET = dict(
    num_stages=1,
    num_modules=4,
    stage_entry_conv=False,
    residual_features=False,
    cascaded_supervision=False,
)

# variant name -> (defining constructor arguments, which of those stay overridable)
_VARIANTS = {
    "cmsc": ({}, ()),
    "cmsc_sr": ({"shared_reconstruction": True}, ()),
    "cmsc_ns": ({"cascaded_supervision": False}, ()),
    "cmsc_nrs": ({"cascaded_supervision": False, "residual_features": False}, ()),
    "pmsc": (
        {"num_stages": 1, "num_modules": 15, "cascaded_supervision": False},
        ("num_modules",),
    ),
    "mr_l3r3": ({**_BASIC_NET, "kernel_sizes": (3, 3)}, ("num_modules",)),
    "mr_l5r5": ({**_BASIC_NET, "kernel_sizes": (5, 5)}, ("num_modules",)),
    "msc_l3r5": ({**_BASIC_NET, "kernel_sizes": (3, 5)}, ("num_modules",)),
    "msc_l3r7": ({**_BASIC_NET, "kernel_sizes": (3, 7)}, ("num_modules",)),
    # VDSR (Kim et al. 2016): conv+ReLU, 18 conv+ReLU, conv to residual, + x.
    "vdsr": (
        {
            "num_stages": 1,
            "num_modules": 18,
            "module_type": "conv",
            "kernel_sizes": (3, 3),
            "stage_entry_conv": False,
            "residual_features": False,
            "cascaded_supervision": False,
            "batch_norm": False,
            "activation": "relu",
            "use_bias": False,
        },
        ("num_modules",),
    ),
}

VARIANTS = tuple(_VARIANTS)


@keras.saving.register_keras_serializable(package="cmsc_tf")
class CMSC(keras.Model):
    """Cascaded multi-scale cross network, as a functional Keras model.

    Input: the bicubic-upsampled low-resolution luminance `x`, shape
    `(batch, height, width, 1)`, float in [0, 1], any height and width.

    - `D_0 = F(x)`: conv + BN + act (Eq. 4).
    - `num_stages` cascaded RFL subnetworks (Eq. 3, 5).
    - `y_q = R_q(D_q) + x`: one 3x3 conv to one channel per stage, no BN, no
      activation, plus the input (global residual learning, Eq. 6).
    - `y = sum_q w_q y_q` with learned weights (Eq. 7).

    With `cascaded_supervision=True` the outputs are `[y_1, ..., y_S, y]`,
    named `stage_1` .. `stage_S` and `final`; otherwise the model has one
    output `final`, the last stage's prediction.

    Training targets: `fit` takes one HR image per sample and broadcasts it
    to every output, so a dataset of `(x, y)` pairs trains all of them.
    """

    def __init__(
        self,
        # The cascade (Fig. 2).
        num_stages=3, num_modules=5, num_features=64, kernel_sizes=(3, 5), module_type="msc",
        residual_features=True, stage_entry_conv=True, cascaded_supervision=True,
        shared_reconstruction=False,
        # The units and modules inside each stage.
        batch_norm=True, activation="leaky_relu", negative_slope=0.2, fused_activation=False,
        use_bias=True, kernel_initializer="he_normal", reconstruction_initializer="he_normal",
        sync_batch_norm=False,
        **kwargs,
    ):
        _check_positive_int("num_stages", num_stages)
        _check_positive_int("num_modules", num_modules)
        _check_positive_int("num_features", num_features)
        kernel_sizes = tuple(int(k) for k in kernel_sizes)

        # === Layers ===
        unit_args = dict(batch_norm=batch_norm, activation=activation, negative_slope=negative_slope,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         sync_batch_norm=sync_batch_norm)
        inputs = keras.Input(shape=(None, None, 1), name="bicubic_y")
        features = ConvUnit(num_features, 3, name="feature_extraction", **unit_args)(
            inputs
        )

        def make_reconstruction(name):
            # float32 so that outputs and the loss stay float32 under mixed
            # precision; the layer is one 1-channel conv, so this costs nothing.
            return keras.layers.Conv2D(
                1,
                3,
                padding="same",
                use_bias=use_bias,
                kernel_initializer=reconstruction_initializer,
                name=name,
                dtype="float32",
            )

        shared = make_reconstruction("reconstruction") if shared_reconstruction else None
        predictions = []
        for q in range(1, num_stages + 1):
            features = ResidualFeaturesSubnetwork(
                num_features=num_features, num_modules=num_modules, module_type=module_type,
                kernel_sizes=kernel_sizes, entry_conv=stage_entry_conv, residual=residual_features,
                fused_activation=fused_activation, name=f"subnetwork_{q}", **unit_args,
            )(features)
            if not cascaded_supervision and q < num_stages:
                continue
            reconstruction = shared or make_reconstruction(f"reconstruction_{q}")
            name = f"stage_{q}" if cascaded_supervision else "final"
            predictions.append(
                keras.layers.Add(name=name, dtype="float32")(
                    [reconstruction(features), inputs]
                )
            )
        if cascaded_supervision:
            final = WeightedEnsemble(num_stages, name="final", dtype="float32")(
                predictions
            )
            outputs = predictions + [final]
        else:
            outputs = predictions[0]

        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_stages = int(num_stages)
        self.num_modules = int(num_modules)
        self.num_features = int(num_features)
        self.kernel_sizes = kernel_sizes
        self.module_type = module_type
        self.residual_features = residual_features
        self.stage_entry_conv = stage_entry_conv
        self.cascaded_supervision = cascaded_supervision
        self.shared_reconstruction = shared_reconstruction
        self.batch_norm = batch_norm
        self.activation = activation
        self.negative_slope = negative_slope
        self.fused_activation = fused_activation
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.reconstruction_initializer = reconstruction_initializer
        self.sync_batch_norm = sync_batch_norm

    @property
    def convs_per_module(self):
        return 2 if self.module_type == "msc" else 1

    @property
    def depth(self):
        """Convolutions on the longest input-to-output path (Eq. 9)."""
        per_stage = int(self.stage_entry_conv) + self.convs_per_module * self.num_modules
        return per_stage * self.num_stages + 2

    @property
    def receptive_radius(self):
        """Pixels of context on each side that one output pixel depends on.

        Tiled inference needs a halo at least this wide to be exact.
        """
        widest = max(self.kernel_sizes) if self.module_type == "msc" else self.kernel_sizes[0]
        per_module = self.convs_per_module * (widest // 2)
        per_stage = int(self.stage_entry_conv) + self.num_modules * per_module
        return 1 + self.num_stages * per_stage + 1

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(
            x=x,
            y=self._broadcast_target(y, y_pred),
            y_pred=y_pred,
            sample_weight=sample_weight,
            training=training,
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(
            x, self._broadcast_target(y, y_pred), y_pred, sample_weight
        )

    @staticmethod
    def _broadcast_target(y, y_pred):
        # One HR image supervises every stage and the ensemble (Eq. 8).
        if isinstance(y_pred, (list, tuple)) and not isinstance(y, (list, tuple, dict)):
            if y is not None:
                return [y] * len(y_pred)
        return y

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **constructor_config(self)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, name):
        """The shipped Keras model ``name`` (any of ``cmsc_tf.list_presets()``), as keras-hub's ``from_preset``.

        Loads the preset's ``.keras`` file (:mod:`cmsc_tf.models.presets`),
        uncompiled, in safe mode (no code runs from the file).
        """
        from cmsc_tf.models import presets

        if not presets.is_preset(name):
            raise ValueError(f"unknown preset {name!r}; the presets are {', '.join(presets.PRESETS)}")
        model = keras.saving.load_model(presets.preset_path(name, "keras"), compile=False, safe_mode=True)
        if not isinstance(model, cls):
            raise TypeError(f"preset {name!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def _same_value(a, b):
    # kernel_sizes=[3, 3] and (3, 3) name the same model.
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return tuple(a) == tuple(b)
    return a == b


def _check_positive_int(name, value):
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


_CONSTRUCTOR_ARGS = (*constructor_arguments(CMSC), "name")


def variant_config(variant, **overrides):
    """The constructor arguments of `variant`, with `overrides` applied.

    Overrides that would change what the variant is (for example
    `num_stages` of `vdsr`, or `kernel_sizes` of `mr_l3r3`) are rejected.
    """
    if variant not in _VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    defining, sweepable = _VARIANTS[variant]
    for key in overrides:
        if key not in _CONSTRUCTOR_ARGS:
            raise ValueError(
                f"unknown override {key!r} for variant {variant!r}; valid overrides: "
                f"{', '.join(_CONSTRUCTOR_ARGS)}"
            )
        if key in defining and key not in sweepable and not _same_value(overrides[key], defining[key]):
            raise ValueError(
                f"variant {variant!r} is defined by {key}={defining[key]!r}; overriding "
                f"it would make another model. Pick the variant that has "
                f"{key}={overrides[key]!r}, or build from 'cmsc' with explicit overrides."
            )
    config = {**defining, **overrides}
    config.setdefault("name", variant)
    return config


def build_model(variant="cmsc", **overrides):
    """Builds a CMSC-family model by variant name; see `VARIANTS`.

    >>> model = build_model("cmsc", num_features=32, num_stages=2)
    """
    return CMSC(**variant_config(variant, **overrides))


def final_output(outputs):
    """The final prediction among a model's outputs: ``final`` if named, else the last one.

    CMSC's outputs are a dict (``stage_1`` .. ``stage_S``, ``final``) or one
    tensor; foreign models (a plain Keras model, a SavedModel signature) may
    return a list or a dict with a single entry. Every deployment path takes
    the prediction through this one rule.
    """
    if isinstance(outputs, dict):
        if "final" in outputs:
            return outputs["final"]
        if len(outputs) != 1:
            raise ValueError(f"the model has outputs {sorted(outputs)}; name the prediction 'final'.")
        return next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)):
        return outputs[-1]
    return outputs
