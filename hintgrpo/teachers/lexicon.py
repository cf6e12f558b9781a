"""The offline teacher for demos and CI: deterministic DC rationales grounded in the VADER sentiment lexicon.

It is told the gold answer and explains it: it cites only cue words that occur in the sample, each with
its lexicon valence (−4 to +4), states the gold polarity and ends in the gold answer.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import BOOSTER_DICT, N_SCALAR, NEGATE, SentimentIntensityAnalyzer

from hintgrpo.data.prompts import describe_modalities
from hintgrpo.reasoning import format_score, render
from hintgrpo.tasks import POLARITIES, TaskSpec, get_task
from hintgrpo.teachers.base import Teacher

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
HEDGES = frozenset({"might", "may", "maybe", "perhaps", "possibly", "probably", "seems", "guess", "suppose"})
NEGATION_WINDOW = 3  # preceding words that can negate a cue, as in VADER
MAX_CITED = 2


@functools.cache
def valence_lexicon() -> dict[str, float]:
    return SentimentIntensityAnalyzer().lexicon


def words_of(text: str) -> list[str]:
    """Lower-cased words, with typographic apostrophes made plain."""
    return WORD.findall(text.lower().replace("\u2019", "'"))


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def quote(words: list[str]) -> str:
    return ", ".join(f'"{word}"' for word in words)


@dataclass(frozen=True)
class Cue:
    """A lexicon word of the text, and the negation word shortly before it, if any."""

    word: str
    valence: float
    negator: str | None

    @property
    def effect(self) -> float:
        """The valence after negation, which flips and damps it (VADER's rule)."""
        return self.valence * N_SCALAR if self.negator else self.valence

    def cite(self) -> str:
        negation = f', negated by "{self.negator}"' if self.negator else ""
        return f'"{self.word}" ({self.valence:+.1f}{negation})'


def find_cues(text: str) -> list[Cue]:
    """Each lexicon word of `text` once (its first occurrence), in order."""
    lexicon, words, cues = valence_lexicon(), words_of(text), {}
    for index, word in enumerate(words):
        if word in lexicon and word not in cues:
            window = words[max(0, index - NEGATION_WINDOW) : index]
            negator = next((w for w in reversed(window) if w in NEGATE or w.endswith("n't")), None)
            cues[word] = Cue(word, lexicon[word], negator)
    return list(cues.values())


def cite_strongest(cues: list[Cue], limit: int = MAX_CITED) -> str:
    return ", ".join(cue.cite() for cue in sorted(cues, key=lambda cue: -abs(cue.effect))[:limit])


def cues_toward(polarity: str, cues: list[Cue]) -> list[Cue]:
    """The cues whose (negation-adjusted) valence points to `polarity`, "positive" or "negative"."""
    sign = 1 if polarity == "positive" else -1
    return [cue for cue in cues if cue.effect * sign > 0]


def lean(cues: list[Cue]) -> str:
    total = sum(cue.effect for cue in cues)
    return "positive" if total > 0 else "negative" if total < 0 else "neutral"


def discrimination_evidence(polarity: str, cues: list[Cue]) -> str:
    if polarity not in POLARITIES:  # a coarse result that is not a sentiment, e.g. sarcastic / sincere
        if not cues:
            return f"No sentiment cue words; read in its setting, it is {polarity}."
        return f"Literally it leans {lean(cues)} ({cite_strongest(cues)}); read in its setting, it is {polarity}."
    if polarity == "neutral":
        if not cues:
            return "No sentiment cue words; matter-of-fact."
        return f"Cues {cite_strongest(cues)}, but no clear side."
    supporting = cues_toward(polarity, cues)
    if supporting:
        return f"{polarity.capitalize()} cues {cite_strongest(supporting)}."
    if cues:
        return f"Cues {cite_strongest(cues)} point the other way, but the whole reads {polarity}."
    return f"No cue words; the {polarity} reading rests on what is described."


def strength(valence: float) -> str:
    return "strong" if valence >= 2.5 else "moderate" if valence >= 1.5 else "mild"


def calibration_remarks(sample: dict, task: TaskSpec, cues: list[Cue], answer: float | str) -> str:
    # Every generated token costs SFT, GRPO and evaluation time: the remarks are terse, text-only samples get no
    # modality remark, and the score no restated scale (the prompt gives it).
    words = unique(words_of(sample["text"]))
    remarks = []
    if cues:
        strongest = max(cues, key=lambda cue: abs(cue.effect))
        remarks.append(f'"{strongest.word}" is {strength(abs(strongest.valence))}.')
    amplifiers = [word for word in words if BOOSTER_DICT.get(word, 0) > 0]
    softeners = [word for word in words if BOOSTER_DICT.get(word, 0) < 0 or word in HEDGES]
    if amplifiers:
        remarks.append(f"Intensifiers ({quote(amplifiers)}) amplify it.")
    if softeners:
        remarks.append(f"Hedges and downtoners ({quote(softeners)}) soften it.")
    remarks += [f'"{cue.negator}" negates "{cue.word}".' for cue in cues if cue.negator]
    if "!" in sample["text"]:
        remarks.append("The exclamation adds emphasis.")
    context = sample.get("context") or ""
    if context:
        turns = context.count("\n") + 1
        earlier = f"The dialogue so far ({turns} turn{'s' if turns > 1 else ''})"
        context_cues = find_cues(context)
        tone = lean(context_cues)
        if tone == "neutral":
            remarks.append(f"{earlier} has no clear sentiment.")
        else:
            remarks.append(f"{earlier} leans {tone} ({cite_strongest(cues_toward(tone, context_cues), 2)}).")
    modalities = describe_modalities(sample)
    if modalities:
        names = ", ".join(line.partition(":")[0] for line in modalities)
        remarks.append(f"The sample also has {names}; this reading rests on the wording.")
    if task.is_regression:
        if sample["polarity"] == "neutral":
            remarks.append(f"Near the middle: {format_score(answer)}.")
        else:
            low, high = task.score_range
            share = abs(answer) / max(abs(low), abs(high))
            degree = "strongly" if share >= 0.6 else "moderately" if share >= 0.3 else "mildly"
            remarks.append(f"{degree.capitalize()} {sample['polarity']}: {format_score(answer)}.")
    else:
        remarks.append(f"Label: {answer}.")
    return " ".join(remarks)


def gold_answer(sample: dict, task: TaskSpec) -> float | str:
    """The gold label; a gold score rounded to one decimal unless that carries it across the neutral band's edge."""
    if not task.is_regression:
        return sample["label"]
    gold = float(sample["label"])
    rounded = round(gold, 1)
    return rounded if task.polarity_of(rounded) == sample["polarity"] else gold


def lexicon_rationale(sample: dict, task: TaskSpec) -> str:
    """A DC completion for `sample` that reaches its gold answer; the same sample always gets the same text."""
    cues = find_cues(sample["text"])
    answer = gold_answer(sample, task)
    return render(
        sample["polarity"],
        discrimination_evidence(sample["polarity"], cues),
        calibration_remarks(sample, task, cues, answer),
        answer,
    )


class LexiconTeacher(Teacher):
    """Answers every request with the sample's lexicon rationale (the conversation and any feedback are ignored)."""

    name = "lexicon"

    def complete(self, conversation: list[dict], sample: dict) -> str:
        return lexicon_rationale(sample, get_task(sample["task"]))
