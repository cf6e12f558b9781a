import json
import sys

import pytest
from datasets import Dataset

from hintgrpo.configs import EvaluateArguments
from hintgrpo.data import DataError, load_task_dataset
from hintgrpo.evaluate import evaluate, score_records
from hintgrpo.jsonl import read_records, write_jsonl
from hintgrpo.tasks import get_task


def eval_args(model, data_dir, output_dir, **overrides):
    options = dict(
        model=str(model),
        task="emobank",
        data_dir=str(data_dir),
        split="dev",
        output_dir=str(output_dir),
        limit=6,
        batch_size=4,
        max_new_tokens=8,
    )
    return EvaluateArguments(**(options | overrides))


def test_evaluate_writes_every_report(tiny_model_dir, real_data_dir, tmp_path):
    metrics = evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path))
    for name in ("metrics.json", "metrics.md", "predictions.jsonl", "scatter.png", "confusion.png"):
        assert (tmp_path / name).stat().st_size > 0
    records = read_records(tmp_path / "predictions.jsonl")
    assert len(records) == 6 == metrics["n"]
    assert json.loads((tmp_path / "metrics.json").read_text())["parse_rate"] == metrics["parse_rate"]
    assert {"MAE", "Corr", "Mult_acc_7", "Has0_acc_2", "Non0_F1_score", "parse_rate"} <= set(metrics)


def test_evaluate_classification_task(tiny_model_dir, real_data_dir, tmp_path):
    metrics = evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path, task="meld_sentiment", split="test"))
    assert {"accuracy", "weighted_f1", "parse_rate"} <= set(metrics)
    assert (tmp_path / "confusion.png").is_file()


def test_interrupted_run_resumes_from_last_record(tiny_model_dir, real_data_dir, tmp_path):
    args = eval_args(tiny_model_dir, real_data_dir, tmp_path)
    evaluate(args)
    predictions = tmp_path / "predictions.jsonl"
    lines = predictions.read_text().splitlines(keepends=True)
    # Simulate a kill in the middle of writing the fourth record.
    predictions.write_text("".join(lines[:3]) + lines[3][:20])
    evaluate(args)
    records = read_records(predictions)
    assert [r["id"] for r in records] == [json.loads(line)["id"] for line in lines[:3]] + [r["id"] for r in records[3:]]
    assert len(records) == 6 and len({r["id"] for r in records}) == 6


def test_rerun_parses_the_stored_completions_again(tiny_model_dir, real_data_dir, tmp_path):
    args = eval_args(tiny_model_dir, real_data_dir, tmp_path)
    evaluate(args)
    predictions = tmp_path / "predictions.jsonl"
    records = read_records(predictions)
    records[0] |= {"completion": "<answer>1.5</answer>", "answer": None}  # as if written by an older parser
    write_jsonl(predictions, records)
    metrics = evaluate(args)
    assert read_records(predictions)[0]["answer"] == 1.5 and metrics["parse_rate"] >= 1 / 6


def test_a_larger_limit_extends_the_run_and_a_smaller_one_keeps_every_record(tiny_model_dir, real_data_dir, tmp_path):
    evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path, limit=2))
    predictions = tmp_path / "predictions.jsonl"
    first_two = read_records(predictions)
    metrics = evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path, limit=4))
    assert metrics["n"] == 4 and read_records(predictions)[:2] == first_two
    metrics = evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path, limit=3))
    assert metrics["n"] == 3 and len(read_records(predictions)) == 4


def test_resume_refuses_a_different_run(tiny_model_dir, real_data_dir, tmp_path):
    evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path))
    with pytest.raises(ValueError, match="different run"):
        evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path, max_new_tokens=9))


def record(label, answer, polarity, gold_polarity, well_formed=False):
    return {
        "label": label,
        "answer": answer,
        "polarity": polarity,
        "gold_polarity": gold_polarity,
        "well_formed": well_formed,
    }


def test_score_records_counts_unparsed_regression_as_neutral_midpoint():
    task = get_task("emobank")
    records = [
        record(1.0, 1.0, "positive", "positive", True),
        record(-2.0, None, None, "negative"),
        record(0.0, None, None, "neutral"),
        record(2.0, 1.0, "neutral", "positive"),
    ]
    metrics = score_records(records, task)
    # Predictions after the fallback: [1, 0, 0, 1]; |errors| = [0, 2, 0, 1].
    assert metrics["MAE"] == pytest.approx(0.75, abs=1e-12)
    assert metrics["parse_rate"] == 0.5
    assert metrics["well_formed_rate"] == 0.25
    assert metrics["polarity_accuracy"] == 0.25


def test_score_records_classification_unparsed_is_wrong():
    task = get_task("meld_sentiment")
    records = [record("positive", "positive", None, "positive"), record("negative", None, None, "negative")]
    metrics = score_records(records, task)
    assert metrics["accuracy"] == 0.5 and metrics["parse_rate"] == 0.5


def test_real_smollm2_greedy_output_parses(real_data_dir, tmp_path):
    """Smoke test on the real SmolLM2-135M-Instruct (materialised from the shipped GGUF on first use)."""
    metrics = evaluate(eval_args("smollm2-135m-instruct", real_data_dir, tmp_path, limit=2, max_new_tokens=48))
    records = read_records(tmp_path / "predictions.jsonl")
    assert len(records) == 2 and all(r["completion"].strip() for r in records)
    assert 0.0 <= metrics["parse_rate"] <= 1.0


