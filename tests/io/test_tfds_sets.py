"""The TFDS builders read local folders only, and never serve a stale copy."""

import shutil

import numpy as np
import pytest
from PIL import Image

from training.datasets import loading


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
              loading.load_arrays("set5", data_dir=tmp_path / "data", tfds_dir=tmp_path / "tfds")}
    assert sorted(images) == ["a.png", "b.png", "c.png"]
    assert {name: gray for name, (_, gray) in images.items()} == {
        "a.png": False, "b.png": True, "c.png": False}
    source = np.asarray(Image.open(tmp_path / "data" / "benchmark" / "Set5" / "a.png"))
    np.testing.assert_array_equal(images["a.png"][0], source)


def test_changed_or_other_folder_is_prepared_again(tmp_path):
    folder = make_set(tmp_path / "one", ["a", "b"])
    tfds_dir = tmp_path / "tfds"
    assert len(loading.load_arrays("set5", data_dir=tmp_path / "one", tfds_dir=tfds_dir)) == 2
    (folder / "b.png").unlink()
    assert [n for n, _, _ in loading.load_arrays("set5", data_dir=tmp_path / "one", tfds_dir=tfds_dir)] == ["a.png"]
    make_set(tmp_path / "two", ["x", "y", "z"])
    assert len(loading.load_arrays("set5", data_dir=tmp_path / "two", tfds_dir=tfds_dir)) == 3


def test_missing_folder_is_a_clear_error_even_when_a_copy_was_prepared(tmp_path):
    make_set(tmp_path / "data", ["a"])
    loading.load_arrays("set5", data_dir=tmp_path / "data", tfds_dir=tmp_path / "tfds")
    shutil.rmtree(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match="folder .*Set5 not found"):
        loading.load_arrays("set5", data_dir=tmp_path / "data", tfds_dir=tmp_path / "tfds")
    with pytest.raises(ValueError, match="CMSC_DATA_DIR"):
        loading.load_arrays("set5", data_dir=None, tfds_dir=tmp_path / "tfds")


def test_training_reader_handles_modes_and_names_corrupt_files(tmp_path):
    from training.datasets import image_files

    gray_alpha = np.dstack([np.full((5, 6), 80, np.uint8), np.full((5, 6), 255, np.uint8)])
    Image.fromarray(gray_alpha, "LA").save(tmp_path / "la.png")
    image, gray = image_files.read_image(tmp_path / "la.png")
    assert gray and image.shape == (5, 6, 3) and (image == 80).all()
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "wide.png")
    image, gray = image_files.read_image(tmp_path / "wide.png")
    assert gray and (image == 255).all()
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="bad.png"):
        image_files.read_image(tmp_path / "bad.png")
