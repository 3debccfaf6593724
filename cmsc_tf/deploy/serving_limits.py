"""The pixel budget (``cmsc_tf.io.pixel_budget``) inside the SavedModel's graph.

A hostile request must cost milliseconds, not gigabytes: every check here
runs on sizes only (tensor shapes, or the header bytes of encoded images)
and the SavedModel makes the decode and the resize wait for it (control
dependencies). Refusals are ``InvalidArgumentError``s whose message names the
limit and the first offending image of the batch (``image 2: ...``).

The budget is per request: one image, or all the images of a batch together,
may not exceed it, since the graph holds them all (``serving_default``
resizes the batch as one tensor, ``upscale_encoded`` returns all its PNGs).
The limits are arguments so that tests can exercise them with small values.
"""

import tensorflow as tf

from cmsc_tf.io.pixel_budget import MAX_INPUT_PIXELS, MAX_OUTPUT_PIXELS, MAX_SIDE

# Header formats (0: not readable). tf.io.decode_image picks its decoder by
# the same magic bytes, so a file classified here is decoded as that format.
UNREADABLE, PNG, JPEG, BMP = 0, 1, 2, 3
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_HEAD = 32  # bytes of header looked at: PNG needs 24, BMP 26

NOT_AN_IMAGE = "not a PNG, JPEG or BMP image, or its header is truncated or corrupt (GIF and other formats are refused)"


def _refuse(refused, template, values=list):
    """An op failing with ``template`` formatted with ``values()`` when the bool scalar ``refused`` holds.

    The message (and whatever ``values`` computes) is only built on refusal.
    """

    def fail():
        message = tf.strings.format(template, values())
        with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
            return tf.constant(True)

    return tf.cond(refused, fail, lambda: tf.constant(True))


def _refuse_any(bad, template, values=()):
    """:func:`_refuse` naming the first True of ``bad`` (``[n]`` bool).

    ``template`` has ``{}`` for that index, then one for each tensor of
    ``values`` (each ``[n]``) at that index.
    """

    def first():
        index = tf.argmax(tf.cast(bad, tf.int32))
        return [index] + [tf.gather(v, index) for v in values]

    return _refuse(tf.reduce_any(bad), template, first)


def output_sizes(heights, widths, scale):
    """``ceil(size * scale)`` as ``imresize_tf`` computes it (``scale`` a float64 from ``normalize_scale_tf``)."""

    def out(length):
        return tf.cast(tf.math.ceil(tf.cast(length, tf.float64) * scale), tf.int64)

    return out(heights), out(widths)


def budget_checks(
    heights,
    widths,
    scale,
    max_side=MAX_SIDE,
    max_input_pixels=MAX_INPUT_PIXELS,
    max_output_pixels=MAX_OUTPUT_PIXELS,
):
    """Ops refusing a batch of ``heights`` x ``widths`` images (int ``[n]``) upscaled by ``scale`` (scalar or ``[n]``).

    Run them (as control dependencies) before anything of the images' or the
    output's size is allocated. Each image must be non-empty and within the
    limits, and so must the batch's total input and output pixels.
    """
    heights, widths = tf.cast(heights, tf.int64), tf.cast(widths, tf.int64)
    out_h, out_w = output_sizes(heights, widths, scale)
    sizes, out_sizes = (widths, heights), (out_w, out_h)
    checks = [
        _refuse_any(tf.minimum(heights, widths) < 1, "image {}: empty image ({}x{})", sizes),
        _refuse_any(
            (tf.maximum(heights, widths) > max_side) | (heights * widths > max_input_pixels),
            f"image {{}}: {{}}x{{}} pixels is over the input limit ({max_input_pixels:,} pixels, {max_side} per side)",
            sizes,
        ),
        _refuse_any(
            (tf.maximum(out_h, out_w) > max_side) | (out_h * out_w > max_output_pixels),
            f"image {{}}: {{}}x{{}} at scale {{}} gives a {{}}x{{}} output, over the output limit "
            f"({max_output_pixels:,} pixels, {max_side} per side); use a smaller scale or image",
            sizes + (tf.broadcast_to(tf.cast(scale, tf.float64), tf.shape(heights)),) + out_sizes,
        ),
    ]
    # Totals only once each image is known to fit (no int64 overflow, clearer message).
    with tf.control_dependencies(checks):
        total_in = tf.reduce_sum(heights * widths)
        total_out = tf.reduce_sum(out_h * out_w)
        return [
            _refuse(
                total_in > max_input_pixels,
                f"batch: {{}} input pixels in all is over the input limit of {max_input_pixels:,} per request",
                lambda: [total_in],
            ),
            _refuse(
                total_out > max_output_pixels,
                f"batch: {{}} output pixels in all is over the output limit of {max_output_pixels:,} per request; "
                "send fewer images",
                lambda: [total_out],
            ),
        ]


