import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hintgrpo.reasoning import discrimination_opening, format_score, parse_completion, read_answer, render
from hintgrpo.tasks import TASKS, get_task

EMOBANK = get_task("emobank")
SST5 = get_task("sst5")
MUSTARD = get_task("mustard")

CANONICAL = (
    "<think>\n<discrimination>polarity: negative. The speaker complains about the delay.</discrimination>\n"
    "<calibration>Mild annoyance, no strong words, so moderately negative.</calibration>\n</think>\n"
    "<answer>-1.4</answer>"
)


def test_canonical_completion_parses_strictly():
    parsed = parse_completion(CANONICAL, EMOBANK)
    assert (parsed.polarity, parsed.answer, parsed.well_formed) == ("negative", -1.4, True)


def test_render_writes_the_canonical_form():
    rendered = render(
        "negative",
        "The speaker complains about the delay.",
        "Mild annoyance, no strong words, so moderately negative.",
        -1.4,
    )
    assert rendered == CANONICAL
    assert rendered.startswith(discrimination_opening("negative"))


@pytest.mark.parametrize(
    ("score", "text"), [(-1.4, "-1.4"), (0.0, "0"), (-0.0, "0"), (2.0, "2"), (1.255, "1.25"), (-0.004, "0")]
)
def test_format_score(score, text):
    assert format_score(score) == text


@pytest.mark.parametrize("task", sorted(TASKS))
def test_render_parse_round_trip_for_every_task(task):
    spec = get_task(task)
    answer = spec.score_range[0] + 0.25 if spec.is_regression else spec.labels[0]
    polarity = spec.polarity_of(answer)
    parsed = parse_completion(render(polarity, "evidence", "analysis", answer), spec)
    assert parsed.well_formed and parsed.polarity == polarity and parsed.answer == answer


# Real greedy outputs of SmolLM2-135M-Instruct (zero-shot, our DC prompt, EmoBank dev).
SMOLLM2_OUTPUTS = [
    (
        "1. Discrimination: state the coarse result (negative / neutral / positive) and its evidence.\n"
        "2. Calibration: refine it with fine-grained analysis.\n3. Answer: 1.2\n\nThe answer is 1.2.",
        None,
        1.2,
    ),
    ("A Goodwill staff member addresses a group of welfare recipients.", None, None),
    (
        "I'm sorry for any confusion, but as a sentiment analysis AI, I'm unable to provide assistance with the "
        "requested Utterance. I'm here to assist with any other tasks you need assistance with.",
        None,
        None,
    ),
]


@pytest.mark.parametrize(("text", "polarity", "answer"), SMOLLM2_OUTPUTS)
def test_real_smollm2_outputs(text, polarity, answer):
    parsed = parse_completion(text, EMOBANK)
    assert (parsed.polarity, parsed.answer, parsed.well_formed) == (polarity, answer, False)


@pytest.mark.parametrize(
    ("text", "polarity", "answer", "well_formed"),
    [
        # Structure intact but the answer is outside [-3, 3]: no answer, not well formed.
        (CANONICAL.replace("-1.4", "-4"), "negative", None, False),
        # Unknown polarity word.
        (CANONICAL.replace("negative.", "sad."), None, -1.4, False),
        # Missing calibration phase: lenient parse keeps polarity and answer.
        (
            "<think><discrimination>polarity: positive. nice</discrimination></think><answer>2</answer>",
            "positive",
            2.0,
            False,
        ),
        # Answer tag never closed (generation budget ran out) is still read.
        ("polarity: neutral. meh <answer> 0.3", "neutral", 0.3, False),
        # Answer tag cut off inside its closing tag.
        (CANONICAL[: -len("answer>")], "negative", -1.4, False),
        # Unicode minus; extra words make it no answer.
        (CANONICAL.replace("-1.4", "−1.5"), "negative", -1.5, True),
        (CANONICAL.replace("-1.4", "−1.5 out of 3"), "negative", None, False),
        ("Score: nan", None, None, False),
        ("", None, None, False),
    ],
)
def test_lenient_and_malformed_cases(text, polarity, answer, well_formed):
    parsed = parse_completion(text, EMOBANK)
    assert (parsed.polarity, parsed.answer, parsed.well_formed) == (polarity, answer, well_formed)


def test_classification_answers_pick_the_one_named_label():
    def answer(text):
        return parse_completion(f"<answer>{text}</answer>", SST5).answer

    assert answer("Very Negative") == "very negative"
    assert answer("negative.") == "negative"
    assert answer("positive or negative") is None  # two labels named: ambiguous
    assert answer("not positive") is None
    assert answer("great") is None
    assert parse_completion(render("sarcastic", "e", "c", "sarcastic"), MUSTARD).well_formed


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("-1.4", -1.4),
        ("+.5", 0.5),
        ("3e-1", 0.3),
        ("-15E-1", -1.5),
        ("−2.0", -2.0),
        ("2.", 2.0),
        (" **-0.8** ", -0.8),
        ("`1.5`.", 1.5),
        ("－０．５", -0.5),  # full-width forms, as CJK text writes them
        ("٣", None),  # Arabic-Indic: not read (see _ASCII_FORMS)
        ("0.5²", None),  # NFKC would make this 0.52
        ("1.5 (mildly positive)", None),
        ("1,5", None),
        ("1_0", None),
        ("0x1", None),
        ("inf", None),
        ("1e400", None),
        ("- 1", None),
        ("", None),
    ],
)
def test_number_notations(text, score):
    assert read_answer(text, EMOBANK) == score


# Real completions of the zero-shot and SFT SmolLM2-135M evaluations on EmoBank dev, with what they must parse as.
REAL_COMPLETIONS = [json.loads(line) for line in (Path(__file__).parent / "fixtures" / "real_completions.jsonl").open()]


@pytest.mark.parametrize("record", REAL_COMPLETIONS, ids=[f"{r['source']}-{r['id']}" for r in REAL_COMPLETIONS])
def test_real_completions_from_the_evaluations(record):
    parsed = parse_completion(record["completion"], get_task(record["task"]))
    assert (parsed.polarity, parsed.answer, parsed.well_formed) == (
        record["polarity"],
        record["answer"],
        record["well_formed"],
    )


@given(st.text())
def test_parse_never_raises(text):
    parsed = parse_completion(text, EMOBANK)
    assert parsed.answer is None or EMOBANK.in_range(parsed.answer)
    parse_completion(text, SST5)


@given(
    st.sampled_from(["negative", "neutral", "positive"]),
    st.floats(min_value=-3, max_value=3, allow_nan=False),
    st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=60),
)
def test_rendered_completions_round_trip(polarity, score, evidence):
    parsed = parse_completion(render(polarity, evidence, "calibration text", score), EMOBANK)
    assert parsed.polarity == polarity
    assert parsed.answer == pytest.approx(score, abs=0.005 + 1e-9)


def test_non_string_input_is_no_answer():
    assert parse_completion(None, EMOBANK).answer is None


def test_instructions_parroted_by_smollm2_are_no_answer():
    # Real SmolLM2-135M output: it repeats the prompt's format description, numbers included.
    text = (
        "1. Discrimination: state the coarse result (negative / neutral / positive) and its evidence.\n"
        "2. Calibration: refine it with fine-grained analysis.\n"
        "3. Answer: a single number from -3 (most negative) to 3 (most positive).\n\nExample of the format:\n"
    )
    assert parse_completion(text, EMOBANK).answer is None
    assert parse_completion("<answer>**-0.8**</answer>", EMOBANK).answer == -0.8
