"""The image sets of :mod:`cmsc_tf.io.image_sets` as TensorFlow Datasets: ``load_images(set_name)``.

The only module of :mod:`cmsc_tf.io` that imports TensorFlow / TFDS. Its
builders read every image through :func:`cmsc_tf.io.image_sets.read_set`, so
a set has the same names, files and pixels here as in the TensorFlow-free
reader. Preparing a set (once, into the TFDS directory) reads local files
only: GCS and downloads are switched off.

Each example is one HR image as ``[H, W, 3]`` uint8 (grayscale replicated, so
that one TFDS feature holds both kinds), its ``grayscale`` flag (the
protocol's luminance rule differs for gray and RGB images) and its name.
"""

import dataclasses
import hashlib
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from cmsc_tf.io import image_sets


def as_rgb_uint8(array):
    """[H, W] / [H, W, 1|2|3|4] uint8 -> ([H, W, 3] uint8, grayscale: bool).

    Alpha is dropped (protocol.md); a single channel is replicated.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image [H, W] or [H, W, 1|2|3|4], got shape {array.shape}")
    if array.shape[-1] <= 2:  # gray, or gray + alpha
        return np.repeat(array[..., :1], 3, axis=-1), True
    return np.ascontiguousarray(array[..., :3]), False


class LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A GeneratorBasedBuilder that reads local files and registers nothing.

    Two things differ from a stock ``GeneratorBasedBuilder``:

    - ``skip_registration=True``: importing this module fills no global
      registry; callers instantiate the class they want.
    - ``code_path`` is None. TFDS uses it only to find a ``checksums.tsv`` of
      download URLs, which builders that download nothing do not have; and
      TFDS 4.9.10 computes it through ``importlib_resources``, a package it
      does not declare as a dependency on Python >= 3.9
      (tensorflow/datasets#11212), so the stock property fails on a fresh install.
    """

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        return None

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "grayscale": tfds.features.Scalar(dtype=np.bool_),
                "name": tfds.features.Text(),
            }),
            description=self.DESCRIPTION,
        )

    def _generate_examples(self, set_name, data_dir=None):
        for name, array in image_sets.read_set(set_name, data_dir):
            image, grayscale = as_rgb_uint8(array)
            yield name, {"image": image, "grayscale": grayscale, "name": name}


@dataclasses.dataclass
class SrFolderConfig(tfds.core.BuilderConfig):
    """One folder set: its folder under the manual dir and its split name."""

    subdir: str = ""
    split: str = "train"


class SrFolder(LocalBuilder, skip_registration=True):
    """The folder sets of :data:`image_sets.FOLDER_SETS`; the manual dir is the datasets folder."""

    DESCRIPTION = "HR images of one super-resolution set, read from a local folder."
    BUILDER_CONFIGS = [
        SrFolderConfig(name=name, subdir=subdir, split="train" if subdir.startswith("train/") else "test",
                       version=tfds.core.Version("1.0.0"), description=f"<datasets>/{subdir}")
        for name, subdir in image_sets.FOLDER_SETS.items()
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = image_sets.LAYOUT_HELP

    def _split_generators(self, dl_manager):
        config = self.builder_config
        return {config.split: self._generate_examples(config.name, dl_manager.manual_dir)}


class SkimagePhotos(LocalBuilder, skip_registration=True):
    """The photographs of skimage.data with the fixed split of :mod:`image_sets`."""

    VERSION = tfds.core.Version("1.0.0")
    DESCRIPTION = "Photographs shipped with scikit-image (skimage.data)."
    # TFDS split name -> image set.
    SPLITS = {"train": "skimage_train", "test": "skimage_test"}

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the images ship with scikit-image
        return {split: self._generate_examples(set_name) for split, set_name in self.SPLITS.items()}


def _builder(set_name, data_dir, tfds_dir):
    """(builder, split, manual dir or None) of a set name."""
    for split, skimage_set in SkimagePhotos.SPLITS.items():
        if set_name == skimage_set:
            return SkimagePhotos(data_dir=tfds_dir), split, None
    folder = image_sets.set_folder(set_name, data_dir)  # the name and folder errors
    # TFDS keys a prepared set by name and version only; a subfolder named by
    # the folder's fingerprint makes another folder, or changed images, a
    # new preparation instead of a silently stale one.
    prepared_dir = _tfds_base(tfds_dir) / "sr_folder_sources" / folder_fingerprint(folder)
    builder = SrFolder(config=set_name, data_dir=str(prepared_dir))
    return builder, builder.builder_config.split, image_sets.resolve_data_dir(data_dir)


def _tfds_base(tfds_dir):
    base = tfds_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return pathlib.Path(base).expanduser()


def folder_fingerprint(folder):
    """A short hash of the folder's absolute path and its images' names, sizes and times."""
    digest = hashlib.sha1(str(pathlib.Path(folder).resolve()).encode())
    for path in image_sets.list_images(folder):
        stat = path.stat()
        digest.update(f"\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def load_images(set_name, data_dir=None, tfds_dir=None):
    """tf.data.Dataset of {"image": [H, W, 3] uint8, "grayscale": bool, "name": str}.

    Args:
      set_name: one of :func:`cmsc_tf.io.image_sets.set_names`.
      data_dir: the datasets folder (layout of the shared ``datasets/``); default
        $CMSC_DATA_DIR. Not needed for the skimage sets.
      tfds_dir: where TFDS keeps prepared sets (default: TFDS's own default,
        ~/tensorflow_datasets or $TFDS_DATA_DIR).
    """
    builder, split, manual_dir = _builder(set_name, data_dir, tfds_dir)
    if not builder.is_prepared():
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(manual_dir) if manual_dir else None,
            try_download_gcs=False))
    # Files are read in order: deterministic; shuffling happens in the pipeline.
    return builder.as_dataset(split=split, shuffle_files=False)


def load_arrays(set_name, data_dir=None, tfds_dir=None):
    """The same images as a list of (name, [H, W, 3] uint8, grayscale) in NumPy."""
    return [(ex["name"].decode(), ex["image"], bool(ex["grayscale"]))
            for ex in tfds.as_numpy(load_images(set_name, data_dir, tfds_dir))]
