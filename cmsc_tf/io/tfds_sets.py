"""The image sets of :mod:`cmsc_tf.io.image_sets` as registered TensorFlow Datasets.

Importing this module registers two builders with TFDS, the TFDS convention
for datasets defined outside the TFDS package (one import is needed, as for
any community dataset)::

    import tensorflow_datasets as tfds
    import cmsc_tf.io.tfds_sets  # noqa: F401  registers sr_folder and skimage_photos

    ds = tfds.load("sr_folder/set5", split="test", data_dir="~/tensorflow_datasets",
                   download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                       manual_dir="/path/to/datasets")})
    photos = tfds.load("skimage_photos", split="test")

* ``sr_folder/<set>``, one config per folder set of
  :data:`cmsc_tf.io.image_sets.FOLDER_SETS` (``t91``, ``bsd200`` as split
  ``train``; ``set5``, ``set14``, ``bsd100``, ``urban100`` as split ``test``;
  ``sunhays80`` as split ``validation``).
  Nothing is downloaded: the manual dir is the datasets folder, laid out like
  the shared ``datasets/`` (:data:`~cmsc_tf.io.image_sets.LAYOUT_HELP`). It is
  TFDS's default ``<data_dir>/downloads/manual/`` unless ``manual_dir=`` says
  otherwise.
* ``skimage_photos``: the photographs of ``skimage.data``, split ``train``
  (:data:`~cmsc_tf.io.image_sets.TRAIN_PHOTOS`) and ``test``
  (:data:`~cmsc_tf.io.image_sets.TEST_PHOTOS`, held out).

Each example is one HR image as ``[H, W, 3]`` uint8 (grayscale replicated, so
that one TFDS feature holds both kinds), its ``grayscale`` flag (the
protocol's luminance rule differs for gray and RGB images) and its name. The
builders read every image through :func:`cmsc_tf.io.image_sets.read_set`, so
a set has the same names, files and pixels here as in the TensorFlow-free
reader. GCS lookups are switched off.

Stale preparations. TFDS keys a prepared set by name, config and version
only, but a local folder can change (or another folder be passed) without a
new version. A prepared ``sr_folder`` set therefore records a fingerprint of
its source folder (absolute path, file names, sizes and modification times)
in its metadata. Reading a prepared set whose source folder has changed
since, or ``download_and_prepare`` over a prepared set with a manual dir
that does not match it, raises :class:`StalePreparationError` instead of
serving the old copy (a source folder that no longer exists is not checked:
the prepared copy stands alone); re-prepare with
``DownloadConfig(download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)``
or delete the prepared folder. :func:`load_images` re-prepares by itself.

Who reads through TFDS. Nothing in training does: the trainer must run on
any Keras backend, including JAX hosts without TensorFlow, so it reads its
sets with :mod:`cmsc_tf.io.image_sets` (NumPy and Pillow). ``training.evaluate``
reads benchmark folders directly through :mod:`cmsc_tf.eval.benchmark`: the
evaluation protocol reads each file exactly as written (gray stays gray, no
re-encoding or replicated channels) and needs no TensorFlow. These builders
are for users who want ``tfds.load``-style access to the same sets.
"""

import dataclasses
import hashlib
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from cmsc_tf.io import image_sets

FINGERPRINT_KEY = "source_fingerprint"
SOURCE_KEY = "source_folder"


class StalePreparationError(RuntimeError):
    """A prepared set was made from a folder that has since changed, or from another folder."""


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


def folder_fingerprint(folder):
    """A short hash of the folder's absolute path and its images' names, sizes and times."""
    digest = hashlib.sha1(str(pathlib.Path(folder).resolve()).encode())
    for path in image_sets.list_images(folder):
        stat = path.stat()
        digest.update(f"\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class _LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the two builders: reads local files, never GCS.

    ``skip_registration`` applies to this abstract base only; the subclasses
    register. ``code_path`` is None: TFDS uses it only to find a
    ``checksums.tsv`` of download URLs, which builders that download nothing
    do not have; and TFDS 4.9.10 computes it through ``importlib_resources``,
    a package it does not declare as a dependency on Python >= 3.9
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
            metadata=tfds.core.MetadataDict(),
        )

    def download_and_prepare(self, *, download_dir=None, download_config=None, **kwargs):
        download_config = dataclasses.replace(download_config or tfds.download.DownloadConfig(),
                                              try_download_gcs=False)
        self._check_not_stale(download_dir, download_config)
        super().download_and_prepare(download_dir=download_dir, download_config=download_config, **kwargs)

    def _check_not_stale(self, download_dir, download_config):
        del download_dir, download_config

    def _generate_examples(self, set_name, data_dir=None):
        for name, array in image_sets.read_set(set_name, data_dir):
            image, grayscale = as_rgb_uint8(array)
            yield name, {"image": image, "grayscale": grayscale, "name": name}


@dataclasses.dataclass
class SrFolderConfig(tfds.core.BuilderConfig):
    """One folder set: its folder under the manual dir and its split name."""

    subdir: str = ""
    split: str = "train"


# The datasets folder's top-level folder -> the TFDS split of its sets.
_SPLITS = {"train": "train", "validation": "validation", "benchmark": "test"}


