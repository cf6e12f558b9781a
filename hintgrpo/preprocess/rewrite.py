"""The rewrite step (AITQE): rows under a weight threshold are rewritten minimally by the teacher, not dropped.

A row whose rationale was not validated gets its rationale revised: the teacher sees its earlier reply and why it
failed, and is asked to fix only that. Any other row under the threshold gets its text rewritten: a chat teacher
is told which score is low and asked for the smallest edit that makes the wording carry the gold sentiment (a row
with a rationale then gets a new one for the new text). The offline lexicon teacher can only redo a paraphrase
more minimally (one edit); it has no honest way to make an utterance fit its label, so those rows stay as they are.

Each rewrite is a new row (`<id>#rewrite`, `augmentation` rewrite_rationale or rewrite_text, same `source_id`),
scored like the others; the originals are kept. Rewrites, and rows that already have one, are not rewritten.
"""

from __future__ import annotations

import sys

from datasets import Dataset, concatenate_datasets

from hintgrpo import teachers
from hintgrpo.configs import QualityArguments, RewriteArguments, TeacherArguments
from hintgrpo.data.prompts import user_prompt
from hintgrpo.preprocess import paraphrase
from hintgrpo.preprocess.caching import cached_map, options_of
from hintgrpo.preprocess.quality import score
from hintgrpo.reasoning import format_score
from hintgrpo.tasks import get_task
from hintgrpo.teachers import asking, rationale

REWRITE = "rewrite"
# Rows whose text is their own: the loaded rows and text augmentations. A feature variant or a self-questioning
# example shares its source's text, which is rewritten in the source's row.
OWN_TEXT = ("", "paraphrase")
REVISION_REQUEST = "Revise your reply minimally: keep what is right and change only what fixes this."


