import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_two_processes_with_hard_groups_on_one_rank_and_a_mixed_group_across_ranks(tiny_model_dir, tmp_path):
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "accelerate_configs" / "cpu_2proc.yaml"),
        "--main_process_port",
        "29517",
        str(ROOT / "tests" / "scripts" / "hint_grpo_two_ranks.py"),
        str(tiny_model_dir),
        str(tmp_path),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=900, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = dict(
        line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith(("HINT_", "MIX_", "DAPO_"))
    )

    logs = json.loads(printed["HINT_LOGS"])
    assert len(logs) == 2
    for log in logs:
        # Half the groups (the one on rank 1) are hard and hinted; the hint is logged from gathered rewards.
        assert log["hint/hard_group_frac"] == 0.5 and log["hint/hinted_group_frac"] == 0.5
        assert log["hint/reward_before"] == 0.0

    mixed = json.loads(printed["MIX_LOGS"])
    assert [log["completions/generated_total"] for log in mixed] == [5.0, 10.0]  # 4 rows, then 1 hinted row
    for log in mixed:
        assert log["hint/hinted_group_frac"] == 1.0
        assert log["hint/reward_before"] == 0.0 and log["hint/reward_after"] == 1.0
        assert log["hint/nonzero_std_after_frac"] == 1.0
    # The group's polarity rewards are [0, 0, 0, 1] over both ranks: mean 0.25, std 0.5 (unbiased).
    advantages = json.loads(printed["MIX_ADVANTAGES"])
    assert advantages == pytest.approx([-0.25 / 0.5001] * 3 + [0.75 / 0.5001], abs=1e-4)

    # DAPO: every group was refilled; the group split across the ranks holds one fresh prompt on both.
    prompts = json.loads(printed["DAPO_PROMPTS"])
    assert len(prompts) == 12
    groups = [prompts[g * 4 : (g + 1) * 4] for g in range(3)]
    assert all(len(set(group)) == 1 for group in groups), groups
    assert len({group[0] for group in groups}) == 3  # three different fresh prompts (drawn without replacement)
