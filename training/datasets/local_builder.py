"""Base class of the project's TFDS builders: local files only, no registry.

Two things differ from a stock `GeneratorBasedBuilder`:
- `skip_registration=True`: importing a builder module fills no global
  registry; callers instantiate the class they want.
- `code_path` is None. TFDS uses it only to find a `checksums.tsv` of download
  URLs, which builders that download nothing do not have; and TFDS 4.9.10
  computes it through `importlib_resources`, a package it does not declare as a
  dependency on Python >= 3.9 (tensorflow/datasets#11212), so the stock
  property fails on a fresh install.
"""

import numpy as np
import tensorflow_datasets as tfds


class LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A GeneratorBasedBuilder that reads local files and registers nothing."""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        return None


def image_features():
    """The example format of every project builder: one HR image, its grayscale
    flag (protocol.md's luminance rule needs it) and its file name."""
    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3)),
        "grayscale": tfds.features.Scalar(dtype=np.bool_),
        "name": tfds.features.Text(),
    })
