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
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "side_by_side.py"),
        "--model",
        str(tiny_model_dir),
        "--data_dir",
        str(real_data_dir),
        "--output_dir",
        str(tmp_path),
        "--methods",
        "grpo",
        "hint_prefix",
        "--seeds",
        "1",
        "--sft_steps",
        "1",
        "--completion_budget",
        "16",
        "--eval_limit",
        "4",
        "--cross_domain_limit",
        "4",
        "--max_new_tokens",
        "8",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=900, cwd=ROOT)

    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results) == ["grpo", "hint_prefix"]
    # Steps of 8 completions; on a random model every group is hard, so a hinted step generates 16.
    assert results["grpo"][0]["completions"] == [8, 16]
    assert results["hint_prefix"][0]["completions"] == [16]
    for method in results:
        assert results[method][0]["in_domain"]["n"] == 4 and results[method][0]["cross_domain"]["n"] == 4
    assert (tmp_path / "reward_curves.png").stat().st_size > 0
    assert "| hint_prefix | 1 |" in (tmp_path / "results.md").read_text()
