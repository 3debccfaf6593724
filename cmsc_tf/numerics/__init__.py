"""MATLAB-exact numerics: bicubic ``imresize``, YCbCr, and the protocol's degradation.

``imresize_np``, ``color`` and ``degradation`` are NumPy only (they import
without TensorFlow, for the JAX trainer); ``imresize_tf`` and ``color_tf``
are their in-graph TensorFlow twins.
"""
