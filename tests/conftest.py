"""Shared pytest fixtures and settings."""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