def batch_checks(images, scale, **limits):
    """:func:`budget_checks` for a ``[B, H, W, C]`` batch, refusing an empty batch first."""
    shape = tf.shape(images, out_type=tf.int64)
    not_empty = _refuse(shape[0] < 1, "empty batch: images must hold at least one image")
    with tf.control_dependencies([not_empty]):
        count = tf.maximum(shape[0], 1)  # the dependency keeps this after the refusal
    return [not_empty] + budget_checks(tf.fill([count], shape[1]), tf.fill([count], shape[2]), scale, **limits)


def _head(encoded):
    """The first ``_HEAD`` bytes of ``encoded`` as int64 ``[_HEAD]``, zero-padded."""
    head = tf.strings.substr(encoded, 0, _HEAD)  # position 0 is valid even for b""
    head = tf.strings.substr(tf.strings.join([head, b"\0" * _HEAD]), 0, _HEAD)
    return tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)


def _starts_with(head, magic):
    return tf.reduce_all(tf.equal(head[: len(magic)], list(magic)))


def _big_endian_uint32(head, start):
    return sum(head[start + i] * 256 ** (3 - i) for i in range(4))


def _little_endian_int32(head, start):
    value = sum(head[start + i] * 256**i for i in range(4))
    return tf.where(value >= 1 << 31, value - (1 << 32), value)


def header_size(encoded):
    """``(format, height, width)`` int64 scalars of one encoded image, from its header alone.

    PNG: IHDR (bytes 16..24, big-endian width, height). BMP: the
    BITMAPINFOHEADER (bytes 18..26, little-endian signed width, height; a
    negative height means top-down rows), read at the offsets TensorFlow's
    decoder reads. JPEG: ``tf.image.extract_jpeg_shape`` (libjpeg's header
    reader, the decoder's own), which raises on a malformed header.
    Anything else, or a header cut short, is ``UNREADABLE`` (size 0 x 0).
    """
    head = _head(encoded)
    length = tf.strings.length(encoded)
    is_png = _starts_with(head, _PNG_MAGIC) & _starts_with(head[12:], b"IHDR") & (length >= 24)
    is_jpeg = _starts_with(head, b"\xff\xd8\xff")
    is_bmp = _starts_with(head, b"BM") & (length >= 26)
    jpeg_hw = tf.cond(
        is_jpeg,
        lambda: tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64),
        lambda: tf.zeros([2], tf.int64),
    )
    fmt, height, width = tf.constant(UNREADABLE, tf.int64), tf.constant(0, tf.int64), tf.constant(0, tf.int64)
    for flag, code, h, w in (
        (is_png, PNG, _big_endian_uint32(head, 20), _big_endian_uint32(head, 16)),
        (is_jpeg, JPEG, jpeg_hw[0], jpeg_hw[1]),
        (is_bmp, BMP, tf.abs(_little_endian_int32(head, 22)), _little_endian_int32(head, 18)),
    ):
        fmt = tf.where(flag, tf.constant(code, tf.int64), fmt)
        height, width = tf.where(flag, h, height), tf.where(flag, w, width)
    return fmt, height, width


