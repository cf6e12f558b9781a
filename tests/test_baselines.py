import csv
import json

import numpy as np
import pytest
from datasets import Dataset
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from hintgrpo.baselines import MeanPooledStates, fit_baseline
from hintgrpo.cli import main
from hintgrpo.data import load_task_dataset
from hintgrpo.evaluate import score_records
from hintgrpo.jsonl import read_records
from hintgrpo.tasks import get_task

EMOBANK_ROWS = [
    ("I love this wonderful, beautiful day!", 2.4),
    ("This is a good idea.", 0.9),
    ("The meeting is at noon.", 0.0),
    ("The report has four pages.", 0.15),
    ("I hate this awful, terrible mess.", -2.1),
    ("That was a bad mistake.", -0.9),
]
MELD_ROWS = [
    ("Joey: I love it, it is great!", "positive"),
    ("Joey: I love it, it is great!", "positive"),
    ("Ross: We are going to the museum.", "neutral"),
    ("Monica: The table is in the kitchen.", "neutral"),
    ("Rachel: Where is the coffee?", "neutral"),
    ("Chandler: This is horrible, I hate it.", "negative"),
]


def make_dataset(task_name: str, rows: list[tuple[str, float | str]]) -> Dataset:
    task = get_task(task_name)
    return Dataset.from_list(
        [
            {
                "id": f"{task_name}_{i}",
                "text": text,
                "label": label,
                "task": task_name,
                "polarity": task.polarity_of(label),
                "context": "Somebody: earlier turn" if not task.is_regression else "",
                "weight": 1.0,
            }
            for i, (text, label) in enumerate(rows)
        ]
    )


@pytest.fixture
def emobank_train():
    return make_dataset("emobank", EMOBANK_ROWS)


@pytest.fixture
def meld_train():
    return make_dataset("meld_sentiment", MELD_ROWS)


def test_constant_is_the_train_mean(emobank_train):
    predictions = fit_baseline("constant", emobank_train).predict(emobank_train.select(range(2)))
    labels = [label for _, label in EMOBANK_ROWS]
    assert predictions == [pytest.approx(sum(labels) / len(labels), abs=1e-12)] * 2


def test_constant_is_the_majority_class(meld_train):
    assert fit_baseline("constant", meld_train, "meld_sentiment").predict(meld_train) == ["neutral"] * 6


def test_vader_is_the_least_squares_line_of_the_compound(emobank_train):
    analyzer = SentimentIntensityAnalyzer()
    compounds = np.array([analyzer.polarity_scores(text)["compound"] for text, _ in EMOBANK_ROWS])
    slope, intercept = np.polyfit(compounds, [label for _, label in EMOBANK_ROWS], 1)
    test = make_dataset("emobank", [("What a fantastic, amazing, perfect gift!", 0.0), ("A sad day.", 0.0)])
    test_compounds = np.array([analyzer.polarity_scores(text)["compound"] for text in test["text"]])
    vader = fit_baseline("vader", emobank_train, get_task("emobank"))
    assert vader.predict(emobank_train) == pytest.approx(slope * compounds + intercept, abs=1e-9)
    assert vader.predict(test) == pytest.approx(np.clip(slope * test_compounds + intercept, -3, 3), abs=1e-9)


def test_vader_classification_separates_the_compound(meld_train):
    predictions = fit_baseline("vader", meld_train).predict(meld_train)
    assert set(predictions) <= set(get_task("meld_sentiment").labels)
    assert predictions[0] == "positive" and predictions[2] == "neutral"


def test_tfidf_ridge_follows_the_text(emobank_train):
    tfidf = fit_baseline("tfidf", emobank_train)
    predictions = tfidf.predict(emobank_train)
    assert np.corrcoef(predictions, emobank_train["label"])[0, 1] > 0.9
    assert len(set(predictions)) == len(predictions)
    assert tfidf.predict(emobank_train) == predictions  # deterministic
    assert fit_baseline("tfidf", emobank_train).predict(emobank_train) == predictions


