"""The CMSC network: its layers, the model and its variants, the cascade loss, VDSR weights.

Keras only (no TensorFlow), so it imports, and registers its Keras classes,
on any Keras backend: the JAX trainer builds these models without TensorFlow.
"""
