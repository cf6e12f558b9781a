"""The augment step: new rows from registered augmenters, each keeping its source id.

An augmenter returns, for each row of a batch, one dict of changed columns per variant. The step turns each
into a row (id `<id>#<augmenter><k>`, `source_id`, `augmentation`), and when the text changed in a row that
has a rationale it asks the teacher for a new, validated one. Only loaded rows (`augmentation == ""`) are
augmented. Heavy generators (video editing, voice conversion on a GPU) plug in with `register_augmenter`:

    @register_augmenter("voice_conversion")
    class VoiceConversion(Augmenter):
        def fit(self): self.pipeline = load_my_pipeline("cuda")   # only when the step computes (not cached)
        def variants(self, rows, row_numbers): return [[{"audio": self.pipeline(row["audio"])}] for row in rows]
"""

from __future__ import annotations

import functools
import sys
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset, Value, concatenate_datasets

from hintgrpo import teachers
from hintgrpo.configs import AugmentArguments, TeacherArguments
from hintgrpo.data.errors import RowGuard
from hintgrpo.data.prompts import MODALITY_COLUMNS
from hintgrpo.preprocess import diffusion, paraphrase, self_question
from hintgrpo.preprocess.caching import cached_map, default_cache_dir, options_of, step_fingerprint
from hintgrpo.preprocess.records import SELF_QUESTION, with_lineage
from hintgrpo.tasks import get_task
from hintgrpo.teachers import asking, rationale


@dataclass
class AugmentContext:
    """What augmenters share: the loaded rows (to fit on), the options, and the teacher (built when first used)."""

    dataset: Dataset
    args: AugmentArguments
    teacher_args: TeacherArguments
    source: str  # named in errors: the file the rows came from
    cache_dir: Path  # where augmenters may cache what they fit
    skip_bad_rows: bool = False

    @functools.cached_property
    def teacher(self) -> teachers.Teacher:
        return teachers.build_teacher(self.teacher_args)

    @property
    def offline(self) -> bool:
        return self.teacher_args.teacher_backend == "lexicon"

    @functools.cached_property
    def guard(self) -> RowGuard:
        return RowGuard(self.source, self.skip_bad_rows)


class Augmenter(ABC):
    name: str

    def __init__(self, context: AugmentContext):
        self.context = context

    def fit(self) -> None:  # noqa: B027 - most augmenters need no fitting
        """Prepare before the first batch (train, load a pipeline); not called when the step's result is cached."""

    @abstractmethod
    def variants(self, rows: list[dict], row_numbers: list[int]) -> list[list[dict]]:
        """For each row, the changed columns of each of its variants (an empty list: no variant)."""


AUGMENTERS: dict[str, type[Augmenter]] = {}


def register_augmenter(name: str):
    def decorate(cls: type[Augmenter]) -> type[Augmenter]:
        cls.name = name
        AUGMENTERS[name] = cls
        return cls

    return decorate


@register_augmenter("paraphrase")
class ParaphraseAugmenter(Augmenter):
    """`paraphrases` minimal label-keeping paraphrases of the text per row, from the teacher."""

    def variants(self, rows, row_numbers):
        return asking.run_concurrently(self.paraphrases_of, rows, self.context.teacher_args.teacher_concurrency)

    def paraphrases_of(self, row: dict) -> list[dict]:
        args = self.context.args
        if self.context.offline:
            texts = paraphrase.lexicon_paraphrases(
                row["text"], args.paraphrases, args.max_edits, seed=f"{args.preprocess_seed}:{row['id']}"
            )
            return [{"text": text} for text in texts]
        texts: list[str] = []
        for _ in range(args.paraphrases):

            def problem(reply: str) -> str | None:
                if reply in texts:
                    return "that paraphrase was given already: write a different one"
                return paraphrase.paraphrase_problem(row["text"], reply)

            messages = paraphrase.paraphrase_messages(row, get_task(row["task"]))
            reply = asking.ask_until_valid(
                self.context.teacher, messages, row, problem, self.context.teacher_args.teacher_max_tries
            )
            if reply.valid:
                texts.append(reply.text)
        return [{"text": text} for text in texts]