def _indexed(image_bytes, *per_image):
    """``(index, bytes, *per_image values)`` elements, one per image, in order."""
    return tf.data.Dataset.from_tensor_slices(
        (tf.range(tf.size(image_bytes, out_type=tf.int64)), image_bytes, *per_image))


def per_image_scales(scale, count):
    """``scale`` as float64 ``[count]``: one value for the batch, or one per image (TF-Serving's row format).

    A REST ``instances`` request stacks each image's ``scale`` into a ``[n]``
    tensor, an ``inputs`` request may send one scalar: both are accepted,
    any other shape is refused naming it.
    """
    flat = tf.reshape(scale, [-1])
    count = tf.cast(count, tf.int32)
    fits = (tf.rank(scale) == 0) | ((tf.rank(scale) == 1) & (tf.size(flat) == count))
    refused = _refuse(tf.logical_not(fits),
                      "scale: one value, or one per image ({} images), got shape {}",
                      lambda: [count, tf.shape(scale)])
    with tf.control_dependencies([refused]):
        return tf.broadcast_to(flat, [count])


def one_scale(scales):
    """The one scale of a batch upscaled as one tensor (``serving_default``); refuses differing ones."""
    first = tf.reduce_max(scales[:1])  # an empty batch is refused by batch_checks before this is used
    differs = _refuse_any(tf.not_equal(scales, first),
                          "image {}: scale {} differs from the scale of image 0; serving_default upscales a batch as one "
                          "tensor, so its images share one scale (upscale_encoded takes one per image)", (scales,))
    with tf.control_dependencies([differs]):
        return tf.identity(first)


def collect(dataset, count):
    """All elements of ``dataset`` (at most ``count``) as batched tensors; empty tensors if none."""
    empty = tf.nest.map_structure(
        lambda spec: tf.zeros([0] + spec.shape.as_list(), spec.dtype), dataset.element_spec
    )
    return dataset.batch(tf.maximum(count, 1)).reduce(empty, lambda _, batch: batch)


def encoded_sizes(image_bytes):
    """``(format, height, width)`` int64 ``[n]`` of a batch of encoded images, from headers only.

    A header that fails to parse (a malformed JPEG) gives ``UNREADABLE``
    for that image instead of failing the request with a message that does
    not say which image it was.
    """
    count = tf.size(image_bytes, out_type=tf.int64)
    found = _indexed(image_bytes).map(lambda i, data: (i, *header_size(data))).ignore_errors()
    index, fmt, height, width = collect(found, count)
    spread = [tf.scatter_nd(index[:, None], values, [count]) for values in (fmt, height, width)]
    return tuple(spread)


def encoded_checks(image_bytes, scale, **limits):
    """Ops refusing a batch of encoded images that are unreadable or over the budget, from their headers."""
    fmt, height, width = encoded_sizes(image_bytes)
    readable = _refuse_any(fmt == UNREADABLE, f"image {{}}: {NOT_AN_IMAGE}")
    with tf.control_dependencies([readable]):
        return [readable] + budget_checks(tf.identity(height), width, scale, **limits)


def map_naming_failures(fn, image_bytes, *per_image):
    """``fn(encoded, *values)`` for each image, one at a time; a failure names the first image that failed.

    ``per_image``: tensors ``[n]`` whose values go to ``fn`` with their image.

    A decoder's own error does not say which image of the batch it came
    from, so failing images are dropped (``ignore_errors``) and the first
    missing index is refused with a message naming it.
    """
    count = tf.size(image_bytes, out_type=tf.int64)
    done = _indexed(image_bytes, *per_image).map(lambda i, data, *values: (i, fn(data, *values))).ignore_errors()
    index, outputs = collect(done, count)
    # Elements stay in order, so the first failure is where index != position.
    position = tf.range(count)
    missing = tf.logical_not(tf.reduce_any(tf.equal(position[:, None], index[None, :]), axis=1))
    failed = _refuse_any(missing, "image {}: could not be decoded or upscaled (corrupt or truncated image data)")
    with tf.control_dependencies([failed]):
        return tf.identity(outputs)
