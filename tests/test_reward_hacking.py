"""Completions written to earn what they should not, and the reward each must get from every reward function."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hintgrpo.reasoning import parse_completion, render
from hintgrpo.rewards import REWARDS, get_reward_funcs
from hintgrpo.tasks import get_task

NAMES = list(REWARDS)  # format, polarity, consistency, accuracy, regression
EMOBANK = ("emobank", -1.5, "negative")  # gold task, label and polarity of a row
EMOBANK_NEUTRAL = ("emobank", 0.3, "neutral")
SST5 = ("sst5", "positive", "positive")
POSITIVE_SURPRISE = ("meld_emotion", "surprise", "positive")  # MELD: Emotion surprise, Sentiment positive
NEGATIVE_SURPRISE = ("meld_emotion", "surprise", "negative")
HONEST = render("negative", "Complaint words.", "Strongly worded, so clearly negative.", -1.5)
REASONING = HONEST[: HONEST.index("\n<answer>")]  # the DC block without its answer
# Expected rewards, in NAMES order; None where a reward does not apply to the task.
ALL = (1, 1, 1, None, 1)
NOTHING = (0, 0, 0, None, 0)
POLARITY_ONLY = (0, 1, 0, None, 0)  # the discrimination holds, the answer does not
NEAR_MISS = (0, 1, 1, None, 1)  # polarity and answer count, only the format reward is lost
NO_POLARITY = (0, 0, 0, None, 1)


def dc(answer: str, polarity: str = "negative", calibration: str = "Strongly worded, so clearly negative.") -> str:
    """A DC completion around `answer`, written as given."""
    return render(polarity, "Complaint words.", calibration, answer)


CASES = [  # (id, completion, gold row, expected rewards)
    ("honest", HONEST, EMOBANK, ALL),
    # One answer or none.
    ("two answer tags", dc("-1.5</answer><answer>2"), EMOBANK, NOTHING),
    ("answer tags in another case", HONEST + "<ANSWER>2</ANSWER>", EMOBANK, NOTHING),
    ("second DC block", HONEST + "\n" + render("positive", "Praise.", "Warm.", 2.5), EMOBANK, NOTHING),
    ("second DC block, one answer", REASONING + REASONING + "\n<answer>-1.5</answer>", EMOBANK, NOTHING),
    ("stray closing answer tag", HONEST + "</answer>", EMOBANK, NOTHING),
    ("answer tag before <think> and after", "<answer>2</answer>\n" + HONEST, EMOBANK, NOTHING),
    ("very long repetition of the block", "\n".join([HONEST] * 500), EMOBANK, NOTHING),
    ("answer lines that disagree", "polarity: negative\nAnswer: -1.5\nAnswer: 2", EMOBANK, POLARITY_ONLY),
    # A single number, nothing else.
    ("hedged answer", dc("-1 or maybe 2.5"), EMOBANK, POLARITY_ONLY),
    ("range", dc("-2 to -1"), EMOBANK, POLARITY_ONLY),
    ("number with words", dc("-1.5 out of 3"), EMOBANK, POLARITY_ONLY),
    ("very long answer", dc("-1.5 " * 20_000), EMOBANK, POLARITY_ONLY),
    ("empty answer", dc(""), EMOBANK, POLARITY_ONLY),
    ("blank answer", dc(" \n "), EMOBANK, POLARITY_ONLY),
    ("outside the task range", dc("-4"), EMOBANK, POLARITY_ONLY),
    ("outside the range by exponent", dc("-15e1"), EMOBANK, POLARITY_ONLY),
    ("overflows to infinity", dc("-1e400"), EMOBANK, POLARITY_ONLY),
    ("nan", dc("nan"), EMOBANK, POLARITY_ONLY),
    ("digit separators", dc("-1_5"), EMOBANK, POLARITY_ONLY),
    ("parroted instructions", "Answer: a single number from -3 (most negative) to 3.", EMOBANK, NOTHING),
    # Ordinary notations read as the number they are.
    ("exponent", dc("-15e-1"), EMOBANK, ALL),
    ("3e-1 is 0.3, not 3", dc("3e-1", "neutral", "Flat."), EMOBANK_NEUTRAL, ALL),
    ("leading plus and point", dc("+.3", "neutral", "Flat."), EMOBANK_NEUTRAL, ALL),
    ("unicode minus", dc("−1.50"), EMOBANK, ALL),
    ("emphasis", dc("**-1.5**"), EMOBANK, ALL),
    # Full-width forms are ASCII in CJK text; other scripts' digits and superscripts are not read (see reasoning.py).
    ("full-width digits", dc("－１．５"), EMOBANK, ALL),
    ("Arabic-Indic digits", dc("-١.٥"), EMOBANK, POLARITY_ONLY),
    ("superscript digit", dc("-1.5²"), EMOBANK, POLARITY_ONLY),
    # One polarity: the discrimination's, alone; polarity words elsewhere are just words.
    ("polarity words in the calibration", dc("-1.5", calibration="Not positive, not neutral: negative."), EMOBANK, ALL),
    ("a second polarity statement", dc("-1.5", calibration="Or polarity: positive."), EMOBANK, NO_POLARITY),
    ("hedged polarity", HONEST.replace("negative.", "negative or positive.", 1), EMOBANK, NO_POLARITY),
    ("negated polarity", HONEST.replace("negative.", "not positive.", 1), EMOBANK, NO_POLARITY),
    # Honest near-misses.
    ("missing </think>", HONEST.replace("\n</think>", ""), EMOBANK, NEAR_MISS),
    ("answer cut off before </answer>", HONEST.removesuffix("</answer>"), EMOBANK, NEAR_MISS),
    ("answer cut off inside </answer>", HONEST.removesuffix("wer>"), EMOBANK, NEAR_MISS),
    ("empty calibration", dc("-1.5", calibration=""), EMOBANK, NEAR_MISS),
    ("text around the block", "Sure, here it is:\n" + HONEST, EMOBANK, NEAR_MISS),
    ("answer tag before <think>", "<answer>-1.5</answer>\n" + REASONING, EMOBANK, NEAR_MISS),
    # Classification: exactly one label.
    ("label", dc("positive", "positive"), SST5, (1, 1, 1, 1, None)),
    ("not X", dc("not positive", "positive"), SST5, (0, 1, 0, 0, None)),
    ("two labels", dc("positive or negative", "positive"), SST5, (0, 1, 0, 0, None)),
    ("label in a sentence", dc("It is positive", "positive"), SST5, (0, 1, 0, 0, None)),
    ("not a label", dc("great", "positive"), SST5, (0, 1, 0, 0, None)),
    ("two label tags", dc("positive</answer><answer>negative", "positive"), SST5, (0, 0, 0, 0, None)),
    # Surprise has no fixed polarity: consistency never pays a wrong emotion over the gold one.
    ("gold surprise, positive row", dc("surprise", "positive"), POSITIVE_SURPRISE, (1, 1, 1, 1, None)),
    ("wrong joy, positive-surprise row", dc("joy", "positive"), POSITIVE_SURPRISE, (1, 1, 1, 0, None)),
    ("surprise called neutral", dc("surprise", "neutral"), POSITIVE_SURPRISE, (1, 0, 0, 1, None)),
    ("gold surprise, negative row", dc("surprise", "negative"), NEGATIVE_SURPRISE, (1, 1, 1, 1, None)),
    ("wrong joy, negative-surprise row", dc("joy", "negative"), NEGATIVE_SURPRISE, (1, 1, 0, 0, None)),
]


def all_rewards(completion, gold: tuple[str, object, str]) -> list[float | None]:
    task, label, polarity = gold
    return [func([completion], task=[task], label=[label], polarity=[polarity])[0] for func in get_reward_funcs(NAMES)]


@pytest.mark.parametrize(("completion", "gold", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_every_reward_of_an_adversarial_completion(completion, gold, expected):
    assert NAMES == ["format", "polarity", "consistency", "accuracy", "regression"]
    assert all_rewards(completion, gold) == pytest.approx(list(expected))


TAGS = ["<think>", "</think>", "<discrimination>", "</discrimination>", "<calibration>", "</calibration>"]
PIECES = TAGS + ["<answer>", "</answer>", "<Answer>", "polarity: ", "Answer: ", ".", " ", "\n", "*", "or", "not "]
PIECES += ["negative", "neutral", "positive", "surprise", "joy", "-1.5", "3e-1", "2", "+.5", "−", "１", "٣", "1e400"]
GOLD_ROWS = [EMOBANK, EMOBANK_NEUTRAL, SST5, POSITIVE_SURPRISE, ("mustard", "sarcastic", "sarcastic")]
tag_soups = st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=40).map("".join)


def splice(text: str, cuts: list[tuple[int, str]]) -> str:
    """`text` with each piece put in before one of its tags (or at the end)."""
    parts = re.split(r"(?=<)", text)
    for position, piece in cuts:
        parts.insert(position % (len(parts) + 1), piece)
    return "".join(parts)


# A well-formed completion with pieces spliced in between its tags: soups on the edge of well formed.
spliced = st.builds(
    lambda polarity, answer, cuts: splice(render(polarity, "e", "c", answer), cuts),
    st.sampled_from(["negative", "neutral", "positive"]),
    st.sampled_from([-1.5, 0.3, "positive", "surprise"]),
    st.lists(
        st.tuples(st.integers(0, 20), st.sampled_from(PIECES[:9] + ["polarity: positive.", "<answer>2</answer>"])),
        max_size=3,
    ),
)
completions = st.text() | tag_soups | spliced


# Many examples, since few soups land on the edge of well formed; no deadline, a loaded CI machine is slow.
PROPERTY = settings(max_examples=500, deadline=None)


@PROPERTY
@given(completions)
def test_no_string_raises_or_earns_outside_0_1(text):
    for gold in GOLD_ROWS:
        assert all(reward is None or 0.0 <= reward <= 1.0 for reward in all_rewards(text, gold))


@PROPERTY
@given(tag_soups | spliced, st.sampled_from(GOLD_ROWS))
def test_well_formed_means_exactly_one_answer_tag_and_both_paths_agree(text, gold):
    task = get_task(gold[0])
    parsed = parse_completion(text, task)
    if parsed.well_formed:
        lowered = text.lower()
        assert lowered.count("<answer>") == 1 and lowered.count("</answer>") == 1
        assert parsed.polarity is not None and parsed.answer is not None
        # The lenient reading of the same completion, one tag short, counts the same polarity and answer.
        near_miss = parse_completion(text.replace("</think>", "", 1), task)
        assert (near_miss.polarity, near_miss.answer, near_miss.well_formed) == (parsed.polarity, parsed.answer, False)


LONG = 100_000


@pytest.mark.parametrize(
    "text",
    [
        "a" * LONG,
        " " * LONG + "x",
        "<answer>" + "1" * LONG,
        "polarity: " * (LONG // 10),
        "Answer: " * (LONG // 8),
        "<think><discrimination>polarity: " + "a" * LONG,
        "<think><discrimination>polarity: x." + "</discrimination><calibration>" * (LONG // 30),
        "<think>\n<discrimination>polarity: negative." + " x" * LONG,
        "<" * LONG,
    ],
    ids=lambda text: repr(text[:24]),
)
def test_long_pathological_strings_finish(text):
    for gold in GOLD_ROWS:
        assert all(reward is None or 0.0 <= reward <= 1.0 for reward in all_rewards(text, gold))