@register_augmenter(SELF_QUESTION)
class SelfQuestionAugmenter(Augmenter):
    """One self-questioning SFT example per row (its `cot` is the question and the answer)."""

    def fit(self):
        if "cot" not in self.context.dataset.column_names:
            raise ValueError(
                "self_question makes SFT examples: augment teacher CoT records (the JSONL of `hintgrpo synthesize`)"
            )

    def variants(self, rows, row_numbers):
        return asking.run_concurrently(self.example_of, rows, self.context.teacher_args.teacher_concurrency)

    def example_of(self, row: dict) -> list[dict]:
        if self.context.offline:
            reply = self_question.lexicon_self_question(row, self.context.args.preprocess_seed)
        else:
            reply = asking.ask_until_valid(
                self.context.teacher,
                self_question.self_question_messages(row, get_task(row["task"])),
                row,
                lambda reply: self_question.self_question_problem(reply, row["polarity"]),
                self.context.teacher_args.teacher_max_tries,
            ).accepted
        return [] if reply is None else [{"cot": reply, "status": "accepted"}]


def feature_columns(dataset: Dataset) -> list[str]:
    """The modality columns that hold feature arrays (not file paths)."""
    return [
        name
        for name in MODALITY_COLUMNS
        if name in dataset.column_names and not (isinstance(dataset.features[name], Value))
    ]


def label_bin(row: dict) -> str:
    """Classification: the label; regression: the coarse polarity of the score."""
    return row["polarity"] if get_task(row["task"]).is_regression else str(row["label"])


@register_augmenter("diffusion")
class DiffusionAugmenter(Augmenter):
    """`feature_samples` variants of every feature column per row, from a diffusion model fit on the dataset."""

    def fit(self):
        self.modalities = feature_columns(self.context.dataset)
        if not self.modalities:
            raise ValueError(
                f"diffusion augments feature columns ({', '.join(MODALITY_COLUMNS)} holding arrays); "
                f"the rows have {self.context.dataset.column_names}"
            )
        rows = self.context.dataset.select_columns([*self.modalities, "task", "label", "polarity"]).to_list()
        vectors = [self.vector_of(row, number) for number, row in enumerate(rows)]
        usable = [number for number, vector in enumerate(vectors) if vector is not None]
        if not usable:
            raise ValueError(f"{self.context.source}: no row has usable {'/'.join(self.modalities)} features")
        self.sizes = [len(diffusion.pooled(rows[usable[0]][name])) for name in self.modalities]
        self.bins = {name: index for index, name in enumerate(sorted({label_bin(row) for row in rows}))}
        args = self.context.args
        self.model = diffusion.FeatureDiffusion(
            np.stack([vectors[number] for number in usable]),
            [self.bins[label_bin(rows[number])] for number in usable],
            len(self.bins),
            args.diffusion_hidden_size,
            args.preprocess_seed,
        )
        training = [self.modalities, args.diffusion_hidden_size, args.diffusion_train_steps, args.preprocess_seed]
        fingerprint = step_fingerprint(self.context.dataset, "denoiser", training, (diffusion,))
        self.model.fit_or_load(args.diffusion_train_steps, self.context.cache_dir / f"denoiser-{fingerprint}")

    def vector_of(self, row: dict, row_number: int) -> np.ndarray | None:
        """The row's pooled modalities, concatenated; None (the row is rejected) when one is not usable."""
        parts = []
        for name in self.modalities:
            part = diffusion.pooled(row[name])
            if part is None:
                shape = np.shape(row[name]) if row[name] is not None else None
                self.context.guard.reject(row_number, name, f"expected finite features [frames, size], got {shape}")
                return None
            parts.append(part)
        return np.concatenate(parts)

    def variants(self, rows, row_numbers):
        vectors = [self.vector_of(row, number) for row, number in zip(rows, row_numbers, strict=True)]
        usable = [index for index, vector in enumerate(vectors) if vector is not None]
        changes: list[list[dict]] = [[] for _ in rows]
        if not usable:
            return changes
        args = self.context.args
        for _ in range(args.feature_samples):
            generated = self.model.variants(
                np.stack([vectors[index] for index in usable]),
                [self.bins[label_bin(rows[index])] for index in usable],
                args.diffusion_strength,
                args.diffusion_inference_steps,
            )
            for index, vector in zip(usable, generated, strict=True):
                parts = np.split(vector, np.cumsum(self.sizes)[:-1])
                pairs = zip(self.modalities, parts, strict=True)
                changes[index].append({name: diffusion.with_mean(rows[index][name], part) for name, part in pairs})
        return changes


