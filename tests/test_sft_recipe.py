"""recipes/sft.py: its configs parse, and `accelerate launch` trains, saves and resumes (on one or two ranks)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hintgrpo.configs import SynthesizeArguments
from hintgrpo.models import precision
from hintgrpo.teachers.synthesize import synthesize

ROOT = Path(__file__).parents[1]
DEMO_CONFIG = ROOT / "recipes/configs/demo/sft.yaml"
PAPER_CONFIG = ROOT / "recipes/configs/qwen2.5-7b-instruct/sft.yaml"


def recipe_parser():
    spec = importlib.util.spec_from_file_location("sft_recipe", ROOT / "recipes/sft.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe.make_parser()


def test_demo_config_parses():
    script_args, training_args, model_args = recipe_parser().parse_args_and_config(["--config", str(DEMO_CONFIG)])
    assert model_args.model_name_or_path == "smollm2-135m-instruct"
    assert script_args.cot_file == "outputs/demo/cot_emobank_train.jsonl" and script_args.task == "emobank"
    assert training_args.use_cpu and not training_args.bf16 and training_args.max_steps > 0


def test_paper_config_parses(monkeypatch):
    # --use_cpu only lets bf16 pass the device check on this GPU-less machine; every YAML key is still checked. The CPU
    # is taken to have native bf16, which the config's bf16 autocast otherwise falls back from.
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    script_args, training_args, model_args = recipe_parser().parse_args_and_config(
        ["--config", str(PAPER_CONFIG), "--use_cpu", "true"]
    )
    assert model_args.model_name_or_path == "Qwen/Qwen2.5-7B-Instruct" and model_args.dtype == "bfloat16"
    assert training_args.bf16 and training_args.activation_checkpointing
    assert script_args.task == "mosei"


def launch_recipe(
    *options: str,
    launcher: tuple[str, ...] = ("--config_file", "accelerate_configs/cpu.yaml"),
    env: dict[str, str] | None = None,
) -> str:
    command = [sys.executable, "-m", "accelerate.commands.launch", *launcher]
    command += ["recipes/sft.py", "--config", str(DEMO_CONFIG), *options]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=os.environ | (env or {})
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture
def cot_file(real_data_dir, tmp_path) -> Path:
    """Lexicon-teacher CoT for 8 EmoBank train sentences."""
    path = tmp_path / "cot.jsonl"
    synthesize(
        SynthesizeArguments(
            task="emobank", data_dir=str(real_data_dir), limit=8, teacher_backend="lexicon", output_file=str(path)
        )
    )
    return path


def test_recipe_trains_saves_and_resumes(tiny_model_dir, cot_file, tmp_path):
    output_dir = tmp_path / "sft"
    common = ["--model_name_or_path", str(tiny_model_dir), "--cot_file", str(cot_file), "--output_dir", str(output_dir)]
    common += ["--per_device_train_batch_size", "2", "--save_steps", "2"]
    wandb = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_PROJECT": "hintgrpo-tests"}

    launch_recipe(*common, "--max_steps", "2", "--report_to", "wandb", env=wandb)
    assert (output_dir / "checkpoint-2").is_dir()
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja", "README.md"):
        assert (output_dir / name).is_file(), name
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 2
    assert json.loads((output_dir / "config.json").read_text())["use_cache"], "the saved model generates with a cache"
    for config in (output_dir / "config.json", output_dir / "checkpoint-2" / "config.json"):
        assert json.loads(config.read_text())["hintgrpo_prompt_style"] == "brief", "evaluation must prompt it so"
    assert list((tmp_path / "wandb").glob("offline-run-*")), "W&B should log offline"

    log = launch_recipe(*common, "--max_steps", "4", "--log_level", "info")
    assert "Resuming training from checkpoint with epoch 0 and global step 2" in log
    assert (output_dir / "checkpoint-4").is_dir() and not (output_dir / "checkpoint-2").exists()
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 4


def test_two_processes_take_the_same_weighted_step_as_one(tiny_model_dir, cot_file, tmp_path):
    """The weights' normaliser is gathered across ranks: 2 ranks x 2 samples update like 1 rank x 4 samples."""
    records = [json.loads(line) for line in cot_file.read_text().splitlines()]
    for record, weight in zip(records, [3.0, 0.5, 0.0, 2.0] * 2, strict=True):
        record["weight"] = weight
    cot_file.write_text("".join(json.dumps(record) + "\n" for record in records))
    # One plain SGD step: the update is -lr times the gradient.
    step = ["--model_name_or_path", str(tiny_model_dir), "--cot_file", str(cot_file), "--max_steps", "1"]
    step += ["--optim", "sgd", "--learning_rate", "1.0", "--lr_scheduler_type", "constant", "--save_strategy", "no"]

    launch_recipe(*step, "--per_device_train_batch_size", "4", "--output_dir", str(tmp_path / "one"))
    launch_recipe(
        *step,
        "--per_device_train_batch_size",
        "2",
        "--output_dir",
        str(tmp_path / "two"),
        launcher=("--config_file", "accelerate_configs/cpu_2proc.yaml", "--main_process_port", "29531"),
        env={"OMP_NUM_THREADS": "1"},
    )
    one = load_file(tmp_path / "one" / "model.safetensors")
    two = load_file(tmp_path / "two" / "model.safetensors")
    for name in one:
        torch.testing.assert_close(two[name], one[name], msg=name)
