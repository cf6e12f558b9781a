"""The discrimination–calibration (DC) output format: render it, parse it, never fail on model output.

    <think>
    <discrimination>polarity: negative. Coarse evidence.</discrimination>
    <calibration>Fine-grained analysis.</calibration>
    </think>
    <answer>-1.4</answer>

`parse_completion` is strict about structure (`well_formed`) and lenient about content: it still
recovers a polarity and an answer from a malformed completion when they can be read unambiguously.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hintgrpo.tasks import TaskSpec

_STRICT = re.compile(
    r"\s*<think>\s*<discrimination>\s*polarity:\s*(?P<polarity>[a-z ]+?)\s*\.(?P<evidence>.*?)</discrimination>"
    r"\s*<calibration>(?P<calibration>.*?)</calibration>\s*</think>\s*<answer>(?P<answer>.*?)</answer>\s*",
    re.DOTALL | re.IGNORECASE,
)
_POLARITY = re.compile(r"polarity\s*[:=]\s*\**\s*([a-z]+(?: [a-z]+)?)", re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
_ANSWER_LINE = re.compile(r"(?:final answer|answer|score|rating)\s*[:=]\s*\**\s*([^\n<]*)", re.IGNORECASE)
_NUMBER = re.compile(r"[-+−]?(?:\d+(?:\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class ParsedCompletion:
    polarity: str | None  # the discrimination result, if stated with a known polarity
    answer: float | str | None  # a finite in-range score, a known label, or None
    well_formed: bool  # exact DC structure, known polarity and a valid answer

    @property
    def has_answer(self) -> bool:
        return self.answer is not None


def format_score(score: float) -> str:
    """Shortest plain rendering with at most two decimals, never '-0'."""
    text = f"{round(float(score), 2) + 0.0:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def discrimination_opening(polarity: str) -> str:
    """The start of a DC completion up to and including the stated polarity (the hint prefix)."""
    return f"<think>\n<discrimination>polarity: {polarity}."


def render(polarity: str, evidence: str, calibration: str, answer: float | str) -> str:
    """The canonical DC completion."""
    answer_text = answer if isinstance(answer, str) else format_score(answer)
    return (
        f"{discrimination_opening(polarity)} {evidence.strip()}</discrimination>\n"
        f"<calibration>{calibration.strip()}</calibration>\n</think>\n<answer>{answer_text}</answer>"
    )


def read_polarity(text: str, task: TaskSpec) -> str | None:
    phrase = re.sub(r"\s+", " ", text.strip().lower())
    for polarity in sorted(task.polarities, key=len, reverse=True):
        if phrase == polarity or phrase.startswith(polarity + " "):
            return polarity
    return None


def read_answer(text: str, task: TaskSpec) -> float | str | None:
    """A score inside the task range that `text` starts with, or the one label `text` names.

    The score must lead: "Answer: a number from -3 to 3", parroted from the instructions, is no answer.
    """
    if task.is_regression:
        match = _NUMBER.match(text.strip().lstrip("*\"'` "))
        if match is None:
            return None
        score = float(match.group().replace("−", "-"))
        return score + 0.0 if task.in_range(score) else None
    phrase = re.sub(r"[^a-z ]+", " ", text.lower())
    phrase = f" {re.sub(r' +', ' ', phrase).strip()} "
    named = []
    for label in sorted(task.labels, key=len, reverse=True):
        if f" {label} " in phrase:
            named.append(label)
            phrase = phrase.replace(f" {label} ", "  ")
    return named[0] if len(named) == 1 else None


def parse_completion(text: str, task: TaskSpec) -> ParsedCompletion:
    """Polarity, answer and structural validity of a completion. Never raises on a string."""
    if not isinstance(text, str):
        return ParsedCompletion(None, None, False)
    strict = _STRICT.fullmatch(text)
    if strict is not None:
        polarity = read_polarity(strict["polarity"], task)
        answer = read_answer(strict["answer"], task)
        well_formed = polarity is not None and answer is not None and bool(strict["calibration"].strip())
        return ParsedCompletion(polarity, answer, well_formed)

    polarity_match = _POLARITY.search(text)
    polarity = read_polarity(polarity_match.group(1), task) if polarity_match else None
    answer = None
    tags = _ANSWER_TAG.findall(text)
    if tags:
        answer = read_answer(tags[-1], task)
    else:
        lines = _ANSWER_LINE.findall(text)
        if lines:
            answer = read_answer(lines[-1], task)
    return ParsedCompletion(polarity, answer, False)
