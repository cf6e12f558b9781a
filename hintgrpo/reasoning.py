"""The discrimination–calibration (DC) output format: render it, parse it, never fail on model output.

    <think>
    <discrimination>polarity: negative. Coarse evidence.</discrimination>
    <calibration>Fine-grained analysis.</calibration>
    </think>
    <answer>-1.4</answer>

`parse_completion` reads one polarity and one answer, or none. A completion that repeats a DC tag (two answers,
a second DC block) yields neither; polarity statements that differ are no polarity, and an answer that is not a
single number or label (a hedge, a range, "not X") is no answer. It is strict about structure (`well_formed`)
and lenient about where the one answer sits: a completion that misses a tag (a lost </think>, an answer cut off
by the token budget) still yields its polarity and answer.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from hintgrpo.tasks import TaskSpec

_TAG = re.compile(r"</?(?:think|discrimination|calibration|answer)>", re.IGNORECASE)
# Run only on completions whose tags are unique, so each lazy group has one place to stop: no backtracking blow-up.
_STRICT = re.compile(
    r"\s*<think>\s*<discrimination>\s*polarity:[^.<]*\..*?</discrimination>"
    r"\s*<calibration>(?P<calibration>.*?)</calibration>\s*</think>\s*<answer>.*?</answer>\s*",
    re.DOTALL | re.IGNORECASE,
)
_POLARITY = re.compile(r"polarity\s*[:=]\s*([^.\n<]*)", re.IGNORECASE)
# An answer tag closed, or cut off by the token budget (inside its closing tag, too: "<answer>0.2</ans").
_CUT_OFF_CLOSE = "|".join(re.escape("</answer>"[:n]) for n in range(1, 9))
_ANSWER_TAG = re.compile(rf"<answer>(.*?)(?:</answer>|(?:{_CUT_OFF_CLOSE})?$)", re.DOTALL | re.IGNORECASE)
_ANSWER_LINE = re.compile(r"(?:final answer|answer|score|rating)\s*[:=]\s*([^\n<]*)", re.IGNORECASE)
_DECORATION = "*_`\"' \t\n"  # markdown emphasis and quotes a model puts around a value
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?", re.ASCII | re.IGNORECASE)
# Full-width forms (CJK text, e.g. CH-SIMS outputs, writes "－０．５") and the minus sign read as ASCII. Other
# digits (Arabic-Indic, superscripts, circled) are not read: `re.ASCII` keeps `\d` to 0-9, and NFKC would
# read "0.5²" as 0.52.
_ASCII_FORMS = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {ord("−"): "-"}


@dataclass(frozen=True)
class ParsedCompletion:
    polarity: str | None  # the discrimination result, if stated with a known polarity
    answer: float | str | None  # a finite in-range score, a known label, or None
    well_formed: bool  # the exact DC structure, each tag once, with a known polarity and a valid answer

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
    """The polarity `text` names, alone: "negative" or "**Negative**", not "not negative" or "negative or neutral"."""
    phrase = " ".join(text.strip(_DECORATION).lower().split())
    return phrase if phrase in task.polarities else None


def read_answer(text: str, task: TaskSpec) -> float | str | None:
    """The one finite score inside the task range, or the one label, that `text` is; None for anything else.

    Only emphasis, quotes and a final full stop may surround it: "-1 or maybe 2.5", "1 to 2", "not positive"
    and "a number from -3 to 3" (parroted from the instructions) are no answer.
    """
    phrase = text.translate(_ASCII_FORMS).strip(_DECORATION).removesuffix(".").strip(_DECORATION)
    if task.is_regression:
        if _NUMBER.fullmatch(phrase) is None:
            return None
        score = float(phrase)
        return score + 0.0 if task.in_range(score) else None
    phrase = " ".join(phrase.lower().split())
    return phrase if phrase in task.labels else None


def _agreed(values: list) -> object:
    """The value every reading gives; None when there is none or readings differ (a hedge)."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def parse_completion(text: str, task: TaskSpec) -> ParsedCompletion:
    """Polarity, answer and structural validity of a completion. Never raises on a string.

    Both readings take the same polarity (every `polarity:` statement must name the same one) and the same
    answer (the one <answer> tag, closed or cut off; without a tag, every "Answer:" line must agree).
    """
    if not isinstance(text, str) or max(Counter(t.lower() for t in _TAG.findall(text)).values(), default=0) > 1:
        return ParsedCompletion(None, None, False)
    polarity = _agreed([read_polarity(phrase, task) for phrase in _POLARITY.findall(text)])
    tag = _ANSWER_TAG.search(text)
    if tag is not None:
        answer = read_answer(tag.group(1), task)
    else:
        answer = _agreed([read_answer(line, task) for line in _ANSWER_LINE.findall(text)])
    strict = _STRICT.fullmatch(text)
    well_formed = strict is not None and bool(strict["calibration"].strip()) and None not in (polarity, answer)
    return ParsedCompletion(polarity, answer, well_formed)
