"""Building blocks of CMSC.

Reference: Y. Hu, X. Gao, J. Li, Y. Huang, H. Wang, "Single Image
Super-Resolution via Cascaded Multi-Scale Cross Network", arXiv:1802.08808,
2018. Section III-A (the MSC module, Eq. 1-2) and III-B (the residual-features
learning subnetwork, Eq. 3).
"""

import keras

from cmsc_tf.models.batch_norm import BatchNormalization
from cmsc_tf.models.serialization import constructor_config

ACTIVATIONS = ("leaky_relu", "relu")


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {ACTIVATIONS}, got {activation!r}"
        )


def _make_activation(activation, negative_slope, name, dtype):
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(
            negative_slope=negative_slope, name=name, dtype=dtype
        )
    return keras.layers.ReLU(name=name, dtype=dtype)


def _make_conv(filters, kernel_size, use_bias, kernel_initializer, name, dtype):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        name=name,
        dtype=dtype,
    )


def _unit_config(layer, **options):
    """Stores the options of the convolution units that ``layer`` is or builds (part of its
    ``# === Config ===``) and returns them as the units' keyword arguments."""
    options["kernel_initializer"] = keras.initializers.get(options["kernel_initializer"])
    for name, value in options.items():
        setattr(layer, name, value)
    return {**options, "dtype": layer.dtype_policy}


@keras.saving.register_keras_serializable(package="cmsc_tf")
class ConvUnit(keras.layers.Layer):
    """Convolution, optional batch norm, optional activation.

    The feature-extraction network (Eq. 4), the entry convolution `f_q` of each
    subnetwork, and the plain modules of VDSR-style stacks are all this unit.
    A convolution followed by batch norm carries no bias: BN's offset replaces it.
    """

    def __init__(
        self,
        num_features, kernel_size=3,
        batch_norm=True, activation="leaky_relu", negative_slope=0.2, use_bias=True,
        kernel_initializer="he_normal", sync_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if activation is not None:
            _check_activation(activation)

        # === Config ===
        self.num_features = num_features
        self.kernel_size = kernel_size
        _unit_config(self, batch_norm=batch_norm, activation=activation, negative_slope=negative_slope,
                     use_bias=use_bias, kernel_initializer=kernel_initializer, sync_batch_norm=sync_batch_norm)

        # === Layers ===
        self.conv = _make_conv(
            num_features,
            kernel_size,
            use_bias and not batch_norm,
            self.kernel_initializer,
            "conv",
            self.dtype_policy,
        )
        self.norm = (
            BatchNormalization(
                synchronized=sync_batch_norm, name="bn", dtype=self.dtype_policy
            )
            if batch_norm
            else None
        )
        self.act = (
            _make_activation(activation, negative_slope, "act", self.dtype_policy)
            if activation is not None
            else None
        )

    def build(self, input_shape):
        self.conv.build(input_shape)
        out_shape = self.conv.compute_output_shape(input_shape)
        if self.norm is not None:
            self.norm.build(out_shape)
        self.built = True

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        if self.norm is not None:
            x = self.norm(x, training=training)
        if self.act is not None:
            x = self.act(x)
        return x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), **constructor_config(self)}


