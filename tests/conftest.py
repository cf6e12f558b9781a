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