class AugmentBatch:
    """The mapped function: a batch of loaded rows in, their augmented rows out (fits the augmenters first)."""

    def __init__(self, context: AugmentContext, names: list[str]):
        self.context = context
        self.augmenters = [AUGMENTERS[name](context) for name in names]
        self.fitted = False

    def __call__(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        if not self.fitted:
            for augmenter in self.augmenters:
                augmenter.fit()
            self.fitted = True
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        new_rows, new_texts = [], []
        for augmenter in self.augmenters:
            for row, changes in zip(rows, augmenter.variants(rows, indices), strict=True):
                for k, change in enumerate(changes):
                    new_row = row | change | {"id": f"{row['id']}#{augmenter.name}{k}", "augmentation": augmenter.name}
                    new_rows.append(new_row)
                    if new_row["text"] != row["text"]:
                        new_texts.append(new_row)
        if "cot" in batch:
            asking.run_concurrently(self.new_rationale, new_texts, self.context.teacher_args.teacher_concurrency)
        return {name: [row[name] for row in new_rows] for name in batch}

    def new_rationale(self, row: dict) -> None:
        """Give a row whose text changed a rationale for its new text (validated, as in synthesis)."""
        args = self.context.teacher_args
        reply = rationale.write_rationale(
            self.context.teacher, row, get_task(row["task"]), args.teacher_max_tries, args.teacher_tolerance
        )
        row.update(cot=reply.text, status="accepted" if reply.valid else "rejected")


def augment(
    dataset: Dataset,
    args: AugmentArguments,
    teacher_args: TeacherArguments,
    *,
    source: str = "dataset",
    cache_dir: str | None = None,
    skip_bad_rows: bool = False,
) -> Dataset:
    """`dataset` (with lineage columns) followed by the augmented rows of its loaded rows."""
    unknown = [name for name in args.augmenters if name not in AUGMENTERS]
    if unknown:
        raise ValueError(f"unknown augmenter(s) {unknown}; registered: {sorted(AUGMENTERS)}")
    dataset = with_lineage(dataset)
    already = set(dataset["augmentation"]) & set(args.augmenters)
    if already:
        raise ValueError(f"the rows already hold {sorted(already)} augmentations: augment the loaded rows once")
    loaded = dataset.filter(lambda augmentation: augmentation == "", input_columns="augmentation")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    context = AugmentContext(loaded, args, teacher_args, source, cache_dir, skip_bad_rows)
    augmented = cached_map(
        loaded,
        AugmentBatch(context, args.augmenters),
        step="augment",
        options=[options_of(args, AugmentArguments), options_of(teacher_args, TeacherArguments), skip_bad_rows],
        modules=(sys.modules[__name__], diffusion, paraphrase, self_question, asking, rationale),
        cache_dir=cache_dir,
        batched=True,
        batch_size=64,
        with_indices=True,
        remove_columns=loaded.column_names,
        features=loaded.features,
    )
    context.guard.report()
    return concatenate_datasets([dataset, augmented])


def augment_counts(dataset: Dataset) -> dict:
    """Rows by how they were made, and (for rows with rationales) the new rationales' validation."""
    made = Counter(dataset["augmentation"])
    counts = {"rows": len(dataset), "loaded_rows": made.pop("", 0), "augmented_rows": dict(made)}
    if "status" in dataset.column_names:
        statuses = Counter(
            status for status, how in zip(dataset["status"], dataset["augmentation"], strict=True) if how
        )
        counts["augmented_rationales"] = dict(statuses)
    return counts
