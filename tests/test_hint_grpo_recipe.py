import json
import subprocess
import sys
from pathlib import Path

import pytest
from trl import ModelConfig, TrlParser

from hintgrpo.configs import GRPOScriptArguments
from hintgrpo.data.prompts import PROMPT_STYLES
from hintgrpo.tasks import get_task
from hintgrpo.trainers import HintGRPOConfig
from hintgrpo.training import prompt_dataset, resolve_prompt_style

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "recipes" / "configs").glob("*/hint_grpo.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.parent.name)
def test_every_config_parses(config):
    parser = TrlParser((GRPOScriptArguments, HintGRPOConfig, ModelConfig))
    # bf16 configs are for GPUs, and vLLM is not installed here; everything else is parsed exactly as written.
    script_args, training_args, model_args = parser.parse_args_and_config(
        ["--config", str(config), "--bf16", "false", "--use_vllm", "false"]
    )
    assert training_args.hint_mode in ("prefix", "prompt", "none")
    assert len(training_args.reward_weights) == len(script_args.reward_funcs)
    assert model_args.model_name_or_path


def test_grpo_prompts_a_fine_tuned_model_in_its_recorded_style(tiny_model_dir, real_data_dir, tmp_path):
    import shutil

    tuned = shutil.copytree(tiny_model_dir, tmp_path / "sft")
    config = json.loads((tuned / "config.json").read_text())
    (tuned / "config.json").write_text(json.dumps(config | {"hintgrpo_prompt_style": "brief"}))
    styles = {}
    for name, model, given in (("tuned", tuned, None), ("base", tiny_model_dir, None), ("forced", tuned, "full")):
        args = GRPOScriptArguments(task="emobank", data_dir=str(real_data_dir), limit=2, prompt_style=given)
        resolve_prompt_style(args, str(model))
        styles[name] = args.prompt_style
        system = prompt_dataset(args)[0]["prompt"][0]["content"]
        assert system == PROMPT_STYLES[args.prompt_style](get_task("emobank"))
    assert styles == {"tuned": "brief", "base": "full", "forced": "full"}


def launch(*args, timeout=600):
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "accelerate_configs" / "cpu.yaml"),
        str(ROOT / "recipes" / "hint_grpo.py"),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def recipe_args(model_dir, data_dir, output_dir, max_steps):
    return [
        "--model_name_or_path",
        str(model_dir),
        "--task",
        "emobank",
        "--data_dir",
        str(data_dir),
        "--limit",
        "8",
        "--output_dir",
        str(output_dir),
        "--use_cpu",
        "--per_device_train_batch_size",
        "8",
        "--num_generations",
        "4",
        "--max_completion_length",
        "16",
        "--max_steps",
        str(max_steps),
        "--save_steps",
        "1",
        "--report_to",
        "none",
        "--logging_steps",
        "1",
        "--seed",
        "0",
    ]


def test_recipe_trains_saves_and_resumes(tiny_model_dir, real_data_dir, tmp_path):
    first = launch(*recipe_args(tiny_model_dir, real_data_dir, tmp_path, max_steps=2))
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "checkpoint-2").is_dir() and (tmp_path / "model.safetensors").is_file()
    assert (tmp_path / "README.md").is_file()  # model card
    # A longer relaunch into the same folder continues from checkpoint-2 instead of starting over.
    first_checkpoint_time = (tmp_path / "checkpoint-1" / "trainer_state.json").stat().st_mtime_ns
    second = launch(*recipe_args(tiny_model_dir, real_data_dir, tmp_path, max_steps=3))
    assert second.returncode == 0, second.stderr[-3000:]
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    steps = [log["step"] for log in state["log_history"] if "loss" in log]
    assert state["global_step"] == 3 and steps == [1, 2, 3]
    assert (tmp_path / "checkpoint-3").is_dir()
    assert (tmp_path / "checkpoint-1" / "trainer_state.json").stat().st_mtime_ns == first_checkpoint_time


def test_unknown_reward_fails_before_the_model_loads(tmp_path, real_data_dir):
    result = launch(
        "--model_name_or_path",
        str(tmp_path / "no-such-model"),
        "--task",
        "emobank",
        "--data_dir",
        str(real_data_dir),
        "--output_dir",
        str(tmp_path),
        "--use_cpu",
        "--reward_funcs",
        "format",
        "fluency",
        "--report_to",
        "none",
    )
    assert result.returncode != 0
    assert "unknown reward(s) ['fluency']" in result.stderr
