"""Every use of a private Keras hook in the project, in one place (checked against Keras 3.15).

Keras offers no public way to do these things; each is pinned by a test
in tests/training/test_keras_hooks.py that fails when Keras changes the hook,
so a Keras upgrade (setup.py pins the minor version for this) is checked here
and nowhere else.

1. `all_layers`: every nested layer of a model (`Layer._flatten_layers`), to
   find the BatchNormalization layers inside the CMSC layers.
2. `ClipAfterAllReduce`: gradient clipping that means the same on any number
   of `tf.distribute` replicas (`Optimizer._clip_gradients`).
3. `AdjustableClipping`: VDSR's clipping of each gradient element to
   [-t/lr, t/lr] at the optimizer's current rate (`Optimizer._clip_gradients`).
4. `prepare_multi_worker_fit`: Keras's fit under MultiWorkerMirroredStrategy
   (`Model._symbolic_build`, `Model._maybe_symbolic_build`).
5. `weights_file_bytes`: a `.weights.h5` file made in memory (`save_weights`
   passes a `BytesIO` through to its HDF5 store, which takes one).
"""

import io


class _WeightsBuffer(io.BytesIO):
    # save_weights checks the name's suffix with str(); its HDF5 store writes into a BytesIO as into a file.
    def __str__(self):
        return "checkpoint.weights.h5"


def weights_file_bytes(model):
    """The bytes of ``model.save_weights(path)``'s file (model and optimizer), made in memory.

    HDF5 does not survive a failed write: on a full disk (or past a file-size
    limit) its close either crashes at once or leaves handles whose cleanup at
    exit is a segmentation fault (h5py 3.14, HDF5 1.14). Made in memory, the
    file meets the disk only through Python's own writes, whose failure is an
    OSError like any other.
    """
    buffer = _WeightsBuffer()
    model.save_weights(buffer)
    return buffer.getvalue()


def all_layers(model):
    """Every layer nested in `model` (not the model itself), depth first."""
    return list(model._flatten_layers(include_self=False, recursive=True))


class ClipAfterAllReduce:
    """Mixin for a Keras optimizer on TensorFlow: clips the gradient summed over replicas.

    Keras clips gradients *before* it sums them across replicas (the clipping
    runs in each replica, the all-reduce inside the update), so with N
    replicas `clipvalue` bounds each replica's 1/N share of the gradient, not
    the gradient. Here the gradients are summed across replicas first, the sum
    is clipped, and each replica gets 1/N of the clipped sum; the all-reduce
    that follows adds the N shares back to exactly the clipped gradient.
    (On JAX, `keras.distribution` computes one global gradient, which Keras
    clips as it is.)
    """

    def _clip_gradients(self, grads):
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        clipping = (self.clipvalue or self.clipnorm or self.global_clipnorm
                    or getattr(self, "adjustable_clip_threshold", None))
        if not clipping or context is None or replicas == 1:
            return super()._clip_gradients(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
        clipped = super()._clip_gradients(summed)
        shares = list(grads)
        for i, g in zip(present, clipped):
            shares[i] = g / replicas
        return shares


class AdjustableClipping:
    """Mixin for a Keras optimizer: each gradient element clipped to [-t/lr, t/lr].

    VDSR's adjustable gradient clipping (Kim et al. 2016, Sec. 3.2). The
    bound follows the optimizer's learning-rate variable, so it changes when
    the schedule does, inside a traced or compiled train step too. Set
    `adjustable_clip_threshold` (t) on the optimizer after construction.
    """

    adjustable_clip_threshold = None

    def _clip_gradients(self, grads):
        from keras import ops

        if self.adjustable_clip_threshold is None:
            return super()._clip_gradients(grads)
        bound = self.adjustable_clip_threshold / ops.cast(self.learning_rate, "float32")
        return [None if g is None else ops.clip(g, -ops.cast(bound, g.dtype), ops.cast(bound, g.dtype))
                for g in grads]


def prepare_multi_worker_fit(model, strategy, batch_shapes):
    """Works around two failures of Keras 3's fit under MultiWorkerMirroredStrategy.

    (keras-team/keras#20585, tensorflow/tensorflow#72388.) Keras 3.15
    1. builds metrics and optimizer from a batch it first reduces with
       `strategy.reduce`, which MultiWorkerMirroredStrategy cannot do eagerly
       on per-replica data ("Attempt to convert a value (PerReplica...)");
    2. averages the per-replica logs with `reduce("MEAN", axis=0)`, which fails
       on scalar logs ("Invalid reduction dimension 0").
    Here the model is built from a local batch of the right shapes (only the
    shapes are used), and the train function is Keras's own single step with
    the logs averaged over replicas by `reduce("MEAN", axis=None)`.
    `batch_shapes`: the shapes of one replica's (x, y[, sample_weight]).
    """
    import tensorflow as tf

    with strategy.scope():
        model._symbolic_build(data_batch=tuple(tf.zeros(shape) for shape in batch_shapes))
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    @tf.function(jit_compile=False)
    def one_step(iterator):
        outputs = strategy.run(model.train_step, args=(next(iterator),))
        return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), outputs)

    model.train_function = one_step
