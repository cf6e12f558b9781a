import pytest

from hintgrpo.tasks import get_task

REQUIRED = ["mosi", "mosei", "sims", "emobank", "meld_sentiment", "meld_emotion", "mustard", "sst5"]


@pytest.mark.parametrize("name", REQUIRED)
def test_registry_has_every_required_task(name):
    spec = get_task(name)
    assert spec.name == name and spec.metric_suite in ("mosi", "sims", "classification")
    assert spec.instruction and spec.answer_format()


def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError, match="emobank"):
        get_task("imdb")


@pytest.mark.parametrize(
    ("task", "score", "polarity"),
    [
        ("emobank", 0.5, "neutral"),
        ("emobank", 0.51, "positive"),
        ("emobank", -0.6, "negative"),
        ("sims", 0.1, "neutral"),
        ("sims", 0.11, "positive"),
        ("sims", -0.1, "neutral"),
        ("sims", -0.2, "negative"),
    ],
)
def test_polarity_uses_the_task_neutral_band(task, score, polarity):
    assert get_task(task).polarity_of(score) == polarity


def test_classification_polarity_is_the_coarse_label():
    assert get_task("sst5").polarity_of("very negative") == "negative"
    assert get_task("meld_emotion").polarity_of("joy") == "positive"
    assert get_task("mustard").polarity_of("sarcastic") == "sarcastic"
