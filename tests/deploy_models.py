"""Small real networks for the deployment tests (imported by test_*.py next to it)."""

import struct
import zlib

import keras
import numpy as np

import cmsc_tf


def small_cmsc(seed=0, perturbation=0.05):
    """A 2-stage, 1-module, 8-feature CMSC (receptive radius 12).

    The reconstruction convs start at zero (the network is then exactly
    bicubic) and are perturbed, so the output depends on every layer but
    stays in a sane range, as for a trained network.
    """
    keras.utils.set_random_seed(seed)  # the body's He initialisation too: tests must not vary run to run
    model = cmsc_tf.build_model(
        "cmsc", num_features=8, num_stages=2, num_modules=1, reconstruction_initializer="zeros"
    )
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name.startswith("reconstruction"):
            layer.kernel.assign(rng.normal(0, perturbation, layer.kernel.shape).astype(np.float32))
    return model


def bicubic_cmsc():
    """A CMSC whose reconstruction is zero: its output is exactly its input."""
    return cmsc_tf.build_model("cmsc", num_features=4, num_stages=1, num_modules=1, reconstruction_initializer="zeros")


def random_rgb(height, width, seed=0, channels=3):
    """A smooth-ish random uint8 image (noise is a poor stand-in for photographs)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 4 + 2, width // 4 + 2, channels))
    image = np.kron(coarse, np.ones((4, 4, 1)))[:height, :width] + rng.normal(0, 12, (height, width, channels))
    return np.clip(image, 0, 255).astype(np.uint8)


# Bare headers of hostile images: any size, no pixel data (tests of the pixel budget).


def png_header(width, height, bit_depth=8, color_type=2):
    """A PNG signature and IHDR chunk (with a valid CRC) and nothing else."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))


def bmp_header(width, height):
    """A 24-bit BITMAPFILEHEADER + BITMAPINFOHEADER (negative height: top-down rows)."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info
