"""A Keras dtype policy for the layers built inside a `with` block only.

Keras's dtype policy is process-global: training sets the run's mixed
precision, export and the loader build float32 or bfloat16 copies, and each
must leave the caller's policy as it found it.
"""

import contextlib

import keras


@contextlib.contextmanager
def dtype_policy(name):
    """Sets Keras's global dtype policy to `name` inside the block, then restores the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
