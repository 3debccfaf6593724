"""The one image lister: set names, folder layout, clear errors, the embedded photographs."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from cmsc_tf.io import image_sets, images
from cmsc_tf.numerics import color


def make_set5(root, arrays):
    folder = root / "benchmark" / "Set5"
    folder.mkdir(parents=True)
    for name, array in arrays.items():
        Image.fromarray(array).save(folder / name)
    return folder


def test_set_names_are_the_folder_sets_then_the_embedded_ones():
    assert image_sets.set_names() == ("t91", "bsd200", "set5", "set14", "bsd100", "urban100",
                                      "sunhays80", "skimage_train", "skimage_test")
    assert image_sets.FOLDER_SETS["t91"] == "train/T91" and image_sets.FOLDER_SETS["set5"] == "benchmark/Set5"
    assert not set(image_sets.TRAIN_PHOTOS) & set(image_sets.TEST_PHOTOS)


def test_list_images_sorts_filters_and_names_missing_or_empty_folders(tmp_path):
    for name in ("b.PNG", "a.bmp", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "c.png").mkdir()  # a folder is not an image
    assert [p.name for p in image_sets.list_images(tmp_path)] == ["a.bmp", "b.PNG"]
    with pytest.raises(FileNotFoundError, match="image folder not found: .*missing"):
        image_sets.list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images .* in .*empty"):
        image_sets.list_images(tmp_path / "empty")


def test_read_set_returns_what_read_image_returns_in_name_order(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"b.png": rng.integers(0, 256, (9, 7, 3), dtype=np.uint8),
              "a.png": rng.integers(0, 256, (9, 7), dtype=np.uint8),
              "c.png": rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)}
    folder = make_set5(tmp_path, arrays)
    read = image_sets.read_set("set5", data_dir=tmp_path)
    assert [name for name, _ in read] == ["a.png", "b.png", "c.png"]
    for name, array in read:
        np.testing.assert_array_equal(array, images.read_image(folder / name))
        np.testing.assert_array_equal(array, arrays[name])
    luminance = dict(image_sets.read_luminance_set("set5", data_dir=tmp_path))
    np.testing.assert_array_equal(luminance["a.png"], arrays["a.png"])  # gray kept as is
    np.testing.assert_array_equal(luminance["b.png"], color.rgb2ycbcr(arrays["b.png"])[..., 0])
    np.testing.assert_array_equal(luminance["c.png"], color.rgb2ycbcr(arrays["c.png"][..., :3])[..., 0])  # alpha dropped


def test_data_dir_comes_from_the_environment(tmp_path, monkeypatch):
    make_set5(tmp_path, {"a.png": np.zeros((4, 4), np.uint8)})
    monkeypatch.setenv(image_sets.DATA_DIR_ENV, str(tmp_path))
    assert [name for name, _ in image_sets.read_set("set5")] == ["a.png"]
    assert image_sets.resolve_data_dir() == tmp_path
    assert image_sets.resolve_data_dir(tmp_path / "other") == tmp_path / "other"


def test_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(image_sets.DATA_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match="unknown image set 'set6'; known: t91, .*skimage_test"):
        image_sets.read_set("set6")
    # One line each, pointing to the layout (which names every set's folder).
    with pytest.raises(ValueError, match="^[^\n]*pass --data_dir or set CMSC_DATA_DIR [^\n]*LAYOUT_HELP[^\n]*$"):
        image_sets.read_set("set5")
    with pytest.raises(FileNotFoundError, match="^[^\n]*folder .*benchmark/Set14 not found [^\n]*LAYOUT_HELP[^\n]*$"):
        image_sets.read_luminance_set("set14", data_dir=tmp_path)
    assert "<root>/benchmark/Set5/" in image_sets.LAYOUT_HELP


def test_embedded_sets_are_the_skimage_photographs():
    import skimage.data

    read = dict(image_sets.read_set("skimage_test"))
    assert sorted(read) == sorted(image_sets.TEST_PHOTOS) == ["astronaut", "chelsea", "coins"]
    np.testing.assert_array_equal(read["coins"], skimage.data.coins())
    assert read["coins"].ndim == 2 and read["astronaut"].shape[-1] == 3
    train = dict(image_sets.read_set("skimage_train"))
    assert sorted(train) == sorted(image_sets.TRAIN_PHOTOS)
    np.testing.assert_array_equal(train["stereo_motorcycle"], skimage.data.stereo_motorcycle()[0])


def test_embedded_benchmark_writes_the_held_out_photographs_losslessly(tmp_path):
    import skimage.data

    folder = image_sets.write_embedded_benchmark(tmp_path)
    paths = image_sets.list_images(folder / image_sets.EMBEDDED_SET)
    assert [p.stem for p in paths] == ["astronaut", "chelsea", "coins"]
    np.testing.assert_array_equal(images.read_image(paths[0]), skimage.data.astronaut())
    np.testing.assert_array_equal(images.read_image(paths[2]), skimage.data.coins())


def test_embedded_evaluation_photos_are_disjoint_from_training_photos_by_pixels(tmp_path):
    """What training.evaluate scores without a data_dir shares no image with skimage_train."""
    from cmsc_tf.io import images

    folder = pathlib.Path(image_sets.write_embedded_benchmark(tmp_path)) / image_sets.EMBEDDED_SET
    evaluated = {p.stem: images.read_image(p) for p in sorted(folder.iterdir())}
    assert sorted(evaluated) == sorted(image_sets.TEST_PHOTOS)
    assert not set(evaluated) & set(image_sets.TRAIN_PHOTOS)
    for train_name, train_image in image_sets.read_set("skimage_train"):
        for name, image in evaluated.items():
            assert not (image.shape == train_image.shape and np.array_equal(image, train_image)), (name, train_name)
