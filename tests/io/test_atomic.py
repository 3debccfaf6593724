"""Atomic writes: the final path holds the whole file or nothing."""

import os

import pytest

from cmsc_tf.io import atomic


def test_success_renames_into_place_with_usual_permissions(tmp_path):
    target = tmp_path / "sub" / "model.weights.h5"
    with atomic.atomic_path(target) as temporary:
        assert temporary.endswith("model.weights.h5")  # writers that check the suffix accept it
        assert not target.exists()
        with open(temporary, "w") as f:
            f.write("done")
    assert target.read_text() == "done"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert os.listdir(target.parent) == ["model.weights.h5"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_leaves_neither_file_nor_temporary(tmp_path, error):
    target = tmp_path / "out.json"
    target.write_text("previous")
    with pytest.raises(type(error)):
        with atomic.atomic_path(target) as temporary:
            with open(temporary, "w") as f:
                f.write("half")
            raise error
    assert target.read_text() == "previous"  # the old file is untouched
    assert os.listdir(tmp_path) == ["out.json"]
