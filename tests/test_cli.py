import json

import pytest

from hintgrpo.cli import main


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


def test_unknown_command_prints_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train"])
    assert exit_info.value.code == 2
    assert "hintgrpo evaluate" in capsys.readouterr().out
