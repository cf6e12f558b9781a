"""Step results cached the way `datasets` caches `map`: an Arrow file named by a fingerprint of the inputs.

The fingerprint hashes the input dataset's fingerprint (content-based, also for in-memory datasets), the step's
name, its options and the source of the modules that compute it, so a rerun with the same inputs loads the file
and any change to data, options or code computes afresh. Work a step needs only when it computes (training a
denoiser, loading an encoder) is done lazily inside the mapped function, so a cache hit skips it.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from datasets import Dataset
from datasets.fingerprint import Hasher

from hintgrpo.models.loading import cache_dir


def default_cache_dir() -> Path:
    return cache_dir() / "preprocess"


def options_of(args, *option_classes: type) -> dict:
    """The values of `args`' fields that `option_classes` declare (`args` may inherit many more, as the recipe's do)."""
    return {f.name: getattr(args, f.name) for cls in option_classes for f in dataclasses.fields(cls)}


def step_fingerprint(dataset: Dataset, step: str, options, modules: tuple[ModuleType, ...]) -> str:
    sources = [inspect.getsource(module) for module in modules]
    return Hasher.hash([dataset._fingerprint, step, options, sources])


def cached_map(
    dataset: Dataset,
    function: Callable,
    *,
    step: str,
    options,
    modules: tuple[ModuleType, ...],
    cache_dir: str | os.PathLike | None = None,
    **map_kwargs,
) -> Dataset:
    """`dataset.map(function, **map_kwargs)`, loaded from `cache_dir` when the step already ran on the same input."""
    fingerprint = step_fingerprint(dataset, step, options, modules)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return dataset.map(
        function,
        cache_file_name=str(folder / f"{step}-{fingerprint}.arrow"),
        new_fingerprint=fingerprint,
        desc=step,
        **map_kwargs,
    )
