import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_two_processes_with_hard_groups_on_one_rank_only(tiny_model_dir, tmp_path):
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
        command, capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("HINT_LOGS ")]
    logs = json.loads(line.removeprefix("HINT_LOGS "))
    assert len(logs) == 2
    for log in logs:
        # Half the groups (the one on rank 1) are hard and hinted; the hint is logged from gathered rewards.
        assert log["hint/hard_group_frac"] == 0.5 and log["hint/hinted_group_frac"] == 0.5
        assert log["hint/reward_before"] == 0.0
