"""Baselines without an LLM answer, fit on a task's train split: the rows every results table sets a model beside.

`fit_baseline(name, train_dataset, task)` returns an object whose `predict(dataset)` gives one prediction per row:
a float score in the task's range (regression) or a label (classification). Every baseline reads only the row's
`text` (for MELD and MUStARD the loader's "Speaker: utterance"), never its dialogue `context`.

`hintgrpo baselines` fits each chosen baseline and scores it on a split (or its first `--limit` rows, the rows
`hintgrpo evaluate --limit` takes) with `hintgrpo evaluate`'s metrics. Its `predictions_<baseline>.jsonl` hold
`hintgrpo evaluate`'s record fields (but the completion), so `score_records` rescores any subset of them.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from datasets import Dataset
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hintgrpo.configs import BaselinesArguments
from hintgrpo.data import first_rows, load_task_dataset
from hintgrpo.evaluate import json_safe, markdown_rows, score_records
from hintgrpo.jsonl import write_jsonl
from hintgrpo.tasks import TaskSpec, get_task

logger = logging.getLogger(__name__)


class Baseline(Protocol):
    def predict(self, dataset: Dataset) -> list: ...


BASELINES: dict[str, Callable[..., Baseline]] = {}


def register_baseline(name: str) -> Callable:
    def decorate(fit: Callable[..., Baseline]) -> Callable[..., Baseline]:
        BASELINES[name] = fit
        return fit

    return decorate


def fit_baseline(name: str, train_dataset: Dataset, task: TaskSpec | str | None = None, **options) -> Baseline:
    """Fit baseline `name` on `train_dataset` (task: a TaskSpec or name; default: the rows' `task` column)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known baselines: {', '.join(sorted(BASELINES))}")
    if task is None:
        task = train_dataset[0]["task"]
    if isinstance(task, str):
        task = get_task(task)
    return BASELINES[name](train_dataset, task, **options)


class FeatureModel:
    """An sklearn estimator on `features(texts)` (None: on the texts themselves, for a pipeline that vectorises them).

    Regression predictions are clipped to the task's score range.
    """

    def __init__(self, estimator, task: TaskSpec, features: Callable[[list[str]], np.ndarray] | None = None):
        self.estimator, self.task, self.features = estimator, task, features

    def inputs(self, dataset: Dataset):
        texts = list(dataset["text"])
        return texts if self.features is None else self.features(texts)

    def fit(self, dataset: Dataset) -> FeatureModel:
        self.estimator.fit(self.inputs(dataset), list(dataset["label"]))
        return self

    def predict(self, dataset: Dataset) -> list:
        predictions = self.estimator.predict(self.inputs(dataset))
        if self.task.is_regression:
            return [float(p) for p in np.clip(predictions, *self.task.score_range)]
        return [str(p) for p in predictions]


class ConstantBaseline:
    def __init__(self, value: float | str):
        self.value = value

    def predict(self, dataset: Dataset) -> list:
        return [self.value] * len(dataset)


@register_baseline("constant")
def fit_constant(train_dataset: Dataset, task: TaskSpec) -> ConstantBaseline:
    """The train mean (regression) or the majority class (classification; a tie goes to the label seen first)."""
    labels = list(train_dataset["label"])
    if task.is_regression:
        return ConstantBaseline(float(np.mean(labels)))
    return ConstantBaseline(Counter(labels).most_common(1)[0][0])


def vader_compound(texts: list[str]) -> np.ndarray:
    """VADER's compound score in [-1, 1] of each text, as a one-column feature matrix."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.array([[analyzer.polarity_scores(text)["compound"]] for text in texts])


@register_baseline("vader")
def fit_vader(train_dataset: Dataset, task: TaskSpec) -> FeatureModel:
    """VADER's compound score, put on the task's answers by a fit on train.

    Regression: the least-squares line score = a * compound + b (unregularised), clipped to the score range.
    Classification: a multinomial logistic regression on the compound alone, which on one feature amounts to
    thresholds on the compound learned from train (it works for any label set, not only polarities).
    """
    estimator = LinearRegression() if task.is_regression else LogisticRegression(max_iter=1000)
    return FeatureModel(estimator, task, vader_compound).fit(train_dataset)


@register_baseline("tfidf")
def fit_tfidf(train_dataset: Dataset, task: TaskSpec, alpha: float = 1.0) -> FeatureModel:
    """Word 1–2-gram TF-IDF (sublinear tf) with Ridge (regression) or logistic regression (classification, C=1/alpha).

    Both solvers are deterministic, so a refit on the same rows gives the same predictions.
    """
    head = Ridge(alpha=alpha) if task.is_regression else LogisticRegression(C=1.0 / alpha, max_iter=1000)
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), head)
    return FeatureModel(model, task).fit(train_dataset)


class MeanPooledStates:
    """A frozen model's last hidden states averaged over each text's real (attention-mask) tokens."""

    def __init__(self, model_name: str, batch_size: int, max_length: int):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from hintgrpo.models import resolve_model

        path = resolve_model(model_name)
        # Right padding leaves each text's real tokens at the positions they have alone, whatever the model's
        # position ids.
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="right")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).eval().to(device)
        self.batch_size, self.max_length = batch_size, max_length

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        lengths = [len(ids) for ids in self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]]
        # Similar lengths batched together waste less compute on padding.
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        pooled = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with torch.no_grad():
            for start in tqdm(range(0, len(order), self.batch_size), desc="probe features", leave=False):
                batch = order[start : start + self.batch_size]
                inputs = self.tokenizer(
                    [texts[i] for i in batch],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                ).to(self.model.device)
                states = self.model(**inputs).last_hidden_state
                mask = inputs["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled[batch] = ((states * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()
        return pooled


@register_baseline("probe")
def fit_probe(
    train_dataset: Dataset,
    task: TaskSpec,
    model: str = "smollm2-135m-instruct",
    max_train_rows: int | None = 2000,
    batch_size: int = 32,
    max_length: int = 256,
    alpha: float = 1.0,
    seed: int = 0,
) -> FeatureModel:
    """A linear probe on the frozen base model: its mean-pooled last hidden states (fp32), standardised, with Ridge
    (regression) or logistic regression (classification, C=1/alpha).

    It is fit on a seeded subset of `max_train_rows` train rows (None: all), so that it fits in minutes on a CPU.
    """
    if max_train_rows is not None and max_train_rows < len(train_dataset):
        rows = np.random.default_rng(seed).choice(len(train_dataset), size=max_train_rows, replace=False)
        train_dataset = train_dataset.select(sorted(rows.tolist()))
    head = Ridge(alpha=alpha) if task.is_regression else LogisticRegression(C=1.0 / alpha, max_iter=1000)
    features = MeanPooledStates(model, batch_size, max_length)
    return FeatureModel(make_pipeline(StandardScaler(), head), task, features).fit(train_dataset)


def baseline_record(sample: dict, answer: float | str, task: TaskSpec) -> dict:
    """A prediction in the form `score_records` reads; a baseline's answer is always there and well formed.

    The gold polarity is the row's own (for meld_emotion, MELD's Sentiment column), not the label's coarse result.
    """
    return {
        "id": sample["id"],
        "label": sample["label"],
        "gold_polarity": sample["polarity"],
        "answer": answer,
        "polarity": task.polarity_of(answer),
        "well_formed": True,
    }


def baselines_command(args: BaselinesArguments) -> str:
    """The command that makes this table, to print under it."""
    command = f"hintgrpo baselines --task {args.task}"
    if args.data_dir is not None:
        command += f" --data_dir {args.data_dir}"
    command += f" --split {args.split}"
    if args.limit is not None:
        command += f" --limit {args.limit}"
    command += f" --train_split {args.train_split} --baselines {' '.join(args.baselines)}"
    if "probe" in args.baselines:
        command += f" --probe_model {args.probe_model} --probe_max_train_rows {args.probe_max_train_rows}"
    return command


def evaluate_baselines(args: BaselinesArguments) -> dict[str, dict[str, float]]:
    """Fit each of `args.baselines` on the whole train split, score it on `args.split` (or its first `args.limit`
    rows); write metrics and predictions."""
    unknown = [name for name in args.baselines if name not in BASELINES]
    if unknown:
        raise ValueError(f"baselines {unknown} are not known; choose from {sorted(BASELINES)}")
    task = get_task(args.task)
    train = load_task_dataset(args.task, args.data_dir, args.train_split, skip_bad_rows=args.skip_bad_rows)
    dataset = load_task_dataset(args.task, args.data_dir, args.split, skip_bad_rows=args.skip_bad_rows)
    dataset = first_rows(dataset, args.limit)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    options = {
        "probe": {
            "model": args.probe_model,
            "max_train_rows": args.probe_max_train_rows,
            "batch_size": args.probe_batch_size,
        }
    }
    results = {}
    for name in args.baselines:
        logger.info("fitting baseline %s on %s %s (%d rows)", name, args.task, args.train_split, len(train))
        answers = fit_baseline(name, train, task, **options.get(name, {})).predict(dataset)
        records = [baseline_record(sample, answer, task) for sample, answer in zip(dataset, answers, strict=True)]
        write_jsonl(output_dir / f"predictions_{name}.jsonl", records)
        results[name] = score_records(records, task)
    finite = {name: json_safe(metrics) for name, metrics in results.items()}
    (output_dir / "metrics.json").write_text(json.dumps(finite, indent=2) + "\n")
    title = f"Baselines on {args.task} {args.split} (n={len(dataset)}), fit on {args.train_split} (n={len(train)})"
    table = markdown_rows([{"baseline": name} | metrics for name, metrics in results.items()], title)
    (output_dir / "metrics.md").write_text(f"{table}\n`{baselines_command(args)}`\n")
    return results
