"""Batch normalisation that trains in TensorFlow's fused kernel.

Keras's ``BatchNormalization`` computes a batch's moments and the
normalisation as separate elementwise operations in float32, casting a
bfloat16 input up and the output back down: on a CPU the training step of the
compact CMSC spends about a third of its time there. TensorFlow's
``FusedBatchNormV3`` (oneDNN on CPU) does the same arithmetic in one pass, in
float32 inside, on a bfloat16 or float32 input, with its own fused gradient:
the train step of ``benchmarks/training_flops.py`` went from 0.241 s to
0.164 s in mixed bfloat16 and from 0.315 s to 0.276 s in float32
(docs/training.md, *Training throughput*).

:class:`BatchNormalization` takes that path only where it computes exactly
what Keras's layer computes: the TensorFlow backend, training mode, a
trainable layer, a 4-D channels-last input, no mask, no synchronisation and no
renormalisation. The moving statistics are updated as Keras does, with the
biased batch variance (the kernel returns the unbiased one). Everywhere else
(inference, JAX, PyTorch, synchronised BN) it is Keras's layer unchanged.
Weights, config and saved files are those of ``keras.layers.BatchNormalization``.
"""

import keras


@keras.saving.register_keras_serializable(package="cmsc_tf")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose TensorFlow training step is one fused kernel."""

    def _fused(self, inputs, training, mask):
        return (bool(training) and self.trainable and mask is None and not self.synchronized
                and not self.renorm and keras.backend.backend() == "tensorflow"
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and self.center and self.scale)

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.cast(self.gamma, "float32"), offset=tf.cast(self.beta, "float32"),
            mean=tf.constant([], "float32"), variance=tf.constant([], "float32"),
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], "float32")
        variance = variance * (count - 1.0) / count  # the kernel's is Bessel-corrected; Keras keeps the biased one
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + tf.cast(mean, self.moving_mean.dtype) * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + tf.cast(variance, self.moving_variance.dtype) * (1.0 - momentum))
        return tf.cast(outputs, self.compute_dtype)
