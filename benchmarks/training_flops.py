"""CPU (or any device) training throughput against the hardware: a train step's GFLOP/s over the matmul rate.

Usage (from the repository root; any Keras backend):

    python benchmarks/training_flops.py                                   # compact CMSC, batch 32 and 64, XLA or not
    python benchmarks/training_flops.py --settings=32,32b,32bx            # float32 against mixed bfloat16
    python benchmarks/training_flops.py --model_overrides= --settings=32  # the paper's full CMSC
    KERAS_BACKEND=jax python benchmarks/training_flops.py --settings=32,64
    python benchmarks/training_flops.py --settings=32,32b,32t,32tb,32tbc  # beside the PyTorch peer (torch installed)
    python benchmarks/training_flops.py --settings=32b,32bk,32tbc,32tbck  # each beside its convolutions alone

Each setting (`--settings`: batch size, then `b` for the mixed_bfloat16
policy and `x` for XLA on TensorFlow, e.g. `32,32x,32b,64`) is the trainer's own model, loss and optimizer
(`training.lib.trainer.build_and_compile`, the paper's SGD with clipping)
calling `train_on_batch` on one fixed batch of 41x41 pairs: the compute
alone, no input cost (benchmarks/training_pipeline.py measures the feeds).
A `t` suffix times the peer instead: the same network and step written
in PyTorch (`benchmarks/cmsc_torch.py`, `train_step_function`), with `b`
for bfloat16 autocast and `c` for the channels_last layout.
A `k` suffix times the convolutions alone (ours or the peer's): the
network's convolutions in its kernel shapes and order with every
elementwise operation between them dropped (no batch norm, activation,
bias, merge, addition or average; `benchmarks/convolutions_alone.py`, and
`build_convolutions_alone` in `benchmarks/cmsc_torch.py`), trained with
the same optimizer, clipping and dtype on the half squared error of their
one output: the setting's time less its `k` time is what the work between
the convolutions costs.
A float32 matmul of the same backend is timed between the settings' steps,
round after round, so both see the same machine load; the best time of
each over `--rounds` is kept. FLOPs: 3 x the forward convolution FLOPs per
pair (forward, and the gradients with respect to inputs and weights), the
convolutions counted as in benchmarks/inference_flops.py.
"""

import pathlib
import sys
import time

from absl import app, flags

# `python benchmarks/<script>.py` puts benchmarks/ on the path, not the repository
# root that holds training/ (imported in main()).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

FLAGS = flags.FLAGS
flags.DEFINE_list("model_overrides", ["num_features=32", "num_stages=2", "num_modules=2"],
                  "key=value overrides of the cmsc variant (default: the shipped compact CMSC's shape; "
                  "empty: the paper's full CMSC).")
flags.DEFINE_list("settings", ["32", "32x", "64"], "Batch sizes to time, a b suffix for the mixed_bfloat16 "
                  "policy, an x suffix for XLA (TensorFlow); t: the PyTorch peer (tb bfloat16 autocast, c "
                  "channels_last); k: the network's convolutions alone.")
flags.DEFINE_integer("patch_size", 41, "Pair size (the paper's 41).")
flags.DEFINE_integer("steps", 3, "Timed steps per setting and round.")
flags.DEFINE_integer("rounds", 3, "Rounds (best of).")
flags.DEFINE_integer("matmul_size", 2048, "n of the n x n float32 matmul.")


def conv_flops_per_pixel(model):
    """2 x multiply-adds per output pixel of every stride-1 'same' convolution (HWIO kernels)."""
    return sum(2 * k.shape[0] * k.shape[1] * k.shape[2] * k.shape[3] for k in model.weights if len(k.shape) == 4)


