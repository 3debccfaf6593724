"""Training pairs: one TF-free source of batches (`source`) and its two feeds.

`source.TrainingSource` makes every batch as a function of (seed, global
step) in NumPy. `source.batches` feeds it to Keras on any backend (a plain
generator); `tf_dataset.training_dataset` feeds the same batches through
`tf.data` for `tf.distribute` on the TensorFlow backend.
"""
