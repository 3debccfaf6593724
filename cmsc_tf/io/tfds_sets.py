"""One entry point to the HR image sets: `load_images(set_name, ...)`.

A set name is either an `SrFolder` config (`t91`, `bsd200`, `set5`, `set14`,
`bsd100`, `urban100`), read from the datasets folder, or `skimage_train` /
`skimage_test`, the embedded photographs. Preparing a set (once, into the TFDS
directory) reads local files only: GCS and downloads are switched off.
"""

import hashlib
import os
import pathlib

import tensorflow_datasets as tfds

from training.datasets import image_files, skimage_photos, sr_folder

DATA_DIR_ENV = "CMSC_DATA_DIR"
SKIMAGE_SETS = {"skimage_train": "train", "skimage_test": "test"}


def folder_set_names():
    return tuple(config.name for config in sr_folder.SrFolder.BUILDER_CONFIGS)


def set_names():
    return folder_set_names() + tuple(SKIMAGE_SETS)


def resolve_data_dir(data_dir=None):
    """The datasets folder: the argument, else $CMSC_DATA_DIR, else None."""
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    return pathlib.Path(data_dir).expanduser() if data_dir else None


def _builder(set_name, data_dir, tfds_dir):
    if set_name in SKIMAGE_SETS:
        return skimage_photos.SkimagePhotos(data_dir=tfds_dir), SKIMAGE_SETS[set_name], None
    if set_name not in folder_set_names():
        raise ValueError(f"unknown image set {set_name!r}; known: {', '.join(set_names())}")
    root = resolve_data_dir(data_dir)
    if root is None:
        raise ValueError(
            f"image set {set_name!r} is read from a local datasets folder: pass "
            f"--data_dir or set {DATA_DIR_ENV}.\n"
            + sr_folder.SrFolder.MANUAL_DOWNLOAD_INSTRUCTIONS)
    config = next(c for c in sr_folder.SrFolder.BUILDER_CONFIGS if c.name == set_name)
    folder = root / config.subdir
    if not folder.is_dir():
        raise FileNotFoundError(
            f"image set {set_name!r}: folder {folder} not found.\n"
            + sr_folder.SrFolder.MANUAL_DOWNLOAD_INSTRUCTIONS)
    # TFDS keys a prepared set by name and version only; a subfolder named by
    # the folder's fingerprint makes another folder, or changed images, a
    # new preparation instead of a silently stale one.
    prepared_dir = _tfds_base(tfds_dir) / "sr_folder_sources" / folder_fingerprint(folder)
    builder = sr_folder.SrFolder(config=set_name, data_dir=str(prepared_dir))
    return builder, builder.builder_config.split, root


def _tfds_base(tfds_dir):
    base = tfds_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return pathlib.Path(base).expanduser()


def folder_fingerprint(folder):
    """A short hash of the folder's absolute path and its images' names, sizes and times."""
    digest = hashlib.sha1(str(pathlib.Path(folder).resolve()).encode())
    for path in image_files.list_images(folder):
        stat = path.stat()
        digest.update(f"\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def load_images(set_name, data_dir=None, tfds_dir=None):
    """tf.data.Dataset of {"image": [H, W, 3] uint8, "grayscale": bool, "name": str}.

    Args:
      set_name: one of `set_names()`.
      data_dir: the datasets folder (layout of the shared `datasets/`); default
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


def concatenate(datasets):
    """Concatenation of several image datasets, in order."""
    result = datasets[0]
    for dataset in datasets[1:]:
        result = result.concatenate(dataset)
    return result