def matmul_function(n):
    """A zero-argument function running one n x n float32 matmul to completion on the backend."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (keras.ops.convert_to_tensor(rng.standard_normal((n, n), np.float32)) for _ in range(2))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        product = tf.function(lambda: tf.linalg.matmul(a, b))
        return lambda: product().numpy()
    if keras.backend.backend() == "jax":
        import jax

        product = jax.jit(lambda x, y: x @ y)
        return lambda: product(a, b).block_until_ready()
    return lambda: keras.ops.convert_to_numpy(keras.ops.matmul(a, b))


def best(fn, repeats=1):
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import keras
    import numpy as np

    from cmsc_tf.models.dtype_policy import dtype_policy
    from cmsc_tf.models.losses import HalfSquaredError
    from cmsc_tf.models.model import build_model
    from training.lib import trainer
    from training.lib.config import TrainConfig
    from training.lib.flag_values import parse_overrides

    overrides = parse_overrides([o for o in FLAGS.model_overrides if o])
    rng = np.random.default_rng(0)
    runs = []
    for setting in FLAGS.settings:
        batch, xla, bf16 = int(setting.rstrip("bxtck")), "x" in setting, "b" in setting
        alone = "k" in setting
        if "t" in setting:
            from cmsc_torch import train_step_function  # benchmarks/, on the path as the script's folder

            step, _ = train_step_function(overrides, batch, FLAGS.patch_size, bfloat16=bf16,
                                          channels_last="c" in setting, convolutions_alone=alone)
            step()  # warm-up: oneDNN picks its kernels
            runs.append((setting, batch, step))
            continue
        policy = "mixed_bfloat16" if bf16 else "float32"
        config = TrainConfig(model_overrides=overrides, batch_size=batch, xla=xla, patch_size=FLAGS.patch_size,
                             dtype_policy=policy)
        with dtype_policy(policy):  # as trainer.run builds the model
            if alone:
                from convolutions_alone import convolutions_alone  # benchmarks/, as cmsc_torch above

                model = convolutions_alone(build_model("cmsc", **overrides), activation=None, use_bias=False)
                model.compile(trainer.build_optimizer(config), HalfSquaredError(config.loss_pixel_reduction),
                              jit_compile=trainer.jit_compile(config))
            else:
                model = trainer.build_and_compile(config)
        shape = (batch, FLAGS.patch_size, FLAGS.patch_size, 1)
        x, y = rng.random(shape, np.float32), rng.random(shape, np.float32)
        model.train_on_batch(x, y)  # traces / compiles
        runs.append((setting, batch, lambda model=model, x=x, y=y: model.train_on_batch(x, y)))
    matmul = matmul_function(FLAGS.matmul_size)
    matmul()
    matmul_s = float("inf")
    step_s = {setting: float("inf") for setting, *_ in runs}
    for _ in range(FLAGS.rounds):
        for setting, batch, step in runs:
            matmul_s = min(matmul_s, best(matmul, 3))
            step_s[setting] = min(step_s[setting], best(step, FLAGS.steps))
    for setting, _, step in runs:  # a diverged step (infinities, denormals) would time something else
        losses = np.asarray(keras.tree.flatten(step()), np.float64)
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError(f"setting {setting}: the loss is no longer finite ({losses})")
    matmul_rate = 2 * FLAGS.matmul_size ** 3 / matmul_s / 1e9
    keras_model = build_model("cmsc", **overrides)  # FLOPs and parameters, whichever settings ran
    flops_per_pair = 3 * conv_flops_per_pixel(keras_model) * FLAGS.patch_size ** 2
    print(f"cmsc {overrides or '(full)'}: {keras_model.count_params():,} parameters, "
          f"{flops_per_pair / 1e9:.3f} GFLOP per {FLAGS.patch_size}x{FLAGS.patch_size} training pair; "
          f"{keras.backend.backend()} backend")
    print(f"matmul float32 {FLAGS.matmul_size}^2: {matmul_rate:.1f} GFLOP/s (best of {3 * FLAGS.rounds * len(runs)})")
    print("| setting | s/step | pairs/s | GFLOP/s | / matmul |")
    print("| --- | --- | --- | --- | --- |")
    for setting, batch, *_ in runs:
        rate = batch * flops_per_pair / step_s[setting] / 1e9
        label = (f"batch {batch}" + (", PyTorch" if "t" in setting else "")
                 + ((", bf16 autocast" if "t" in setting else ", mixed bf16") if "b" in setting else "")
                 + (", channels_last" if "c" in setting else "") + (", XLA" if "x" in setting else "")
                 + (", convolutions alone" if "k" in setting else ""))
        print(f"| {label} | {step_s[setting]:.3f} | {batch / step_s[setting]:.1f} | {rate:.1f} | "
              f"{rate / matmul_rate:.2f} |")


if __name__ == "__main__":
    app.run(main)
