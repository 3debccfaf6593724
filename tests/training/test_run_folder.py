"""A run folder is owned: no clobbering without state.json, one trainer at a time, no temporary
survivors, no damaged or non-finite checkpoint resumed (issue 23, point 5)."""

import json
import os
import re
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests import training_helpers as helpers
from training.lib import checkpointing, trainer
from training.lib.checkpointing import RunFolderError
from tests.training.test_train_run import tiny_config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A folder holding one whole run of 1 epoch (its files are copied by the tests that damage them)."""
    model_dir = tmp_path_factory.mktemp("run")
    trainer.run(tiny_config(model_dir))
    return model_dir


def copy_run(source, target):
    target.mkdir()
    for path in source.iterdir():
        if path.is_file() and path.name != checkpointing.LOCK_FILE:
            (target / path.name).write_bytes(path.read_bytes())
    return target


def test_a_run_without_state_json_is_refused_and_kept(finished_run, tmp_path):
    model_dir = copy_run(finished_run, tmp_path / "run")
    (model_dir / "state.json").unlink()
    before = {p.name: p.read_bytes() for p in model_dir.iterdir()}

    with pytest.raises(RunFolderError, match=r"but no state.json, so it cannot be resumed; rerun with --restart"):
        trainer.run(tiny_config(model_dir, epochs=2))

    assert {p.name: p.read_bytes() for p in model_dir.iterdir() if p.name != ".lock"} == before


def test_restart_sets_the_old_run_aside_and_starts_at_step_0(finished_run, tmp_path):
    model_dir = copy_run(finished_run, tmp_path / "run")
    (model_dir / "state.json").unlink()
    old = sorted(p.name for p in model_dir.iterdir() if p.name != ".lock")

    summary, _ = trainer.run(tiny_config(model_dir), restart=True)

    assert summary["step"] == 3
    assert sorted(p.name for p in (model_dir / "previous-1").iterdir()) == old
    rows = (model_dir / "training_log.csv").read_text().splitlines()
    assert len(rows) == 2  # header and this run's one epoch, not appended to the old log


def test_a_second_trainer_is_refused_naming_the_holder(tmp_path):
    model_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom training.lib import checkpointing\n"
         f"with checkpointing.owned_run({str(model_dir)!r}):\n    print('held', flush=True)\n    sys.stdin.readline()"],
        cwd=helpers.REPO_ROOT, env=helpers.python_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match=rf"is in use by another trainer \(pid {holder.pid}\)"):
            trainer.run(tiny_config(model_dir))
    finally:
        holder.communicate("\n", timeout=60)
    assert not (model_dir / "state.json").exists()
    # The holder has ended: its lock file stays, but the lock went with the process.
    with checkpointing.owned_run(model_dir):
        assert (model_dir / ".lock").read_text() == f"{os.getpid()}\n"


def test_temporary_files_of_a_killed_writer_are_swept(tmp_path):
    leftover = tmp_path / ".tmp-0123abcd-ckpt-s000000002.weights.h5"
    leftover.write_bytes(b"partial")
    with checkpointing.owned_run(tmp_path):
        assert not leftover.exists()


def test_a_non_finite_checkpoint_is_not_resumed(finished_run, tmp_path):
    model_dir = copy_run(finished_run, tmp_path / "run")
    state = json.loads((model_dir / "state.json").read_text())
    model = trainer.build_and_compile(tiny_config(model_dir))
    checkpointing.restore(model, model_dir)
    model.trainable_variables[0].assign(np.full(model.trainable_variables[0].shape, np.nan, np.float32))
    model.save_weights(str(model_dir / state["weights"]))

    with pytest.raises(RunFolderError, match=rf"{state['weights']}: the checkpoint holds NaN or infinite weights"
                                             r".*--restart"):
        trainer.run(tiny_config(model_dir, epochs=2))


def test_a_truncated_checkpoint_is_named_with_the_fix(finished_run, tmp_path):
    model_dir = copy_run(finished_run, tmp_path / "run")
    weights = model_dir / json.loads((model_dir / "state.json").read_text())["weights"]
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

    result = helpers.run_main(helpers.tiny_flags(model_dir, epochs=3, steps_per_epoch=3), timeout=300)

    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"training.main: error: {weights}: cannot be read as this run's checkpoint")
    assert "damaged or truncated" in last and "--restart" in last
    assert "Traceback" not in result.stderr


def test_a_full_disk_is_one_line_and_keeps_the_last_whole_checkpoint(finished_run, tmp_path):
    # A file-size limit below a checkpoint's size fails its write as a full disk does (EFBIG
    # instead of ENOSPC), and needs no filesystem of its own. HDF5 writing the file itself
    # ended in a segmentation fault (exit 139), in its close or at exit.
    model_dir = copy_run(finished_run, tmp_path / "run")
    state = json.loads((model_dir / "state.json").read_text())
    weights = helpers.h5_arrays(model_dir / state["weights"])
    limit = (model_dir / state["weights"]).stat().st_size // 2

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    result = subprocess.run([sys.executable, "-m", "training.main",
                             *helpers.tiny_flags(model_dir, epochs=3, steps_per_epoch=3)],
                            cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True, text=True,
                            timeout=300, preexec_fn=limit_file_size)

    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert len(errors) == 1 and re.fullmatch(
        rf"training\.main: error: cannot write checkpoint {re.escape(str(model_dir))}/ckpt-s\d+\.weights\.h5: "
        rf"File too large; state\.json still names {re.escape(state['weights'])}, a whole checkpoint: free some "
        r"space and rerun the same command to resume from it", errors[0]), result.stderr
    assert json.loads((model_dir / "state.json").read_text()) == state
    resumable = helpers.h5_arrays(model_dir / state["weights"])
    assert resumable.keys() == weights.keys()
    assert all(np.array_equal(resumable[key], weights[key]) for key in weights)
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".tmp-")]


SLOW_CHECKPOINT = """
import pathlib
import sys
from cmsc_tf import entry
from training import main
write_bytes = pathlib.Path.write_bytes
def write_and_wait(self, data):
    written = write_bytes(self, data)
    if self.name.startswith(".tmp-") and self.name.endswith(".weights.h5"):
        print("writing", self, flush=True)
        sys.stdin.readline()  # until SIGTERM
    return written