def test_rendered_gold_scores_perfectly():
    task = get_task("emobank")
    labels = [-2.0, -0.5, 0.7, 2.4]
    records = [record(s, s, task.polarity_of(s), task.polarity_of(s), True) for s in labels]
    metrics = score_records(records, task)
    assert metrics["MAE"] == 0.0 and metrics["Mult_acc_7"] == 1.0 and metrics["parse_rate"] == 1.0


def test_a_fine_tuned_model_is_prompted_in_the_style_it_was_trained_with(tiny_model_dir, real_data_dir, tmp_path):
    import shutil

    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"hintgrpo_prompt_style": "brief"}))
    evaluate(eval_args(model, real_data_dir, tmp_path / "trained", limit=1))
    assert json.loads((tmp_path / "trained" / "run.json").read_text())["prompt_style"] == "brief"
    evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path / "base", limit=1))
    assert json.loads((tmp_path / "base" / "run.json").read_text())["prompt_style"] == "full"
    with pytest.raises(ValueError, match="different run"):  # predictions of one prompt are not extended by another's
        evaluate(eval_args(model, real_data_dir, tmp_path / "trained", limit=2, prompt_style="full"))


def test_a_run_that_failed_to_start_does_not_block_the_corrected_command(tiny_model_dir, real_data_dir, tmp_path):
    with pytest.raises(OSError):
        evaluate(eval_args(tmp_path / "no_such_model", real_data_dir, tmp_path / "out"))
    assert not (tmp_path / "out" / "run.json").exists()
    metrics = evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path / "out"))
    assert metrics["n"] == 6
    assert json.loads((tmp_path / "out" / "run.json").read_text())["model"] == str(tiny_model_dir)


def test_a_run_file_beside_no_predictions_blocks_nothing(tiny_model_dir, real_data_dir, tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"model": "a-model-that-failed-to-load"}))  # left by an older version
    assert evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path))["n"] == 6


def test_repeated_ids_are_refused_before_anything_is_generated(tiny_model_dir, real_data_dir, tmp_path):
    rows = load_task_dataset("emobank", real_data_dir, "dev").select(range(3)).to_list()
    dataset = Dataset.from_list([*rows, {**rows[0], "label": -rows[0]["label"]}])
    with pytest.raises(DataError, match=r"row 3, field 'id'.*is already the id of row 0"):
        evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path), dataset)
    assert not (tmp_path / "predictions.jsonl").exists()


def test_a_repeated_id_skipped_by_the_loader_gets_one_record(tiny_model_dir, real_data_dir, tmp_path):
    data = tmp_path / "data" / "emobank"
    data.mkdir(parents=True)
    lines = (real_data_dir / "emobank" / "emobank.csv").read_bytes().split(b"\r\n")
    first_dev = next(i for i, line in enumerate(lines) if b",dev," in line)
    sample_id, split, _, rest = lines[first_dev].split(b",", 3)
    lines.insert(first_dev + 1, b",".join([sample_id, split, b"1.0", rest]))  # its id, another valence
    (data / "emobank.csv").write_bytes(b"\r\n".join(lines))
    args = eval_args(tiny_model_dir, tmp_path / "data", tmp_path / "out", limit=4)
    with pytest.raises(DataError, match="is already the id of row"):
        evaluate(args)
    args.skip_bad_rows = True
    assert evaluate(args)["n"] == 4
    ids = [r["id"] for r in read_records(tmp_path / "out" / "predictions.jsonl")]
    assert len(ids) == len(set(ids)) == 4


def test_an_evaluation_killed_mid_run_resumes_without_loss_or_duplicates(
    tiny_model_dir, real_data_dir, tmp_path, run_until_killed
):
    predictions = tmp_path / "predictions.jsonl"
    command = [sys.executable, "-m", "hintgrpo.cli", "evaluate", "--model", str(tiny_model_dir), "--task", "emobank"]
    command += ["--data_dir", str(real_data_dir), "--split", "dev", "--output_dir", str(tmp_path), "--limit", "150"]
    command += ["--batch_size", "1", "--max_new_tokens", "8"]
    before = run_until_killed(command, predictions, lines=3, timeout=120)
    whole = before[: before.rfind(b"\n") + 1]
    assert 3 <= whole.count(b"\n") < 150
    with open(predictions, "ab") as handle:  # as if the kill landed inside a write
        handle.write(b'{"id": "torn", "label": 0.')
    metrics = evaluate(eval_args(tiny_model_dir, real_data_dir, tmp_path, limit=150, batch_size=16))
    records = read_records(predictions)
    completions = {r["id"]: r["completion"] for r in records}
    # What the killed run wrote is kept, not generated again.
    assert all(completions[r["id"]] == r["completion"] for r in map(json.loads, whole.splitlines()))
    assert metrics["n"] == 150
    dev = load_task_dataset("emobank", real_data_dir, "dev").select(range(150))
    assert sorted(r["id"] for r in records) == sorted(dev["id"])
