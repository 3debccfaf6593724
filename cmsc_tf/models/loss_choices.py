"""The choices of the cascade loss (:mod:`cmsc_tf.models.losses`), without Keras: training's settings list them too."""

# How a sample's per-pixel errors are reduced: summed, as Eq. 8's squared norm, or averaged.
PIXEL_REDUCTIONS = ("sum", "mean")
# The error of each pixel: the paper's half squared error, or the absolute error.
NORMS = ("l2", "l1")