pathlib.Path.write_bytes = write_and_wait
sys.argv = ["training.main", *sys.argv[1:]]
entry.run(main.main, "training.main", interrupted="rerun to resume")
"""


def test_sigterm_during_a_checkpoint_write_leaves_no_temporary_file(tmp_path):
    model_dir = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", SLOW_CHECKPOINT, *helpers.tiny_flags(model_dir)],
                             cwd=helpers.REPO_ROOT, env=helpers.python_env(), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    while line and not line.startswith("writing "):
        line = child.stdout.readline()
    temporary = line.split(" ", 1)[1].strip()
    assert os.path.basename(temporary).startswith(".tmp-") and os.path.exists(temporary)

    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)

    assert child.returncode == 143
    assert stderr.strip().splitlines()[-1] == "training.main: interrupted by SIGTERM; rerun to resume"
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".tmp-")]


def test_the_committed_run_folders_hold_the_checkpoint_their_state_names():
    """Each phase flag file's --init_from, and each committed run folder, can start a run from a
    fresh clone: a weights file that .gitignore keeps out unless force-added would leave the
    next phase nothing to start from."""
    import pathlib

    from absl import flags as absl_flags

    repo = helpers.REPO_ROOT
    tracked = set(subprocess.run(["git", "ls-files", "checkpoints"], cwd=repo, capture_output=True, text=True,
                                 check=True).stdout.split())
    folders = sorted({pathlib.Path(path).parent for path in tracked})
    assert folders, "no committed run folder"
    for folder in folders:
        state = checkpointing.read_state(repo / folder)
        assert str(folder / state["weights"]) in tracked, f"{folder}: {state['weights']} is not committed"
    for flag_file in sorted((repo / "training/flags").glob("*.flags")):
        # absl's own flag-file reader, so that nested --flagfile lines are followed
        argv = absl_flags.FlagValues().read_flags_from_files([f"--flagfile={flag_file}"], force_gnu=False)
        init_from = [arg.split("=", 1)[1] for arg in argv if arg.startswith("--init_from=")]
        for source in init_from[-1:]:
            path = pathlib.Path(source)
            if path.suffix in (".keras", ".h5"):
                assert str(path) in tracked or (repo / path).is_file(), f"{flag_file.name}: {path} is missing"
            else:
                assert path.as_posix() in {str(folder) for folder in folders}, f"{flag_file.name}: {path}"
