"""Valid PNGs of any size that cost next to nothing on disk: the hostile user's files, for
tests/io/test_images.py and benchmarks/refusal_costs.py (NumPy-free, no test framework)."""

import struct
import zlib


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zeros_zlib(row_bytes, rows):
    """zlib stream of ``rows`` all-zero rows: one compressed block of many rows,
    repeated (a full flush makes each block independent), so that writing a
    gigapixel file takes a fraction of a second."""
    block_rows = max(1, (1 << 22) // row_bytes)
    block_data = bytes(row_bytes * block_rows)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: header and checksum below
    compressor.compress(block_data)
    compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(block_data) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(rows // block_rows):
        checksum = zlib.adler32(block_data, checksum)
    rest = bytes(row_bytes * (rows % block_rows))
    checksum = zlib.adler32(rest, checksum)
    body = block * (rows // block_rows) + compressor.compress(rest) + compressor.flush()
    return b"\x78\xda" + body + struct.pack(">I", checksum)


def write_constant_png(path, width, height, bit_depth=8, colour_type=2):
    """A valid all-black PNG of any size: a few hundred KB on disk for
    13000 x 13000, gigabytes once decoded (the hostile user's file)."""
    channels = {0: 1, 2: 3}[colour_type]
    idat = zeros_zlib(1 + width * channels * bit_depth // 8, height)  # filter byte 0, then zeros
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
