"""Files: the image reader/writer, atomic writes, the image sets by name (and as TFDS builders).

Everything here but ``tfds_sets`` imports without TensorFlow.
"""
