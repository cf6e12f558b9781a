"""Task registry: what a sentiment task predicts, how its answers are judged and how it is worded."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

POLARITIES = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class TaskSpec:
    """Everything the format, rewards, metrics and prompts need to know about one task.

    Regression tasks predict a score in `score_range`; their coarse (discrimination) result is the
    polarity of the score with a neutral band of `neutral_band` around zero. Classification tasks
    predict one of `labels`; their coarse result is `coarse_of_label[label]`, except for the
    `row_polarity_labels`, whose coarse result is the row's own gold polarity where it is known.
    """

    name: str
    kind: str  # "regression" or "classification"
    dataset: str  # folder under the data directory
    metric_suite: str  # "mosi", "sims" or "classification"
    instruction: str  # what the model is asked to judge, in the prompt
    score_range: tuple[float, float] | None = None
    neutral_band: float = 0.0
    labels: tuple[str, ...] = ()
    coarse_of_label: dict[str, str] = field(default_factory=dict)
    polarities: tuple[str, ...] = POLARITIES
    row_polarity_labels: tuple[str, ...] = ()

    @property
    def is_regression(self) -> bool:
        return self.kind == "regression"

    def polarity_of(self, value: float | str, row_polarity: str | None = None) -> str:
        """Coarse result of a gold or predicted value: a polarity for scores, a coarse label for classes.

        `row_polarity`, the gold polarity of the row the value answers, is the result for a `row_polarity_labels`
        label.
        """
        if self.is_regression:
            score = float(value)
            if score > self.neutral_band:
                return "positive"
            if score < -self.neutral_band:
                return "negative"
            return "neutral"
        if value in self.row_polarity_labels and row_polarity is not None:
            return row_polarity
        return self.coarse_of_label[str(value)]

    def in_range(self, score: float) -> bool:
        low, high = self.score_range
        return math.isfinite(score) and low <= score <= high

    def answer_format(self) -> str:
        """How the final answer must be written, as told to the model."""
        if self.is_regression:
            low, high = self.score_range
            return f"a single number from {low:g} (most negative) to {high:g} (most positive)"
        return "exactly one of: " + ", ".join(self.labels)

    def coarse_format(self) -> str:
        return " / ".join(self.polarities)


_MOSI_INSTRUCTION = "Judge the sentiment the speaker expresses in the utterance."

TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    if spec.kind not in ("regression", "classification"):
        raise ValueError(f"task {spec.name!r}: kind must be 'regression' or 'classification', got {spec.kind!r}")
    if spec.is_regression and spec.score_range is None:
        raise ValueError(f"task {spec.name!r}: a regression task needs a score_range")
    if not spec.is_regression:
        missing = [label for label in spec.labels if label not in spec.coarse_of_label]
        if missing:
            raise ValueError(f"task {spec.name!r}: labels without a coarse result: {missing}")
    TASKS[spec.name] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:  # a ValueError: the name is a user's option, not a lookup our code got wrong
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


# A score whose 7-class rounding is 0 (|s| <= 0.5) counts as neutral on the [-3, 3] scale.
for _name in ("mosi", "mosei"):
    register_task(
        TaskSpec(
            name=_name,
            kind="regression",
            dataset=_name,
            metric_suite="mosi",
            instruction=_MOSI_INSTRUCTION,
            score_range=(-3.0, 3.0),
            neutral_band=0.5,
        )
    )

# CH-SIMS: the 3-class buckets are (-1, -0.1], (-0.1, 0.1], (0.1, 1].
register_task(
    TaskSpec(
        name="sims",
        kind="regression",
        dataset="sims",
        metric_suite="sims",
        instruction=_MOSI_INSTRUCTION,
        score_range=(-1.0, 1.0),
        neutral_band=0.1,
    )
)

# EmoBank valence V in [1, 5] is mapped to s = 1.5 * (V - 3), the CMU-MOSI scale.
register_task(
    TaskSpec(
        name="emobank",
        kind="regression",
        dataset="emobank",
        metric_suite="mosi",
        instruction="Judge the sentiment (valence) the writer expresses in the sentence.",
        score_range=(-3.0, 3.0),
        neutral_band=0.5,
    )
)

register_task(
    TaskSpec(
        name="meld_sentiment",
        kind="classification",
        dataset="meld",
        metric_suite="classification",
        instruction="Judge the sentiment of the last utterance in this dialogue from the TV series Friends.",
        labels=POLARITIES,
        coarse_of_label={p: p for p in POLARITIES},
    )
)

# Surprise carries either polarity in MELD (train: 614 negative, 591 positive, never neutral), so its coarse
# result is the row's Sentiment column (the loader's `polarity`); the map's "neutral" is only the fallback for
# data without one.
register_task(
    TaskSpec(
        name="meld_emotion",
        kind="classification",
        dataset="meld",
        metric_suite="classification",
        instruction="Name the emotion of the last utterance in this dialogue from the TV series Friends.",
        labels=("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
        coarse_of_label={
            "neutral": "neutral",
            "surprise": "neutral",
            "fear": "negative",
            "sadness": "negative",
            "joy": "positive",
            "disgust": "negative",
            "anger": "negative",
        },
        row_polarity_labels=("surprise",),
    )
)

register_task(
    TaskSpec(
        name="mustard",
        kind="classification",
        dataset="mustard",
        metric_suite="classification",
        instruction="Decide whether the last utterance of this TV-show dialogue is sarcastic.",
        labels=("sarcastic", "sincere"),
        coarse_of_label={"sarcastic": "sarcastic", "sincere": "sincere"},
        polarities=("sarcastic", "sincere"),
    )
)

register_task(
    TaskSpec(
        name="sst5",
        kind="classification",
        dataset="sst",
        metric_suite="classification",
        instruction="Judge the sentiment of this movie-review sentence.",
        labels=("very negative", "negative", "neutral", "positive", "very positive"),
        coarse_of_label={
            "very negative": "negative",
            "negative": "negative",
            "neutral": "neutral",
            "positive": "positive",
            "very positive": "positive",
        },
    )
)
