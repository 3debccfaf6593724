"""The TFDS builders read local folders only, through image_sets, and never serve a stale copy."""

import shutil

import numpy as np
import pytest
from PIL import Image

from cmsc_tf.io import images, tfds_sets


def make_set(root, names, gray=()):
    folder = root / "benchmark" / "Set5"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        shape = (12, 17) if name in gray else (12, 17, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def test_folder_set_round_trip_with_grayscale_flag(tmp_path):
    make_set(tmp_path / "data", ["a", "b", "c"], gray=("b",))
    images = {name: (image, gray) for name, image, gray in
              tfds_sets.load_arrays("set5", data_dir=tmp_path / "data", tfds_dir=tmp_path / "tfds")}
    assert sorted(images) == ["a.png", "b.png", "c.png"]
    assert {name: gray for name, (_, gray) in images.items()} == {
        "a.png": False, "b.png": True, "c.png": False}
    source = np.asarray(Image.open(tmp_path / "data" / "benchmark" / "Set5" / "a.png"))
    np.testing.assert_array_equal(images["a.png"][0], source)


def test_changed_or_other_folder_is_prepared_again(tmp_path):
    folder = make_set(tmp_path / "one", ["a", "b"])
    tfds_dir = tmp_path / "tfds"
    assert len(tfds_sets.load_arrays("set5", data_dir=tmp_path / "one", tfds_dir=tfds_dir)) == 2
    (folder / "b.png").unlink()
    assert [n for n, _, _ in tfds_sets.load_arrays("set5", data_dir=tmp_path / "one", tfds_dir=tfds_dir)] == ["a.png"]
    make_set(tmp_path / "two", ["x", "y", "z"])
    assert len(tfds_sets.load_arrays("set5", data_dir=tmp_path / "two", tfds_dir=tfds_dir)) == 3


def test_missing_folder_is_a_clear_error_even_when_a_copy_was_prepared(tmp_path):
    make_set(tmp_path / "data", ["a"])
    tfds_sets.load_arrays("set5", data_dir=tmp_path / "data", tfds_dir=tmp_path / "tfds")
    shutil.rmtree(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match="folder .*Set5 not found"):
        tfds_sets.load_arrays("set5", data_dir=tmp_path / "data", tfds_dir=tmp_path / "tfds")
    with pytest.raises(ValueError, match="CMSC_DATA_DIR"):
        tfds_sets.load_arrays("set5", data_dir=None, tfds_dir=tmp_path / "tfds")


def test_rgb_example_keeps_the_grayscale_fact_of_every_mode(tmp_path):
    gray_alpha = np.dstack([np.full((5, 6), 80, np.uint8), np.full((5, 6), 255, np.uint8)])
    Image.fromarray(gray_alpha, "LA").save(tmp_path / "la.png")
    image, gray = tfds_sets.as_rgb_uint8(images.read_image(tmp_path / "la.png"))
    assert gray and image.shape == (5, 6, 3) and (image == 80).all()
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "wide.png")
    image, gray = tfds_sets.as_rgb_uint8(images.read_image(tmp_path / "wide.png"))
    assert gray and (image == 255).all()
    rgba = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    image, gray = tfds_sets.as_rgb_uint8(rgba)
    assert not gray and np.array_equal(image, rgba[..., :3])
    with pytest.raises(ValueError, match="uint8"):
        tfds_sets.as_rgb_uint8(rgba.astype(np.float32))


def test_skimage_sets_are_the_embedded_photographs(tmp_path):
    from cmsc_tf.io import image_sets

    arrays = tfds_sets.load_arrays("skimage_test", tfds_dir=tmp_path / "tfds")
    assert sorted(name for name, _, _ in arrays) == sorted(image_sets.TEST_PHOTOS)
    by_name = {name: (image, gray) for name, image, gray in arrays}
    image, gray = by_name["coins"]
    assert gray and np.array_equal(image[..., 0], image_sets.load_photo("coins"))


def test_registered_builder_in_the_standard_layout(tmp_path):
    import tensorflow_datasets as tfds

    make_set(tmp_path / "manual", ["a", "b"], gray=("a",))
    builder = tfds.builder("sr_folder", data_dir=tmp_path / "tfds", config="set5")
    assert builder.info.full_name == "sr_folder/set5/1.0.0"
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "manual"))
    ds = tfds.load("sr_folder/set5", split="test", data_dir=tmp_path / "tfds", download=False)
    got = {ex["name"].decode(): bool(ex["grayscale"]) for ex in tfds.as_numpy(ds)}
    assert got == {"a.png": True, "b.png": False}


def test_tfds_load_with_the_default_manual_dir_and_a_stale_check(tmp_path):
    import tensorflow_datasets as tfds

    data_dir = tmp_path / "tfds"
    folder = make_set(data_dir / "downloads" / "manual", ["a", "b", "c"], gray=("c",))
    ds = tfds.load("sr_folder/set5", split="test", data_dir=data_dir)
    got = {ex["name"].decode(): bool(ex["grayscale"]) for ex in tfds.as_numpy(ds)}
    assert got == {"a.png": False, "b.png": False, "c.png": True}
    (folder / "b.png").unlink()
    with pytest.raises(tfds_sets.StalePreparationError, match="Re-prepare"):
        tfds.load("sr_folder/set5", split="test", data_dir=data_dir)
    other = make_set(tmp_path / "other", ["x"])
    with pytest.raises(tfds_sets.StalePreparationError, match="differs"):
        tfds.builder("sr_folder/set5", data_dir=data_dir).download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=other.parent.parent))
    ds = tfds.load("sr_folder/set5", split="test", data_dir=data_dir, download_and_prepare_kwargs={
        "download_config": tfds.download.DownloadConfig(
            download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)})
    assert sorted(ex["name"].decode() for ex in tfds.as_numpy(ds)) == ["a.png", "c.png"]


def test_skimage_photos_is_registered(tmp_path):
    import tensorflow_datasets as tfds
    from cmsc_tf.io import image_sets

    ds = tfds.load("skimage_photos", split="test", data_dir=tmp_path / "tfds")
    assert sorted(ex["name"].decode() for ex in tfds.as_numpy(ds)) == sorted(image_sets.TEST_PHOTOS)
