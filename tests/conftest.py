"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real datasets (../shared/data beside the checkout, or $HINTGRPO_DATA_DIR); present in CI."""
    env = os.environ.get("HINTGRPO_DATA_DIR")
    return (Path(env) if env else Path(__file__).parents[1].parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2 chat model with an offline-trained tokenizer (built once per session)."""
    from hintgrpo.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_qwen2"))


@pytest.fixture
def run_until_killed():
    """Start a command and SIGKILL it once `path` holds `lines` complete lines; returns the bytes written by then."""
    import signal
    import subprocess
    import time

    def run(command: list[str], path: Path, lines: int, timeout: float, **popen) -> bytes:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
        try:
            deadline = time.monotonic() + timeout
            while not (path.is_file() and path.read_bytes().count(b"\n") >= lines):
                assert process.poll() is None and time.monotonic() < deadline, "the run ended before it was killed"
                time.sleep(0.01)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
        assert process.returncode == -signal.SIGKILL
        return path.read_bytes()

    return run
