"""Evaluation plots: predicted vs gold scatter and confusion matrix, written as PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hintgrpo.tasks import TaskSpec  # noqa: E402

UNPARSED = "(no answer)"


def plot_scatter(records: list[dict], task: TaskSpec, path: Path, title: str) -> None:
    parsed = [r for r in records if r["answer"] is not None]
    low, high = task.score_range
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter([r["label"] for r in parsed], [r["answer"] for r in parsed], s=8, alpha=0.4)
    axes.plot([low, high], [low, high], color="grey", linewidth=1)
    axes.set(xlim=(low, high), ylim=(low, high), xlabel="gold score", ylabel="predicted score")
    axes.set_title(f"{title}\n{len(parsed)}/{len(records)} parsed", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_confusion(records: list[dict], task: TaskSpec, path: Path, title: str, coarse: bool) -> None:
    """Rows gold, columns predicted; `coarse` compares polarities of scores instead of labels."""
    classes = list(task.polarities if coarse else task.labels)
    columns = [*classes, UNPARSED]
    counts = np.zeros((len(classes), len(columns)), dtype=int)
    for record in records:
        gold = record["gold_polarity"] if coarse else record["label"]
        answer = record["answer"]
        predicted = answer if answer is None or not coarse else task.polarity_of(answer)
        predicted = UNPARSED if predicted is None else predicted
        counts[classes.index(gold), columns.index(predicted)] += 1
    figure, axes = plt.subplots(figsize=(1.2 * len(columns) + 2, 1.0 * len(classes) + 2))
    axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        axes.text(column, row, str(count), ha="center", va="center", fontsize=8)
    axes.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set(xlabel="predicted", ylabel="gold")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