def test_tfidf_classification_predicts_a_repeated_training_text(meld_train):
    test = make_dataset("meld_sentiment", [("Joey: I love it, it is great!", "neutral")])
    assert fit_baseline("tfidf", meld_train).predict(test) == ["positive"]


def test_unknown_baseline_names_the_known_ones(emobank_train):
    with pytest.raises(ValueError, match="unknown baseline 'bert'; known baselines: constant, probe, tfidf, vader"):
        fit_baseline("bert", emobank_train)


def test_mean_pooling_ignores_padding(tiny_model_dir):
    texts = ["good", "a much longer sentence that pads the others in its batch", "bad day"]
    one_by_one = MeanPooledStates(str(tiny_model_dir), batch_size=1, max_length=64)(texts)
    batched = MeanPooledStates(str(tiny_model_dir), batch_size=3, max_length=64)(texts)
    assert batched == pytest.approx(one_by_one, abs=1e-5)


def test_probe_on_a_tiny_model(tiny_model_dir, emobank_train, meld_train):
    probe = fit_baseline("probe", emobank_train, model=str(tiny_model_dir), max_train_rows=5, batch_size=2)
    predictions = probe.predict(emobank_train)
    assert len(predictions) == 6 and all(-3.0 <= p <= 3.0 for p in predictions)
    classes = fit_baseline("probe", meld_train, model=str(tiny_model_dir), batch_size=4).predict(meld_train)
    assert set(classes) <= set(get_task("meld_sentiment").labels) and len(classes) == 6


def write_emobank(data_dir):
    (data_dir / "emobank").mkdir(parents=True)
    dev = [("A lovely, happy surprise.", 4.2), ("The bus is late again, sadly.", 2.4), ("It is Tuesday.", 3.0)]
    with open(data_dir / "emobank" / "emobank.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split", "V", "A", "D", "text"])
        for split, rows in (("train", [(text, 3 + label / 1.5) for text, label in EMOBANK_ROWS]), ("dev", dev)):
            for i, (text, valence) in enumerate(rows):
                writer.writerow([f"{split}{i}", split, valence, 3.0, 3.0, text])


def test_cli_writes_one_row_per_baseline(tmp_path, capsys):
    write_emobank(tmp_path / "data")
    output_dir = tmp_path / "out"
    main(
        ["baselines", "--task", "emobank", "--data_dir", str(tmp_path / "data"), "--split", "dev"]
        + ["--output_dir", str(output_dir), "--baselines", "constant", "vader", "tfidf"]
    )
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert list(metrics) == ["constant", "vader", "tfidf"]
    assert metrics["constant"]["Corr"] is None or abs(metrics["constant"]["Corr"]) < 1e-9
    assert all(m["n"] == 3 and m["parse_rate"] == 1.0 and m["well_formed_rate"] == 1.0 for m in metrics.values())
    table = (output_dir / "metrics.md").read_text().splitlines()
    assert table[2].startswith("| baseline | MAE | Corr |")
    assert [line.split(" | ")[0] for line in table[4:7]] == ["| constant", "| vader", "| tfidf"]
    assert "hintgrpo baselines --task emobank" in table[-1]
    records = read_records(output_dir / "predictions_tfidf.jsonl")
    assert [set(r) for r in records] == [{"id", "label", "gold_polarity", "answer", "polarity", "well_formed"}] * 3
    assert "report written to" in capsys.readouterr().out


def as_written(metrics: dict) -> dict:
    """Metrics as metrics.json holds them: NaN as null."""
    return {key: None if value != value else value for key, value in metrics.items()}


