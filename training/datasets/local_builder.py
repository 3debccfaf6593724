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

import tensorflow_datasets as tfds


class LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A GeneratorBasedBuilder that reads local files and registers nothing."""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        return None
