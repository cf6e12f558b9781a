"""Minimal label-keeping paraphrases: asked of a chat teacher, or made offline by lexicon-grounded word edits.

The offline paraphraser swaps words for interchangeable ones whose VADER valence has the same sign and nearly
the same size (curated groups, checked against the lexicon in the tests), swaps intensifiers within VADER's
booster classes and hedges among themselves, and expands or contracts negations and pronoun-verb pairs. Every
paraphrase, from any backend, must keep VADER's polarity of the text and move its compound score by at most
COMPOUND_TOLERANCE, so an edit that would change the sentiment is refused.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from hintgrpo.data.prompts import user_prompt
from hintgrpo.reasoning import format_score
from hintgrpo.tasks import TaskSpec

# Each group: words used alike whose VADER valences share a sign and differ by at most 0.6.
SYNONYM_GROUPS = (
    ("great", "wonderful", "excellent", "superb", "marvelous"),
    ("amazing", "awesome", "fantastic"),
    ("good", "nice"),
    ("terrible", "horrible", "awful", "dreadful"),
    ("bad", "lousy"),
    ("happy", "cheerful", "joyful"),
    ("glad", "pleased"),
    ("sad", "unhappy", "miserable"),
    ("angry", "mad"),
    ("annoyed", "irritated"),
    ("annoying", "irritating"),
    ("scared", "frightened"),
    ("worried", "anxious", "nervous"),
    ("hate", "loathe"),
    ("liked", "enjoyed"),
    ("beautiful", "lovely", "gorgeous"),
    ("stupid", "dumb", "idiotic"),
    ("smart", "clever", "intelligent"),
    ("funny", "amusing", "hilarious"),
    ("failure", "fiasco"),
    ("strange", "weird"),
    ("tired", "exhausted"),
    ("lonely", "lonesome"),
    ("boring", "dull"),
    ("perfect", "flawless", "ideal"),
)
# Common words outside the lexicon (VADER scores them 0) with a near-synonym of the same part of speech.
NEUTRAL_GROUPS = (
    ("big", "large"),
    ("start", "begin"),
    ("started", "began"),
    ("buy", "purchase"),
    ("bought", "purchased"),
    ("children", "kids"),
    ("often", "frequently"),
    ("quickly", "rapidly"),
    ("whole", "entire"),
    ("try", "attempt"),
    ("tried", "attempted"),
    ("said", "stated"),
    ("says", "states"),
    ("idea", "notion"),
    ("nearly", "almost"),
    ("shows", "demonstrates"),
    ("showed", "demonstrated"),
    ("enough", "sufficient"),
    ("mostly", "largely"),
    ("usually", "typically"),
    ("recently", "lately"),
    ("finally", "eventually"),
    ("maybe", "perhaps"),
    ("story", "tale"),
    ("company", "firm"),
    ("answer", "reply"),
    ("choose", "select"),
    ("chose", "selected"),
    ("find", "discover"),
    ("found", "discovered"),
    ("need", "require"),
    ("needs", "requires"),
)
# Adverbs of one VADER booster class: all scale a cue by the same amount.
INTENSIFIER_GROUPS = (
    ("extremely", "incredibly", "exceptionally", "remarkably", "unbelievably"),
    ("totally", "completely", "entirely", "utterly", "thoroughly"),
    ("somewhat", "slightly", "marginally"),
    ("barely", "hardly", "scarcely"),
)
CONTRACTIONS = {
    "do not": "don't",
    "does not": "doesn't",
    "did not": "didn't",
    "is not": "isn't",
    "are not": "aren't",
    "was not": "wasn't",
    "were not": "weren't",
    "cannot": "can't",
    "will not": "won't",
    "would not": "wouldn't",
    "could not": "couldn't",
    "should not": "shouldn't",
    "have not": "haven't",
    "has not": "hasn't",
    "i am": "i'm",
    "it is": "it's",
    "that is": "that's",
    "they are": "they're",
    "we are": "we're",
    "you are": "you're",
    "i will": "i'll",
}
EXPANSIONS = {short: long for long, short in CONTRACTIONS.items()}
COMPOUND_TOLERANCE = 0.15
NEUTRAL_COMPOUND = 0.05  # VADER's own threshold between neutral and positive / negative
LENGTH_RATIO = (0.5, 2.0)
ATTEMPTS_PER_PARAPHRASE = 8

TOKEN = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)*")


@functools.cache
def alternatives() -> dict[str, tuple[str, ...]]:
    """Each replaceable word (lower case) → the words it may become."""
    table = {}
    for group in SYNONYM_GROUPS + NEUTRAL_GROUPS + INTENSIFIER_GROUPS:
        for word in group:
            table[word] = table.get(word, ()) + tuple(other for other in group if other != word)
    return table


@functools.cache
def analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def compound(text: str) -> float:
    return analyzer().polarity_scores(text)["compound"]


def vader_polarity(score: float) -> str:
    return "positive" if score >= NEUTRAL_COMPOUND else "negative" if score <= -NEUTRAL_COMPOUND else "neutral"


def paraphrase_problem(source: str, paraphrase: str) -> str | None:
    """Why `paraphrase` is not a minimal label-keeping paraphrase of `source` (None when it is)."""
    if not paraphrase.strip():
        return "the paraphrase is empty"
    if paraphrase.strip() == source.strip():
        return "the paraphrase is the utterance itself: change some words"
    low, high = LENGTH_RATIO
    if not low <= len(paraphrase) / len(source) <= high:
        return f"the paraphrase has {len(paraphrase)} characters for the utterance's {len(source)}: keep it close"
    before, after = compound(source), compound(paraphrase)
    if vader_polarity(after) != vader_polarity(before) or abs(after - before) > COMPOUND_TOLERANCE:
        return (
            f"the paraphrase changes the sentiment (VADER compound {before:+.2f} -> {after:+.2f}): keep the "
            "sentiment and its intensity"
        )
    return None


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    options: tuple[str, ...]


def matched_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word[0].upper() + word[1:] if like[0].isupper() else word


def edit_sites(text: str) -> list[Edit]:
    """Every span of `text` that one edit can change, with what it may become (spans may overlap)."""
    tokens = list(TOKEN.finditer(text))
    sites = []
    for index, token in enumerate(tokens):
        word = token.group().lower().replace("\u2019", "'")
        if word in alternatives():
            sites.append(Edit(token.start(), token.end(), alternatives()[word]))
        elif word in EXPANSIONS:
            sites.append(Edit(token.start(), token.end(), (EXPANSIONS[word],)))
        elif word in CONTRACTIONS:  # one-word forms such as "cannot"
            sites.append(Edit(token.start(), token.end(), (CONTRACTIONS[word],)))
        # Two words contract only when a word follows: "it is good" -> "it's good", but not "I know what it is."
        if index + 2 < len(tokens) and text[token.end() : tokens[index + 1].start()] == " ":
            pair = f"{word} {tokens[index + 1].group().lower()}"
            if pair in CONTRACTIONS:
                sites.append(Edit(token.start(), tokens[index + 1].end(), (CONTRACTIONS[pair],)))
    return sites


def apply_edits(text: str, chosen: list[tuple[Edit, str]]) -> str:
    for edit, replacement in sorted(chosen, key=lambda pair: -pair[0].start):
        text = text[: edit.start] + matched_case(replacement, text[edit.start : edit.end]) + text[edit.end :]
    return text


def lexicon_paraphrases(text: str, count: int, max_edits: int, seed: str) -> list[str]:
    """Up to `count` distinct paraphrases of `text`, each from 1 to `max_edits` non-overlapping edits that pass
    `paraphrase_problem`; the same arguments always give the same paraphrases."""
    sites = edit_sites(text)
    if not sites:
        return []
    rng = random.Random(seed)
    found: list[str] = []
    for _ in range(count * ATTEMPTS_PER_PARAPHRASE):
        chosen: list[tuple[Edit, str]] = []
        for edit in rng.sample(sites, min(len(sites), rng.randint(1, max_edits))):
            if all(edit.end <= other.start or other.end <= edit.start for other, _ in chosen):
                chosen.append((edit, rng.choice(edit.options)))
        candidate = apply_edits(text, chosen)
        if candidate not in found and paraphrase_problem(text, candidate) is None:
            found.append(candidate)
            if len(found) == count:
                break
    return found


def paraphrase_messages(sample: dict, task: TaskSpec) -> list[dict]:
    gold = format_score(sample["label"]) if task.is_regression else sample["label"]
    system = (
        "You paraphrase utterances to augment a sentiment-analysis training set. Rewrite the utterance minimally: "
        "change a few words or their order, keep its meaning, its sentiment and the strength of that sentiment "
        "exactly, keep any speaker name in front of it. Reply with the paraphrased utterance only."
    )
    user = (
        f"{user_prompt(sample['text'], sample.get('context') or '')}\n\n"
        f"Its sentiment (keep it): {sample['polarity']}, gold answer {gold}."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
