import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from hintgrpo.cli import COMMANDS, main

ROOT = Path(__file__).parents[1]


def test_evaluate_command(tiny_model_dir, real_data_dir, tmp_path, capsys):
    main(
        [
            "evaluate",
            "--model",
            str(tiny_model_dir),
            "--task",
            "meld_sentiment",
            "--data_dir",
            str(real_data_dir),
            "--split",
            "test",
            "--output_dir",
            str(tmp_path),
            "--limit",
            "3",
            "--max_new_tokens",
            "4",
        ]
    )
    assert "weighted_f1" in capsys.readouterr().out
    assert json.loads((tmp_path / "metrics.json").read_text())["n"] == 3


def test_evaluate_reads_a_yaml_config(tiny_model_dir, real_data_dir, tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text(
        f"model: {tiny_model_dir}\ntask: emobank\ndata_dir: {real_data_dir}\nsplit: dev\n"
        f"output_dir: {tmp_path / 'out'}\nlimit: 2\nmax_new_tokens: 4\n"
    )
    main(["evaluate", "--config", str(config)])
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["n"] == 2


def test_missing_data_says_what_to_download(tiny_model_dir, tmp_path):
    with pytest.raises(SystemExit, match="error: .*emobank.csv not found. Download .*JULIELab/EmoBank"):
        main(
            [
                "evaluate",
                "--model",
                str(tiny_model_dir),
                "--data_dir",
                str(tmp_path),
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )


def test_no_data_dir_anywhere(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("HINTGRPO_DATA_DIR", raising=False)
    monkeypatch.delenv("DATA_DIR", raising=False)
    with pytest.raises(SystemExit, match="error: no data folder given: pass --data_dir DIR or set HINTGRPO_DATA_DIR"):
        main(["evaluate", "--model", str(tiny_model_dir), "--output_dir", str(tmp_path)])


def test_models_tiny_command(tmp_path, capsys):
    main(["models", "tiny", str(tmp_path / "tiny"), "--arch", "llama"])
    assert (tmp_path / "tiny" / "config.json").is_file()
    assert str(tmp_path / "tiny") in capsys.readouterr().out


@pytest.mark.parametrize(("recipe", "option"), [("sft.py", "--balance_polarities"), ("hint_grpo.py", "--reward_funcs")])
def test_recipe_help(recipe, option):
    result = subprocess.run(
        [sys.executable, f"recipes/{recipe}", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(f"usage: {recipe}") and option in result.stdout


@pytest.mark.parametrize("command", [*COMMANDS, "models prepare", "models tiny"])
def test_command_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command.split(), "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: hintgrpo {command}")


@pytest.mark.parametrize(
    ("argv", "printed"), [([], "hintgrpo evaluate --model"), (["--version"], f"hintgrpo {version('hintgrpo')}")]
)
def test_hintgrpo_command(argv, printed):
    result = subprocess.run(
        [sys.executable, "-m", "hintgrpo.cli", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert printed in result.stdout