def text_rewrite_messages(row: dict, reason: str) -> list[dict]:
    task = get_task(row["task"])
    gold = format_score(row["label"]) if task.is_regression else row["label"]
    system = (
        "You repair a sentiment-analysis training set. The utterance below scored low on a quality check. Rewrite "
        "it minimally: change as few words as possible so that its wording clearly carries the gold sentiment, and "
        "keep its topic, style and any speaker name in front. Reply with the rewritten utterance only."
    )
    user = (
        f"{user_prompt(row['text'], row.get('context') or '')}\n\n"
        f"Gold sentiment: {row['polarity']}, gold answer {gold}.\nWhy it is rewritten: {reason}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def low_score_reason(row: dict, source_text: str) -> str:
    """The weakest text score of `row`, in words."""
    if row.get("fidelity_text", 1.0) < row.get("consistency", 1.0):
        similarity = row["fidelity_text"]
        return f'it drifted from the utterance it was made from, "{source_text}" (similarity {similarity:.2f})'
    estimate = paraphrase.compound(row["text"])
    return (
        f"an independent sentiment estimate reads it as {paraphrase.vader_polarity(estimate)} "
        f"(VADER compound {estimate:+.2f}), which disagrees with its gold sentiment"
    )


def text_problem(text: str, reply: str) -> str | None:
    if not reply.strip() or reply.strip() == text.strip():
        return "write the rewritten utterance, changed where it needs to be"
    low, high = paraphrase.LENGTH_RATIO
    if not low <= len(reply) / len(text) <= high:
        return f"the rewrite has {len(reply)} characters for the utterance's {len(text)}: change it minimally"
    return None


def rewritable_part(row: dict) -> str | None:
    """ "rationale" when the row's rationale was not validated, else "text" when the row has its own text."""
    if "status" in row and row["status"] != "accepted":
        return "rationale"
    return "text" if row["augmentation"] in OWN_TEXT else None


class RewriteBatch:
    """The mapped function: rows under the threshold in, their rewrites out (rows that cannot be rewritten: none)."""

    def __init__(self, teacher_args: TeacherArguments, source_texts: dict[tuple[str, str], str], seed: int):
        self.teacher_args, self.source_texts, self.seed = teacher_args, source_texts, seed
        self.teacher: teachers.Teacher | None = None

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if self.teacher is None:
            self.teacher = teachers.build_teacher(self.teacher_args)
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        rewrites = asking.run_concurrently(self.rewrite, rows, self.teacher_args.teacher_concurrency)
        done = [row for row in rewrites if row is not None]
        return {name: [row[name] for row in done] for name in batch}

    def rewrite(self, row: dict) -> dict | None:
        if rewritable_part(row) == "rationale":
            cot = self.revised_rationale(row)
            return None if cot is None else row | {"cot": cot, "status": "accepted"} | self.lineage(row, "rationale")
        text = self.revised_text(row)
        if text is None:
            return None
        rewritten = row | {"text": text} | self.lineage(row, "text")
        if "cot" in row:
            reply = rationale.write_rationale(
                self.teacher,
                rewritten,
                get_task(row["task"]),
                self.teacher_args.teacher_max_tries,
                self.teacher_args.teacher_tolerance,
            )
            rewritten.update(cot=reply.text, status="accepted" if reply.valid else "rejected")
        return rewritten

    @staticmethod
    def lineage(row: dict, part: str) -> dict:
        return {"id": f"{row['id']}#{REWRITE}", "augmentation": f"{REWRITE}_{part}"}

    def revised_rationale(self, row: dict) -> str | None:
        task, args = get_task(row["task"]), self.teacher_args
        first_problem = rationale.validate_cot(row["cot"], row, task, args.teacher_tolerance) or "it was not validated"
        conversation = [
            *rationale.teacher_messages(row, task),
            {"role": "assistant", "content": row["cot"]},
            asking.feedback_message(str(first_problem), REVISION_REQUEST),
        ]
        return rationale.write_rationale(
            self.teacher, row, task, args.teacher_max_tries, args.teacher_tolerance, conversation
        ).accepted

    def revised_text(self, row: dict) -> str | None:
        source_text = self.source_texts[row["task"], row["source_id"]]
        if self.teacher_args.teacher_backend == "lexicon":
            if row["augmentation"] != "paraphrase":
                return None
            again = paraphrase.lexicon_paraphrases(source_text, 1, 1, seed=f"{self.seed}:{row['id']}:{REWRITE}")
            return again[0] if again and again[0] != row["text"] else None
        return asking.ask_until_valid(
            self.teacher,
            text_rewrite_messages(row, low_score_reason(row, source_text)),
            row,
            lambda reply: text_problem(row["text"], reply),
            self.teacher_args.teacher_max_tries,
        ).accepted


def rewrite(
    dataset: Dataset,
    teacher_args: TeacherArguments,
    quality_args: QualityArguments,
    rewrite_args: RewriteArguments,
    *,
    seed: int = 0,
    source: str = "dataset",
    cache_dir: str | None = None,
) -> tuple[Dataset, dict]:
    """`dataset` followed by the scored rewrites of its rows under `rewrite_args.rewrite_threshold`; the counts."""
    if "weight" not in dataset.column_names or "consistency" not in dataset.column_names:
        raise ValueError("rewrite picks rows by their quality scores: run the score step first")
    ids = set(zip(dataset["task"], dataset["id"], strict=True))
    threshold = rewrite_args.rewrite_threshold

    under = dataset.filter(
        lambda weight, how: weight < threshold and not how.startswith(REWRITE), input_columns=["weight", "augmentation"]
    )
    rewritable = under.filter(lambda row: rewritable_part(row) is not None)
    candidates = rewritable.filter(lambda task, id: (task, f"{id}#{REWRITE}") not in ids, input_columns=["task", "id"])
    loaded = dataset.filter(lambda how: how == "", input_columns="augmentation")
    source_texts = dict(zip(zip(loaded["task"], loaded["id"], strict=True), loaded["text"], strict=True))
    rescored = candidates.select([])  # (an empty map result would have lost the columns)
    if len(candidates):
        rewritten = cached_map(
            candidates,
            RewriteBatch(teacher_args, source_texts, seed),
            step="rewrite",
            options=[
                options_of(teacher_args, TeacherArguments),
                options_of(rewrite_args, RewriteArguments),
                seed,
                dataset._fingerprint,
            ],
            modules=(sys.modules[__name__], paraphrase, asking, rationale),
            cache_dir=cache_dir,
            batched=True,
            batch_size=64,
            remove_columns=candidates.column_names,
            features=candidates.features,
        )
        if len(rewritten):
            rescored = score(rewritten, quality_args, reference=dataset, source=source, cache_dir=cache_dir)
    before = dict(zip(zip(dataset["task"], dataset["id"], strict=True), dataset["weight"], strict=True))
    after = [
        (before[task, sample_id.removesuffix(f"#{REWRITE}")], weight)
        for task, sample_id, weight in zip(rescored["task"], rescored["id"], rescored["weight"], strict=True)
    ]
    counts = {
        "rows": len(dataset),
        "under_threshold": len(under),
        "not_rewritable": len(under) - len(rewritable),  # feature variants and self-questioning examples
        "already_rewritten": len(rewritable) - len(candidates),
        "rewritten": {part: rescored["augmentation"].count(f"{REWRITE}_{part}") for part in ("rationale", "text")},
        "failed": len(candidates) - len(rescored),
        "improved": sum(new > old for old, new in after),
        "still_under_threshold": sum(new < threshold for _, new in after),
    }
    return concatenate_datasets([dataset, rescored]), counts