@keras.saving.register_keras_serializable(package="cmsc_tf")
class MultiScaleCrossBlock(keras.layers.Layer):
    """The multi-scale cross (MSC) module of Fig. 3b, Eq. 1 and Eq. 2.

    Two residual branches `H1`, `H2` (conv + BN + act + conv + BN) with kernel
    sizes `kernel_sizes[0]` and `kernel_sizes[1]` work on branch inputs `a`, `b`;
    the merge-and-run mapping adds their average `m = (a + b) / 2` to each.

    - ordinary module (`fused=False`): returns `[act(H1(a) + m), act(H2(b) + m)]`
      (the grey "+" of Fig. 3 sits between BN and the activation);
    - last module of a subnetwork (`fused=True`, Eq. 2): returns the single
      tensor `H1(a) + H2(b) + m`, followed by the activation only when
      `fused_activation=True` (Eq. 2 shows none).

    With equal kernel sizes this is the merge-and-run (MR) block of Fig. 3a.
    Call it on `[a, b]`, or on one tensor to feed it to both branches (the
    first module of a subnetwork).
    """

    def __init__(
        self,
        num_features=64, kernel_sizes=(3, 5), fused=False, fused_activation=False,
        batch_norm=True, activation="leaky_relu", negative_slope=0.2, kernel_initializer="he_normal",
        sync_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_activation(activation)
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if len(kernel_sizes) != 2 or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(
                "kernel_sizes must be two odd positive integers (left, right), "
                f"got {kernel_sizes}"
            )

        # === Config ===
        self.num_features = num_features
        self.kernel_sizes = kernel_sizes
        self.fused = fused
        self.fused_activation = fused_activation
        unit_args = _unit_config(self, batch_norm=batch_norm, activation=activation, negative_slope=negative_slope,
                                 kernel_initializer=kernel_initializer, sync_batch_norm=sync_batch_norm)

        # === Layers ===
        self.branches = []
        for side, kernel_size in zip(("left", "right"), kernel_sizes):
            # Each branch is conv-BN-act-conv-BN; the final activation comes
            # after the merge-and-run addition, so it lives in this block.
            first = ConvUnit(num_features, kernel_size, name=f"{side}_1", **unit_args)
            second = ConvUnit(num_features, kernel_size, name=f"{side}_2", **{**unit_args, "activation": None})
            self.branches.append((first, second))
        use_output_act = (not fused) or fused_activation
        self.output_acts = (
            [
                _make_activation(activation, negative_slope, f"act_{i}", self.dtype_policy)
                for i in range(1 if fused else 2)
            ]
            if use_output_act
            else []
        )

    def _split(self, inputs):
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 2:
                raise ValueError(
                    f"{self.name} takes one tensor or a pair [a, b], got {len(inputs)}"
                )
            return inputs[0], inputs[1]
        return inputs, inputs

    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and isinstance(
            input_shape[0], (list, tuple)
        ):
            shape = tuple(input_shape[0])
        else:
            shape = tuple(input_shape)
        feature_shape = shape[:-1] + (self.num_features,)
        for first, second in self.branches:
            first.build(shape)
            second.build(feature_shape)
        self.built = True

    def call(self, inputs, training=None):
        a, b = self._split(inputs)
        merged = (a + b) * 0.5
        residuals = [
            second(first(x, training=training), training=training)
            for x, (first, second) in zip((a, b), self.branches)
        ]
        if self.fused:
            out = residuals[0] + residuals[1] + merged
            return self.output_acts[0](out) if self.output_acts else out
        return [act(r + merged) for act, r in zip(self.output_acts, residuals)]

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and isinstance(
            input_shape[0], (list, tuple)
        ):
            input_shape = input_shape[0]
        shape = tuple(input_shape[:-1]) + (self.num_features,)
        return shape if self.fused else [shape, shape]

    def get_config(self):
        return {**super().get_config(), **constructor_config(self)}


@keras.saving.register_keras_serializable(package="cmsc_tf")
class ResidualFeaturesSubnetwork(keras.layers.Layer):
    """One stage of the cascade: the RFL subnetwork of Fig. 2b and Eq. 3.

    `D_q = G_last(G(...G(f_q(D_{q-1})))) + D_{q-1}`: an entry unit `f_q`
    (conv + BN + act), `num_modules` modules, and the identity skip from the
    input to the output (residual-features learning).

    - `module_type="msc"`: the modules are MSC blocks with `kernel_sizes`; the
      first gets `f_q(D_{q-1})` on both branches, the last is the fused form.
    - `module_type="conv"`: the modules are plain conv (+ BN) + act units of
      `kernel_sizes[0]`, as in VDSR.

    `entry_conv=False` drops `f_q` (the basic nets of Fig. 4 and VDSR start
    their modules right after the feature extraction); `residual=False` drops
    the identity skip (CMSC_NRS). The skip needs input and output of the same
    width, which `num_features` guarantees inside CMSC.
    """

    def __init__(
        self,
        num_features=64, num_modules=5, module_type="msc", kernel_sizes=(3, 5),
        entry_conv=True, residual=True, fused_activation=False,
        batch_norm=True, activation="leaky_relu", negative_slope=0.2, use_bias=True,
        kernel_initializer="he_normal", sync_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if module_type not in ("msc", "conv"):
            raise ValueError(f"module_type must be 'msc' or 'conv', got {module_type!r}")
        if int(num_modules) < 1:
            raise ValueError(f"num_modules must be >= 1, got {num_modules}")

        # === Config ===
        self.num_features = num_features
        self.num_modules = int(num_modules)
        self.module_type = module_type
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.entry_conv = entry_conv
        self.residual = residual
        self.fused_activation = fused_activation
        unit_args = _unit_config(
            self, batch_norm=batch_norm, activation=activation, negative_slope=negative_slope,
            use_bias=use_bias, kernel_initializer=kernel_initializer, sync_batch_norm=sync_batch_norm)

        # === Layers ===
        self.entry = (
            ConvUnit(num_features, 3, name="entry", **unit_args) if entry_conv else None
        )
        if module_type == "msc":
            self.blocks = [
                MultiScaleCrossBlock(
                    num_features, self.kernel_sizes, fused=(i == self.num_modules - 1),
                    fused_activation=fused_activation, name=f"module_{i + 1}",
                    # its convolutions' bias is ConvUnit's default: the block has no use_bias
                    **{k: v for k, v in unit_args.items() if k != "use_bias"},
                )
                for i in range(self.num_modules)
            ]
        else:
            self.blocks = [
                ConvUnit(
                    num_features, self.kernel_sizes[0], name=f"module_{i + 1}", **unit_args
                )
                for i in range(self.num_modules)
            ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.residual and shape[-1] is not None and shape[-1] != self.num_features:
            raise ValueError(
                f"{self.name}: the identity skip needs {self.num_features} input "
                f"channels, got {shape[-1]}"
            )
        if self.entry is not None:
            self.entry.build(shape)
            shape = shape[:-1] + (self.num_features,)
        for block in self.blocks:
            block.build(shape)
            shape = shape[:-1] + (self.num_features,)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        if self.entry is not None:
            x = self.entry(x, training=training)
        for block in self.blocks:
            x = block(x, training=training)
        return x + inputs if self.residual else x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_features,)

    def get_config(self):
        return {**super().get_config(), **constructor_config(self)}


@keras.saving.register_keras_serializable(package="cmsc_tf")
class WeightedEnsemble(keras.layers.Layer):
    """The learned weighted average of the stage predictions (Eq. 7).

    `y = sum_q w_q y_q` with one trainable scalar per stage, initialised to
    `1 / num_inputs` (the paper is silent on the initialisation) and left
    unconstrained, as in the paper.
    """

    def __init__(self, num_inputs, **kwargs):
        super().__init__(**kwargs)
        if int(num_inputs) < 1:
            raise ValueError(f"num_inputs must be >= 1, got {num_inputs}")

        # === Config ===
        self.num_inputs = int(num_inputs)

    def build(self, input_shape):
        self.stage_weights = self.add_weight(
            name="stage_weights",
            shape=(self.num_inputs,),
            initializer=keras.initializers.Constant(1.0 / self.num_inputs),
            trainable=True,
        )
        self.built = True

    def call(self, inputs):
        if len(inputs) != self.num_inputs:
            raise ValueError(
                f"{self.name} expects {self.num_inputs} inputs, got {len(inputs)}"
            )
        weights = keras.ops.cast(self.stage_weights, inputs[0].dtype)
        out = inputs[0] * weights[0]
        for i in range(1, self.num_inputs):
            out = out + inputs[i] * weights[i]
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), **constructor_config(self)}
