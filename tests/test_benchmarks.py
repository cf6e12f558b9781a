"""The benchmark scripts run end to end on a tiny model (their numbers come from full runs, not from here)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_hint_grpo_cost_benchmark_compares_both_arms(tiny_model_dir, real_data_dir, tmp_path):
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "hint_grpo_cost.py"),
        "--config",
        str(ROOT / "recipes" / "configs" / "demo" / "hint_grpo.yaml"),
        "--model_name_or_path",
        str(tiny_model_dir),
        "--data_dir",
        str(real_data_dir),
        "--output_dir",
        str(tmp_path),
        "--max_steps",
        "2",
        "--max_completion_length",
        "16",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300, cwd=ROOT)

    result = json.loads((tmp_path / "results.json").read_text())
    assert set(result["summaries"]) == {"none", "prefix"}
    assert [len(result["steps"][arm]) for arm in ("none", "prefix")] == [2, 2]
    # A random tiny model never states a polarity: every group is hard, and every one is hinted.
    assert result["summaries"]["none"]["hard_group_frac"] == 0.0
    assert result["summaries"]["prefix"]["hard_group_frac"] == 1.0
    comparison = result["comparisons"]["prefix"]
    assert comparison["step_time_bound"] == 2.2
    assert comparison["step_time_ratio"] > 0
    assert "| prefix | 2 |" in (tmp_path / "results.md").read_text()


def test_side_by_side_benchmark_runs_rl_rows_at_equal_completion_budget(tiny_model_dir, real_data_dir, tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "side_by_side.py"), "--model", str(tiny_model_dir)]
    command += ["--data_dir", str(real_data_dir), "--output_dir", str(tmp_path), "--methods", "sft", "grpo", "hint"]
    command += ["--seeds", "1", "--sft_steps", "1", "--completion_budget", "16", "--eval_limit", "4"]
    command += ["--cross_domain_limit", "4", "--max_new_tokens", "8", "--hard_pool", "4", "--hard_prompts", "2"]
    command += ["--resamples", "20"]
    printed = subprocess.run(command, check=True, capture_output=True, text=True, timeout=900, cwd=ROOT).stdout

    results = json.loads((tmp_path / "results.json").read_text())
    runs, intervals = results["runs"], results["intervals"]
    baselines = ["baseline: constant", "baseline: vader", "baseline: tfidf"]
    assert list(runs) == [*baselines, "sft", "grpo", "hint"]
    # Steps of 8 completions; on a random model every group is hard, so a hinted step generates 16.
    assert runs["grpo"][0]["completions"] == [8, 16]
    assert runs["hint"][0]["completions"] == [16]
    # A random model states no polarity: both hard prompts are followed, from before the first step on.
    assert (tmp_path / "hard_prompts.txt").read_text().count("\n") == 2
    assert runs["hint"][0]["hard_curve"][0] == [0, 0.0]
    # The baselines are scored on the rows the models are, by the printed command (its --limit).
    for method in runs:
        assert runs[method][0]["in_domain"]["n"] == 4 and runs[method][0]["cross_domain"]["n"] == 4
    baseline_commands = [line for line in printed.splitlines() if "hintgrpo.cli baselines --task" in line]
    assert len(baseline_commands) == 2 and all(c.endswith("--limit 4") for c in baseline_commands)  # EmoBank, MELD
    assert set(intervals["in_domain"]["differences"]) == {
        "hint − grpo",
        "grpo − sft",
        "hint − sft",
        "sft − baseline: tfidf",
    }
    for name in ("reward_curves.png", "hard_prompt_curve.png"):
        assert (tmp_path / name).stat().st_size > 0
    table = (tmp_path / "results.md").read_text()
    assert "| hint | 1 |" in table and all(f"| {name} | 1 |" in table for name in baselines)
    assert "| hint − grpo |" in table
    # Every stage that ran is timed: 2 baselines, SFT (synthesis, training), 3 rows × 2 domains, the hard-prompt search.
    stages = [json.loads(line) for line in (tmp_path / "stages.jsonl").read_text().splitlines()]
    kinds = [stage["kind"] for stage in stages]
    assert kinds.count("baselines") == 2 and kinds.count("synthesize") == 1 and kinds.count("evaluate") == 7
    assert kinds.count("training") == 3 and all(stage["seconds"] > 0 for stage in stages)
    assert f"Wall time of the {len(stages)} finished stages:" in table


def test_quality_weights_benchmark_puts_baselines_beside_both_runs(tiny_model_dir, real_data_dir, tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "quality_weights.py"), "--model", str(tiny_model_dir)]
    command += ["--data_dir", str(real_data_dir), "--output_dir", str(tmp_path)]
    command += ["--train_rows", "8", "--max_steps", "1", "--eval_rows", "4"]
    printed = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600, cwd=ROOT).stdout

    results = json.loads((tmp_path / "results.json").read_text())
    rows = ["uniform", "quality", "baseline: constant", "baseline: vader", "baseline: tfidf"]
    assert all(results[row]["n"] == 4 for row in rows)
    baseline_command = next(line for line in printed.splitlines() if "hintgrpo.cli baselines --task" in line)
    assert "baselines_first4 " in baseline_command and baseline_command.endswith("--limit 4")
    assert results["baseline: tfidf"]["parse_rate"] == 1.0
    table = (tmp_path / "results.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in table[4:]] == [f"| {row}" for row in rows]
    assert table[6].split(" | ")[2] == "–"  # the constant baseline's Corr


def test_throughput_benchmark_measures_every_part(tiny_model_dir, real_data_dir, tmp_path):
    import importlib.util  # here, not at the top: the benchmark runs in-process, the others as subprocesses

    import yaml

    spec = importlib.util.spec_from_file_location("throughput_benchmark", ROOT / "benchmarks" / "throughput.py")
    throughput = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = throughput  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(throughput)
    # The GRPO part runs with the options of its YAML: a copy with short completions keeps the test fast.
    grpo_config = yaml.safe_load((ROOT / "recipes" / "configs" / "demo" / "hint_grpo.yaml").read_text())
    (tmp_path / "hint_grpo.yaml").write_text(yaml.safe_dump(grpo_config | {"max_completion_length": 16}))
    args = throughput.ThroughputArguments(
        output_dir=str(tmp_path),
        data_dir=str(real_data_dir),
        model=str(tiny_model_dir),
        matmul_sizes=[128],
        matmul_reps=2,
        generation_batches=[1, 3],
        max_new_tokens=4,
        sft_config=str(ROOT / "recipes" / "configs" / "demo" / "sft.yaml"),
        sft_steps=1,
        grpo_config=str(tmp_path / "hint_grpo.yaml"),
        grpo_steps=1,
    )
    throughput.main(args)

    result = json.loads((tmp_path / "results.json").read_text())
    assert set(throughput.PARTS) <= set(result)
    matmul = result["matmul"]
    assert matmul["threads"] >= 1 and len(matmul["measured_gflops"]) == 2  # at the start and at the end
    assert matmul["gflops"] == max(matmul["measured_gflops"]) > 0
    assert matmul["bf16"]["gflops"] > 0
    batches = result["generation"]["batches"]
    assert [(b["batch"], b["path"]) for b in batches] == [(1, "transformers"), (1, "hintgrpo"), (3, "transformers")] + [
        (3, "hintgrpo")
    ]
    # Both decoders write the same greedy tokens.
    assert batches[2]["generated_tokens"] == batches[3]["generated_tokens"]
    for batch in batches:
        assert 0 < batch["generated_tokens_per_row"] <= 4 and batch["prompt_tokens_per_row"] > 0
        assert 0 < batch["shared_prefix_tokens"] < batch["prompt_tokens_per_row"]
        for key in ("rows_per_second", "tokens_per_second", "matmul_fraction", "bf16_matmul_fraction_with_prompt"):
            assert batch[key] > 0, key
    sft = result["sft"]
    assert sft["steps"] == 1 and len(sft["step_times"]) == 2  # the warm-up step is left out of the figures
    for key in ("samples_per_second", "tokens_per_second", "tokens_per_sample", "matmul_fraction"):
        assert sft[key] > 0, key
    grpo = result["grpo"]
    assert grpo["steps"] == 1 and grpo["hint_mode"] == "prefix" and grpo["max_completion_length"] == 16
    assert all(seconds > 0 for seconds in grpo["phase_seconds"].values()), grpo["phase_seconds"]
    assert abs(sum(grpo["phase_seconds"].values()) - grpo["step_seconds"]) < 1e-6
    # A random tiny model never states a polarity: every group is hard, and all 8 rows are generated twice.
    assert grpo["completions_per_step"] == 16
    for key in ("generation_tokens_per_second", "training_tokens_per_second", "step_matmul_fraction"):
        assert grpo[key] > 0, key
    table = (tmp_path / "results.md").read_text()
    assert (
        "| generation | batch 3 (6 rows), hintgrpo, greedy float32" in table
        and "| sft |" in table
        and "| backward |" in table
    )


def test_power_benchmark_sizes_rows_and_seeds_from_paired_predictions(tmp_path):
    # Two seeds of a method that moves half of the reference's answers 0.1 closer to the gold score.
    import random

    generator = random.Random(0)
    labels = [generator.uniform(-2, 2) for _ in range(200)]
    reference = [label + generator.gauss(0, 0.5) for label in labels]

    def write(name, answers):
        path = tmp_path / f"{name}.jsonl"
        rows = [
            {"id": str(i), "label": label, "answer": answer, "well_formed": True, "gold_polarity": "neutral",
             "polarity": "neutral"}
            for i, (label, answer) in enumerate(zip(labels, answers, strict=True))
        ]  # fmt: skip
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return str(path)

    def closer(seed):
        moved = random.Random(seed)
        pairs = zip(reference, labels, strict=True)
        return [a - 0.1 * (a - g) / max(abs(a - g), 1e-9) if moved.random() < 0.5 else a for a, g in pairs]

    command = [sys.executable, str(ROOT / "benchmarks" / "power.py"), "--reference", write("sft", reference),
               "--runs", write("seed1", closer(1)), write("seed2", closer(2)), "--resamples", "200"]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    assert "Rows: 200; runs: 2." in output
    mae_row = next(line for line in output.splitlines() if line.startswith("| MAE |"))
    observed = [float(v) for v in mae_row.split("|")[2].split(",")]
    assert all(-0.06 < v < -0.03 for v in observed)  # half the rows 0.1 closer (less where the error was smaller)
    rows_needed = int(mae_row.split("|")[6].replace(",", ""))
    assert rows_needed > 0


def test_rl_results_pairs_every_arm_with_the_sft_student_on_all_and_on_its_wrong_rows(tmp_path):
    def write(name, answers):
        rows = [
            {"id": str(i), "label": label, "answer": answer, "well_formed": True,
             "gold_polarity": "positive" if label > 0 else "negative",
             "polarity": "positive" if answer > 0 else "negative"}
            for i, (label, answer) in enumerate(zip(LABELS, answers, strict=True))
        ]  # fmt: skip
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return str(path)

    sft = [label + (0.8 if i % 4 == 0 else 0.1) * (-1 if label > 0 else 1) * 2 for i, label in enumerate(LABELS)]
    better = [label + 0.5 * (answer - label) for label, answer in zip(LABELS, sft, strict=True)]
    command = [sys.executable, str(ROOT / "benchmarks" / "rl_results.py"), "--sft", write("sft", sft),
               "--arms", f"grpo={write('seed1', better)},{write('seed2', better)}", "--resamples", "50"]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    wrong = sum((answer > 0) != (label > 0) for answer, label in zip(sft, LABELS, strict=True))
    assert "**All rows** (40 rows)" in output and f"wrong** ({wrong} rows)" in output
    mae = next(line for line in output.splitlines() if line.startswith("| grpo − sft |")).split("|")[3]
    assert mae.strip().startswith("-")  # halving every error lowers MAE, paired
    assert "| grpo | 2 |" in output


LABELS = [(-1) ** i * (0.3 + 0.05 * i) for i in range(40)]
