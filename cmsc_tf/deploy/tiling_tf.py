"""The exact halo tiling of :mod:`cmsc_tf.deploy.tiling`, as TensorFlow ops (for the SavedModel's graph).

The serving signatures take images of any size the pixel budget accepts;
untiled, the network's first convolution on an 8192 x 8192 output alone
needs 8 GiB, and a server failing to allocate it may go down. Here the
network runs on one ``(tile + 2 halo)^2`` crop at a time, in a
``tf.while_loop`` with ``parallel_iterations=1`` (the default would keep ten
crops' activations alive at once), so its memory is that of one crop
whatever the image. The crops and cores are :func:`tiling.tile_spans`'s: a
core of at most ``tile`` pixels grown by ``halo`` where the image continues,
so the result is the untiled one to float precision.
"""

import tensorflow as tf


def _spans(length, tile, halo):
    """``(crop_start, crop_stop, core_start, core_stop)`` int32 ``[n]`` tensors along one axis."""
    core_start = tf.range(0, length, tile)
    core_stop = tf.minimum(core_start + tile, length)
    return tf.maximum(core_start - halo, 0), tf.minimum(core_stop + halo, length), core_start, core_stop


def _loop(count, body, dtype, channels):
    """``tf.concat([body(i) for i in range(count)], 0)``, one ``body`` at a time."""
    pieces = tf.TensorArray(dtype, size=count, infer_shape=False, element_shape=tf.TensorShape([None, None, channels]))
    _, pieces = tf.while_loop(
        lambda i, _: i < count,
        lambda i, pieces: (i + 1, pieces.write(i, body(i))),
        (tf.constant(0), pieces),
        parallel_iterations=1,
    )
    return pieces.concat()


def apply_tiled_tf(fn, image, tile, halo, dtype, channels):
    """``fn`` applied to ``image`` ``[H, W, C]`` tile by tile; returns what ``fn(image)`` would.

    ``fn`` maps a ``[h, w, C]`` crop to a ``[h, w, channels]`` tensor of
    ``dtype``; ``tile`` and ``halo`` are Python ints (``halo`` at least the
    network's receptive radius).
    """
    if tile < 1 or halo < 0:
        raise ValueError(f"apply_tiled_tf: tile must be positive and halo non-negative, got {tile}, {halo}")
    shape = tf.shape(image)
    rows, cols = _spans(shape[0], tile, halo), _spans(shape[1], tile, halo)

    def band(i):
        row0, row1, core_row0, core_row1 = (span[i] for span in rows)

        def piece(j):
            col0, col1, core_col0, core_col1 = (span[j] for span in cols)
            result = fn(image[row0:row1, col0:col1])
            core = result[core_row0 - row0 : core_row1 - row0, core_col0 - col0 : core_col1 - col0]
            # TensorArray.concat joins along axis 0: pieces of a band go in transposed.
            return tf.transpose(core, [1, 0, 2])

        return tf.transpose(_loop(tf.size(cols[0]), piece, dtype, channels), [1, 0, 2])

    return _loop(tf.size(rows[0]), band, dtype, channels)


def map_images(fn, images, dtype, channels):
    """``fn`` on each image of ``images`` ``[B, ...]``, one at a time -> ``[B, H', W', channels]``."""
    return tf.map_fn(
        fn, images, parallel_iterations=1, fn_output_signature=tf.TensorSpec([None, None, channels], dtype)
    )
