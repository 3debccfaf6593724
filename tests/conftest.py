"""Shared pytest fixtures and settings."""

import os
import pathlib
import signal

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A suite started in the background by a non-interactive shell (`.ci/run &`)
# inherits SIGINT ignored, and so would every command it starts: Ctrl-C tests
# (tests/training/test_entry.py) would then time a run that cannot be
# interrupted. A terminal's foreground process has Python's handler; giving
# it to the suite makes its children start with SIGINT at the default again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("CMSC_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        message = f"shared material not found at {SHARED} (set CMSC_SHARED_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI always has ../shared: a skip there would hide tests
        pytest.skip(message)
    return SHARED
