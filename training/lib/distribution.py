"""Data-parallel training on the backend Keras runs on: `tf.distribute` or `keras.distribution`.

`--strategy` means the same on every backend:
- default: one device (on TensorFlow, the default strategy; a single GPU is used).
- mirrored: every local accelerator (without any, every logical CPU device),
  one global batch split across them. TensorFlow: MirroredStrategy; JAX:
  `keras.distribution.DataParallel`, which shards each batch over the devices
  and computes one gradient and one set of batch statistics over the global
  batch (BN is then synchronised by construction).
- multi_worker: several machines, from the TF_CONFIG environment variable
  (TensorFlow: MultiWorkerMirroredStrategy).
- tpu: a Cloud TPU through TensorFlow (`--tpu`).
"""

import contextlib
import dataclasses
import os

# Keras is imported where it is used: training.main's flags read STRATEGIES
# (through training.lib.config) before the backend loads.
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


@dataclasses.dataclass
class Distribution:
    """How a run spreads over devices: the scope to build the model in, and the data feed."""

    name: str
    num_replicas: int
    is_chief: bool
    scope: object  # () -> context manager
    strategy: object = None  # the tf.distribute strategy (TensorFlow backend)

    def feed(self, source, first_step, last_step):
        """The batches of steps [first_step, last_step) of `source`, as this backend takes them."""
        import keras

        if keras.backend.backend() == "tensorflow":
            from training.lib.data.tf_dataset import training_dataset

            return training_dataset(source, first_step, last_step)
        from training.lib.data.source import batches, prefetched

        return prefetched(batches(source, first_step, last_step))


def make(name, tpu="", batch_size=None):
    """The Distribution called `name` on the current backend (see STRATEGIES)."""
    import keras

    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(name, tpu)
    if backend == "jax":
        return _jax(name, batch_size)
    if name != "default":
        raise ValueError(f"--strategy={name} needs the tensorflow or jax backend, not {backend}")
    return Distribution(name, 1, True, contextlib.nullcontext)


def _tensorflow(name, tpu):
    import tensorflow as tf

    if name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    elif name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    # Only non-chief workers of a multi-worker cluster should not write.
    return Distribution(name, strategy.num_replicas_in_sync, bool(strategy.extended.should_checkpoint),
                        strategy.scope, strategy)


def _jax(name, batch_size):
    import jax
    import keras

    if name in ("multi_worker", "tpu"):
        raise ValueError(f"--strategy={name} is for the TensorFlow backend; on JAX, "
                         "--strategy=mirrored uses every local device")
    if name == "default":
        return Distribution(name, 1, True, contextlib.nullcontext)
    devices = jax.devices()
    if batch_size and batch_size % len(devices):
        raise ValueError(f"--batch_size={batch_size} does not split over {len(devices)} devices")

    @contextlib.contextmanager
    def scope():
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield
        finally:
            keras.distribution.set_distribution(previous)

    return Distribution(name, len(devices), jax.process_index() == 0, scope)
