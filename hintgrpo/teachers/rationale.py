"""DC rationales from a teacher: what it is asked, and when its reply is a usable rationale for the sample."""

from __future__ import annotations

from dataclasses import dataclass

from hintgrpo.data.prompts import describe_modalities, format_example, user_prompt
from hintgrpo.reasoning import discrimination_opening, format_score, parse_completion
from hintgrpo.tasks import TaskSpec
from hintgrpo.teachers.asking import Reply, ask_until_valid
from hintgrpo.teachers.base import Teacher

RATIONALE_REQUEST = "Write the whole reply again, in exactly the required format, reaching the gold answer."


def teacher_messages(sample: dict, task: TaskSpec) -> list[dict]:
    """What a teacher is asked: the sample, its gold answer, and the DC format to explain it in."""
    gold = format_score(sample["label"]) if task.is_regression else sample["label"]
    system = (
        "You write reference reasoning for training a sentiment-analysis model. "
        f"The task: {task.instruction}\n"
        "You are given a sample and its gold answer. Write the reasoning an expert annotator would give for "
        "that answer, grounded in the sample (quote its words), in exactly this format:\n"
        f"{format_example(task)}\n\n"
        f"1. Discrimination: state the gold coarse result ({task.coarse_format()}) and one or two sentences "
        "of coarse evidence.\n"
        "2. Calibration: fine-grained analysis: intensity, negation, context and the available modalities.\n"
        f"3. Answer: the gold answer, {task.answer_format()}.\n"
        "Do not mention that you were given the answer. Reply with the formatted reasoning only."
    )
    modalities = describe_modalities(sample)
    if modalities:
        available = "Other modalities (described, not shown to you):\n" + "\n".join(f"- {m}" for m in modalities)
    else:
        available = "Only the text is available."
    user = (
        f"{user_prompt(sample['text'], sample.get('context') or '')}\n\n{available}\n\n"
        f"Gold coarse result: {sample['polarity']}\nGold answer: {gold}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class Problem:
    kind: str  # format, polarity, answer or consistency
    message: str

    def __str__(self) -> str:
        return self.message


def validate_cot(cot: str, sample: dict, task: TaskSpec, tolerance: float) -> Problem | None:
    """Why `cot` is not a usable rationale for `sample` (None when it is).

    It must be well-formed DC, state the gold polarity and reach the gold answer: the gold label, or a score
    within `tolerance` of the gold score whose own polarity agrees with the stated one.
    """
    parsed = parse_completion(cot, task)
    gold_polarity = sample["polarity"]
    if not parsed.well_formed:
        if parsed.polarity is None:
            opening = discrimination_opening(gold_polarity).replace("\n", "\\n")
            return Problem("format", f"no polarity from {task.coarse_format()} stated: begin with {opening}")
        if parsed.answer is None:
            return Problem("format", f"no valid answer: end with <answer>{task.answer_format()}</answer>")
        return Problem(
            "format",
            "the structure is wrong: write <think>, <discrimination>…</discrimination>, a non-empty "
            "<calibration>…</calibration>, </think>, then <answer>…</answer>, and nothing else",
        )
    if parsed.polarity != gold_polarity:
        return Problem("polarity", f"the discrimination says {parsed.polarity} but the gold result is {gold_polarity}")
    if not task.is_regression:
        if parsed.answer != sample["label"]:
            return Problem("answer", f"the answer {parsed.answer} is not the gold label {sample['label']}")
        return None
    gold, score = float(sample["label"]), parsed.answer
    if abs(score - gold) > tolerance:
        return Problem(
            "answer",
            f"the answer {format_score(score)} is {abs(score - gold):.2f} away from the gold score "
            f"{format_score(gold)} (at most {tolerance:g} allowed)",
        )
    if task.polarity_of(score) != parsed.polarity:
        return Problem(
            "consistency", f"the answer {format_score(score)} is {task.polarity_of(score)}, not {parsed.polarity}"
        )
    return None


def write_rationale(
    teacher: Teacher,
    sample: dict,
    task: TaskSpec,
    max_tries: int,
    tolerance: float,
    conversation: list[dict] | None = None,
) -> Reply[Problem]:
    """Ask `teacher` for a rationale of `sample` (by default with `teacher_messages`) until one validates."""
    return ask_until_valid(
        teacher,
        conversation or teacher_messages(sample, task),
        sample,
        lambda cot: validate_cot(cot, sample, task, tolerance),
        max_tries,
        RATIONALE_REQUEST,
    )
