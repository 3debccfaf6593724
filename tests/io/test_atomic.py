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


def test_temporary_names_are_hidden_recognisable_and_keep_the_suffix(tmp_path):
    with atomic.atomic_path(tmp_path / "model.keras") as temporary:
        name = os.path.basename(temporary)
        assert name.startswith(".tmp-") and name.endswith("-model.keras") and atomic.is_temporary(temporary)
    assert not atomic.is_temporary(tmp_path / "model.keras")


# 247 characters; 248 bytes, the cut falling inside a two-byte character.
@pytest.mark.parametrize("name", ["b" * 243 + ".png", "é" * 121 + "ab.png"])
def test_long_names_fit_the_filesystem_limit(tmp_path, name):
    """The temporary name is cut from the left to fit NAME_MAX (in bytes), keeping the suffix."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    assert len(os.fsencode(name)) <= limit
    with atomic.atomic_path(tmp_path / name) as temporary:
        temporary_name = os.fsencode(os.path.basename(temporary))
        assert len(temporary_name) <= limit and temporary_name.endswith(b"b.png")
        os.fsdecode(temporary_name).encode("utf-8")  # no half character was left at the cut
        with open(temporary, "w") as f:
            f.write("done")
    assert os.listdir(tmp_path) == [name]


def test_output_checks_refuse_what_cannot_be_written(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    os.mkfifo(tmp_path / "fifo")
    atomic.check_output_folder(tmp_path / "new" / "deeper")  # creatable: fine, and nothing is created
    atomic.check_output_file(tmp_path / "new" / "out.json")
    atomic.check_output_file(blocker)  # an existing file is replaced
    assert sorted(os.listdir(tmp_path)) == ["a_file", "fifo"]
    for check, path, message in [
        (atomic.check_output_folder, blocker, f"{blocker} is not a folder"),
        (atomic.check_output_folder, blocker / "sub", f"{blocker} is not a folder"),
        (atomic.check_output_file, blocker / "out.json", f"{blocker} is not a folder"),
        (atomic.check_output_file, tmp_path, f"{tmp_path} is a folder, not a file"),
        (atomic.check_output_file, tmp_path / "fifo", "exists and is not a regular file"),
    ]:
        with pytest.raises(ValueError, match=message):
            check(path)


def test_output_checks_refuse_an_unwritable_folder(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.access(locked, os.W_OK):  # root: permissions do not bind; pretend they do
        monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(locked))
    with pytest.raises(ValueError, match=f"{locked} is not a writable folder"):
        atomic.check_output_folder(locked / "new")
    with pytest.raises(ValueError, match=f"{locked} is not a writable folder"):
        atomic.check_output_file(locked / "out.json")


def test_data_reach_the_disk_before_the_rename_and_the_rename_after(tmp_path, monkeypatch):
    # Without the first fsync a power loss can leave the final name on an empty file.
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source, destination):
        events.append(("replace", str(source), str(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    target = tmp_path / "state.json"
    atomic.write_text(target, "{}")
    temporary = events[1][1]
    assert atomic.is_temporary(temporary)
    assert events == [("fsync", temporary), ("replace", temporary, str(target)), ("fsync", str(tmp_path))]