def test_cli_limit_scores_the_first_rows_of_baselines_fit_on_all_of_train(tmp_path):
    write_emobank(tmp_path / "data")
    output_dir = tmp_path / "out"
    main(
        ["baselines", "--task", "emobank", "--data_dir", str(tmp_path / "data"), "--split", "train", "--limit", "3"]
        + ["--output_dir", str(output_dir), "--baselines", "constant", "vader", "tfidf"]
    )
    metrics = json.loads((output_dir / "metrics.json").read_text())
    task, train = get_task("emobank"), load_task_dataset("emobank", tmp_path / "data", "train")
    first = train.select(range(3))
    for name in ("constant", "vader", "tfidf"):
        answers = fit_baseline(name, train).predict(first)  # fit on all 6 train rows, not on the 3 scored
        records = [
            {
                "label": row["label"],
                "gold_polarity": row["polarity"],
                "answer": answer,
                "polarity": task.polarity_of(answer),
                "well_formed": True,
            }
            for row, answer in zip(first, answers, strict=True)
        ]
        assert metrics[name] == as_written(score_records(records, task)) and metrics[name]["n"] == 3
        predictions = read_records(output_dir / f"predictions_{name}.jsonl")
        assert [p["id"] for p in predictions] == first["id"]
        assert as_written(score_records(predictions, task)) == metrics[name]  # the predictions rescore to the table
    table = (output_dir / "metrics.md").read_text()
    assert "emobank train (n=3), fit on train (n=6)" in table and "--split train --limit 3 " in table


# (speaker, utterance, emotion, sentiment): MELD's surprise is positive or negative by its Sentiment column.
MELD_EMOTION_TRAIN = [
    ("Joey", "I love it, it is great!", "joy", "positive"),
    ("Ross", "We are going to the museum.", "neutral", "neutral"),
    ("Monica", "The table is in the kitchen.", "neutral", "neutral"),
    ("Chandler", "This is horrible, I hate it.", "anger", "negative"),
    ("Phoebe", "Wow, you got the part?", "surprise", "positive"),
]
MELD_EMOTION_TEST = [
    ("Mark", "Why do all your coffee mugs have numbers?", "surprise", "positive"),
    ("Rachel", "That is so horrible, I hate it.", "anger", "negative"),
    ("Ross", "What? You lost the ring again?", "surprise", "negative"),
    ("Joey", "I love it, it is great!", "joy", "positive"),
]


def write_meld(data_dir):
    (data_dir / "meld").mkdir(parents=True)
    for split, rows in (("train", MELD_EMOTION_TRAIN), ("test", MELD_EMOTION_TEST)):
        with open(data_dir / "meld" / f"{split}_sent_emo.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"])
            writer.writerows(
                [text, speaker, emotion, sentiment, 0, i] for i, (speaker, text, emotion, sentiment) in enumerate(rows)
            )


def test_meld_emotion_predictions_hold_the_sentiment_column_as_gold_polarity(tmp_path):
    write_meld(tmp_path / "data")
    output_dir = tmp_path / "out"
    main(
        ["baselines", "--task", "meld_emotion", "--data_dir", str(tmp_path / "data"), "--split", "test"]
        + ["--output_dir", str(output_dir), "--baselines", "constant", "tfidf"]
    )
    metrics = json.loads((output_dir / "metrics.json").read_text())
    task = get_task("meld_emotion")
    for name in ("constant", "tfidf"):
        predictions = read_records(output_dir / f"predictions_{name}.jsonl")
        # The label's coarse result would make both surprise rows neutral.
        assert [p["gold_polarity"] for p in predictions] == ["positive", "negative", "negative", "positive"]
        assert [p["polarity"] for p in predictions] == [task.polarity_of(p["answer"]) for p in predictions]
        assert as_written(score_records(predictions, task)) == metrics[name]


def test_cli_refuses_an_unknown_baseline(tmp_path):
    with pytest.raises(SystemExit, match=r"error: baselines \['bert'\] are not known"):
        main(["baselines", "--data_dir", str(tmp_path), "--output_dir", str(tmp_path), "--baselines", "bert"])


@pytest.mark.slow
def test_emobank_dev_baselines(real_data_dir, tmp_path):
    main(
        ["baselines", "--task", "emobank", "--data_dir", str(real_data_dir), "--split", "dev"]
        + ["--output_dir", str(tmp_path), "--baselines", "constant", "vader", "tfidf"]
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["constant"]["MAE"] == pytest.approx(0.357, abs=0.005)
    assert metrics["vader"]["Corr"] == pytest.approx(0.456, abs=0.01)
    assert metrics["tfidf"]["Corr"] >= 0.5
