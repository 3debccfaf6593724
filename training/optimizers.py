"""The paper's optimizer: SGD (or Adam) with element-wise gradient clipping that
means the same on any number of replicas.

Keras 3 clips gradients *before* it sums them across replicas (the clipping
runs in each replica, the all-reduce inside the update), so with N replicas
`clipvalue` bounds each replica's 1/N share of the gradient instead of the
gradient: N-replica training would not be the paper's recipe. Here the
clipping step first sums the gradients across replicas, clips the sum, and
hands each replica 1/N of the clipped sum; the all-reduce that follows adds
the N shares back to exactly the clipped gradient. One replica: unchanged.
"""

import keras
import tensorflow as tf


class _ClipAfterAllReduce:
    """Mixin for a Keras optimizer: element-wise/norm clipping of the all-reduced gradient."""

    def _clip_gradients(self, grads):
        context = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        clipping = self.clipvalue or self.clipnorm or self.global_clipnorm
        if not clipping or context is None or replicas == 1:
            return super()._clip_gradients(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
        clipped = super()._clip_gradients(summed)
        shares = list(grads)
        for i, g in zip(present, clipped):
            shares[i] = g / replicas
        return shares


class SGD(_ClipAfterAllReduce, keras.optimizers.SGD):
    """keras.optimizers.SGD, clipping the gradient summed over replicas."""


class Adam(_ClipAfterAllReduce, keras.optimizers.Adam):
    """keras.optimizers.Adam, clipping the gradient summed over replicas."""


def make_optimizer(name, learning_rate, steps_per_epoch, lr_decay_epochs=10, lr_decay_factor=0.1,
                   momentum=0.9, weight_decay=1e-4, clip_value=0.4):
    """The paper's SGD (or Adam), lr multiplied by `lr_decay_factor` every `lr_decay_epochs`.

    `clip_value` clips each gradient element to [-clip_value, clip_value].
    Keras's `weight_decay` is decoupled (w -= lr * wd * w, outside the
    momentum), which for SGD differs from Caffe's L2-in-the-gradient only in
    how the decay term passes through momentum.
    """
    schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=max(1, lr_decay_epochs * steps_per_epoch),
        decay_rate=lr_decay_factor, staircase=True)
    options = {}
    if clip_value > 0:
        options["clipvalue"] = clip_value
    if weight_decay > 0:
        options["weight_decay"] = weight_decay
    if name == "sgd":
        return SGD(schedule, momentum=momentum, **options)
    if name == "adam":
        return Adam(schedule, **options)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd or adam")