class SrFolder(_LocalBuilder):
    """``sr_folder/<set>``: the folder sets of :data:`image_sets.FOLDER_SETS`; the manual dir is the datasets folder."""

    DESCRIPTION = "HR images of one super-resolution set, read from a local folder (the manual dir)."
    BUILDER_CONFIGS = [
        SrFolderConfig(name=name, subdir=subdir, split=_SPLITS.get(subdir.split("/")[0], "test"),
                       version=tfds.core.Version("1.0.0"), description=f"<manual_dir>/{subdir}")
        for name, subdir in image_sets.FOLDER_SETS.items()
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "The manual dir (default <data_dir>/downloads/manual/, or "
        "DownloadConfig(manual_dir=...)) is the datasets folder.\n" + image_sets.LAYOUT_HELP)

    def _manual_dir(self, download_dir, download_config):
        """The manual dir as TFDS resolves it (DatasetBuilder._make_download_manager)."""
        download_dir = pathlib.Path(download_dir or pathlib.Path(str(self.data_dir_root)) / "downloads")
        return pathlib.Path(download_config.manual_dir or download_dir / "manual").expanduser()

    def _check_not_stale(self, download_dir, download_config):
        if not self.is_prepared() or download_config.download_mode.overwrite_dataset:
            return
        folder = self._manual_dir(download_dir, download_config) / self.builder_config.subdir
        recorded = self.info.metadata.get(FINGERPRINT_KEY)
        current = folder_fingerprint(folder) if folder.is_dir() else None
        if current is not None and recorded != current:
            raise StalePreparationError(
                f"{self.info.full_name} in {self.data_dir} was prepared from "
                f"{self.info.metadata.get(SOURCE_KEY, 'another folder')}, and {folder} differs from "
                "that preparation (other folder, or files changed). Re-prepare it: "
                "download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=..., "
                "download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)), or delete "
                f"{self.data_dir}.")

    def _as_dataset(self, *args, **kwargs):
        # tfds.load skips download_and_prepare for a prepared set: check here
        # that the folder it was prepared from is unchanged. A source folder
        # that no longer exists is not checked: the prepared copy stands alone.
        source = self.info.metadata.get(SOURCE_KEY)
        if source and pathlib.Path(source).is_dir():
            if folder_fingerprint(source) != self.info.metadata.get(FINGERPRINT_KEY):
                raise StalePreparationError(
                    f"{self.info.full_name} in {self.data_dir} was prepared from {source}, whose files "
                    "have changed since. Re-prepare it: download_and_prepare(download_config="
                    "tfds.download.DownloadConfig(manual_dir=..., "
                    "download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)), or delete "
                    f"{self.data_dir}.")
        return super()._as_dataset(*args, **kwargs)

    def _split_generators(self, dl_manager):
        config = self.builder_config
        root = pathlib.Path(dl_manager.manual_dir)
        folder = image_sets.set_folder(config.name, root)  # the folder errors, with the layout help
        self.info.metadata[SOURCE_KEY] = str(folder.resolve())
        self.info.metadata[FINGERPRINT_KEY] = folder_fingerprint(folder)
        return {config.split: self._generate_examples(config.name, root)}


class SkimagePhotos(_LocalBuilder):
    """``skimage_photos``: the photographs of skimage.data with the fixed split of :mod:`image_sets`."""

    VERSION = tfds.core.Version("1.0.0")
    DESCRIPTION = "Photographs shipped with scikit-image (skimage.data)."
    # TFDS split name -> image set.
    SPLITS = {"train": "skimage_train", "test": "skimage_test"}

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the images ship with scikit-image
        return {split: self._generate_examples(set_name) for split, set_name in self.SPLITS.items()}


def _tfds_base(tfds_dir):
    base = tfds_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return pathlib.Path(base).expanduser()


def load_images(set_name, data_dir=None, tfds_dir=None):
    """tf.data.Dataset of {"image": [H, W, 3] uint8, "grayscale": bool, "name": str}.

    The registered builders in the standard layout: ``sr_folder/<set_name>``
    with ``data_dir`` as the manual dir, or a split of ``skimage_photos``. A
    prepared folder set whose folder has changed is prepared again.

    Args:
      set_name: one of :func:`cmsc_tf.io.image_sets.set_names`.
      data_dir: the datasets folder (layout of the shared ``datasets/``); default
        $CMSC_DATA_DIR. Not needed for the skimage sets.
      tfds_dir: where TFDS keeps prepared sets (default: TFDS's own default,
        ~/tensorflow_datasets or $TFDS_DATA_DIR).
    """
    tfds_dir = str(_tfds_base(tfds_dir))
    for split, skimage_set in SkimagePhotos.SPLITS.items():
        if set_name == skimage_set:
            builder = tfds.builder("skimage_photos", data_dir=tfds_dir)
            builder.download_and_prepare()
            return builder.as_dataset(split=split, shuffle_files=False)
    image_sets.set_folder(set_name, data_dir)  # the name and folder errors, before TFDS's
    manual_dir = str(image_sets.resolve_data_dir(data_dir).resolve())
    builder = tfds.builder(f"sr_folder/{set_name}", data_dir=tfds_dir)
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except StalePreparationError:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir, download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS))
        builder = tfds.builder(f"sr_folder/{set_name}", data_dir=tfds_dir)
    # Files are read in order: deterministic; shuffling happens in the pipeline.
    return builder.as_dataset(split=builder.builder_config.split, shuffle_files=False)


def load_arrays(set_name, data_dir=None, tfds_dir=None):
    """The same images as a list of (name, [H, W, 3] uint8, grayscale) in NumPy."""
    return [(ex["name"].decode(), ex["image"], bool(ex["grayscale"]))
            for ex in tfds.as_numpy(load_images(set_name, data_dir, tfds_dir))]
