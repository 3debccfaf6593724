"""The training batches of `source.TrainingSource` as a `tf.data` pipeline (TensorFlow backend).

The pairs are made by the source in NumPy (`tf.numpy_function`), so this feed
and the NumPy generator give the same batches for the same (seed, step), bit
for bit; tf.data adds prefetching and what `tf.distribute` needs: under
MultiWorkerMirroredStrategy every worker builds this dataset, which
tf.distribute shards by data (the pairs come from memory, not files).
"""

import tensorflow as tf


def training_dataset(source, first_step, last_step):
    """The batches of steps [first_step, last_step) of `source`, prefetched."""
    size = source.patch_size
    weighted = bool(source.scale_weights)
    types = (tf.float32,) * (3 if weighted else 2)

    def load(step):
        arrays = tf.numpy_function(source.batch, [step], types, stateful=False)
        shapes = [(source.batch_size, size, size, 1)] * 2 + [(source.batch_size,)] * weighted
        for array, shape in zip(arrays, shapes):
            array.set_shape(shape)
        return tuple(arrays)

    steps = tf.data.Dataset.range(first_step, last_step)
    dataset = steps.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
