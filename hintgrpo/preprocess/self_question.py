"""Self-questioning examples (SQ-LLaVA): the model asks a question about an utterance's affective cues, then answers.

    Question: Does a negation change what a cue word means here?
    Answer: "not" negates "happy", reversing its valence (+2.7 becomes -2.0). So it reads negative.

The offline lexicon teacher picks one question that the utterance's VADER cues can answer (which cue words, a
negation, intensifiers or hedges, the dialogue context), by a seeded hash of the row id; a chat teacher writes
its own. Either way the answer must end by stating the gold coarse result.
"""

from __future__ import annotations

import re
import zlib

from vaderSentiment.vaderSentiment import BOOSTER_DICT

from hintgrpo.data.prompts import describe_modalities, user_prompt
from hintgrpo.tasks import TaskSpec
from hintgrpo.teachers.lexicon import (
    HEDGES,
    cite_strongest,
    cues_toward,
    discrimination_evidence,
    find_cues,
    lean,
    quote,
    strength,
    unique,
    words_of,
)

FORMAT = re.compile(r"Question:\s*(?P<question>[^\n]+\?)\s*\nAnswer:\s*(?P<answer>\S.*)", re.DOTALL)


def render_self_question(question: str, answer: str) -> str:
    return f"Question: {question}\nAnswer: {answer}"


def self_question_problem(reply: str, polarity: str) -> str | None:
    """Why `reply` is not a self-questioning example ending in the gold coarse result `polarity` (None if it is)."""
    match = FORMAT.fullmatch(reply.strip())
    if match is None:
        return "write exactly two lines: 'Question: <one question ending in ?>' then 'Answer: <its answer>'"
    if not re.search(rf"\b{re.escape(polarity)}\b", match["answer"].lower()):
        return f"the answer must end by stating the coarse result, {polarity}"
    return None


def lexicon_self_question(sample: dict, seed: int) -> str:
    text, polarity = sample["text"], sample["polarity"]
    cues, words = find_cues(text), unique(words_of(text))
    conclusion = f"So it reads {polarity}."
    options = [
        (
            "Which words of the utterance carry its feeling, and which way do they point?",
            f"{discrimination_evidence(polarity, cues)} {conclusion}",
        )
    ]
    negated = [cue for cue in cues if cue.negator]
    if negated:
        reversals = " ".join(
            f'"{cue.negator}" negates "{cue.word}", reversing its valence '
            f"({cue.valence:+.1f} becomes {cue.effect:+.1f})."
            for cue in negated
        )
        options.append(("Does a negation change what a cue word means here?", f"{reversals} {conclusion}"))
    amplifiers = [word for word in words if BOOSTER_DICT.get(word, 0) > 0]
    softeners = [word for word in words if BOOSTER_DICT.get(word, 0) < 0 or word in HEDGES]
    if amplifiers or softeners:
        remarks = []
        if amplifiers:
            remarks.append(f"Intensifiers ({quote(amplifiers)}) amplify it.")
        if softeners:
            remarks.append(f"Hedges and downtoners ({quote(softeners)}) soften it.")
        if cues:
            strongest = max(cues, key=lambda cue: abs(cue.effect))
            remarks.append(f"The strongest cue, {strongest.cite()}, is {strength(abs(strongest.valence))}.")
        options.append(("How strongly is the feeling put?", f"{' '.join(remarks)} {conclusion}"))
    context = sample.get("context") or ""
    if context:
        context_cues = find_cues(context)
        tone = lean(context_cues)
        framing = (
            "The dialogue so far has no clear sentiment."
            if tone == "neutral"
            else f"The dialogue so far leans {tone} ({cite_strongest(cues_toward(tone, context_cues), 2)})."
        )
        options.append(("How does the earlier dialogue frame the utterance?", f"{framing} {conclusion}"))
    question, answer = options[zlib.crc32(f"{seed}:{sample['id']}".encode()) % len(options)]
    return render_self_question(question, answer)


def self_question_messages(sample: dict, task: TaskSpec) -> list[dict]:
    """What a chat teacher is asked for a self-questioning example."""
    system = (
        "You write self-questioning training examples for a sentiment-analysis model. Ask one question about the "
        "affective cues of the utterance (its words, negation, intensity, the dialogue context or other modalities) "
        "whose answer helps judge it, then answer the question, grounded in the utterance, and end the answer by "
        f"stating its coarse result ({task.coarse_format()}). Reply in exactly this format:\n"
        "Question: <one question ending in ?>\nAnswer: <the answer>"
    )
    modalities = describe_modalities(sample)
    available = "\n".join(f"- {line}" for line in modalities) if modalities else "Only the text is available."
    utterance = user_prompt(sample["text"], sample.get("context") or "")
    user = f"{utterance}\n\n{available}\n\nCoarse result: {sample['polarity']}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def student_messages(sample: dict, task: TaskSpec) -> list[dict]:
    """The SFT prompt of a self-questioning example."""
    system = (
        f"You are an expert in sentiment analysis. {task.instruction}\n"
        "Before judging, ask yourself one question about the affective cues of the utterance (its words, negation, "
        "intensity, the context or other modalities) and answer it, in this format:\nQuestion: ...\nAnswer: ..."
    )
    user = user_prompt(sample["text"], sample.get("context") or "")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
