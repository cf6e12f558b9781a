"""sweeps/*.yaml: every value a sweep can send reaches the recipe as W&B's agent renders it, and a sampled trial trains.

The commands are rendered by wandb's own agent code (`wandb_agent.Agent._command_run`, with the process launch
replaced by a recorder), so nothing talks to the W&B server.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from transformers.integrations.integration_utils import rewrite_logs
from wandb import wandb_agent

from hintgrpo.configs import SynthesizeArguments
from hintgrpo.teachers.synthesize import synthesize
from hintgrpo.trainers import hint_grpo_config

ROOT = Path(__file__).parents[1]
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))


def load_sweep(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def recipe_parser(program: str):
    spec = importlib.util.spec_from_file_location(Path(program).stem, ROOT / program)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe.make_parser()


def agent_command(sweep: dict, trial: dict, monkeypatch, wandb_dir: Path) -> list[str]:
    """The command W&B's agent runs for a trial with these parameter values."""
    launched = {}

    def record_launch(**kwargs):
        launched.update(kwargs)
        return SimpleNamespace()

    monkeypatch.setattr(wandb_agent, "AgentProcess", record_launch)
    # The agent writes the trial's config under WANDB_DIR and sets these; monkeypatch restores them afterwards.
    for name, value in (("WANDB_DIR", str(wandb_dir)), ("WANDB_RUN_ID", ""), ("WANDB_SWEEP_PARAM_PATH", "")):
        monkeypatch.setenv(name, value)
    agent = wandb_agent.Agent(api=None, queue=None)
    agent._sweep_command = copy.deepcopy(sweep["command"])
    run = {"type": "run", "run_id": "trial", "program": sweep["program"]}
    agent._command_run(run | {"args": {name: {"value": value} for name, value in trial.items()}})
    return launched["command"]


def recipe_args(sweep: dict, command: list[str]) -> list[str]:
    """The arguments after the recipe in an agent command."""
    return command[command.index(sweep["program"]) + 1 :]


def possible_values(spec: dict) -> list:
    """What a sweep can send for one parameter: each listed value, or the bounds of its distribution."""
    if "value" in spec:
        return [spec["value"]]
    if "values" in spec:
        return spec["values"]
    return [spec["min"], spec["max"]]


def sample(spec: dict, rng: random.Random):
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return rng.choice(spec["values"])
    if spec["distribution"] == "uniform":
        return rng.uniform(spec["min"], spec["max"])
    if spec["distribution"] == "log_uniform_values":
        return math.exp(rng.uniform(math.log(spec["min"]), math.log(spec["max"])))
    raise ValueError(f"no sampler for the {spec['distribution']} distribution")


@pytest.fixture
def vllm_installed(monkeypatch):
    """The paper-scale Hint-GRPO config generates with vLLM, which these tests only parse for."""
    monkeypatch.setattr(hint_grpo_config, "is_vllm_available", lambda: True)


def test_sweeps_cover_both_recipes():
    assert sorted(load_sweep(path)["program"] for path in SWEEPS) == ["recipes/hint_grpo.py", "recipes/sft.py"]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda path: path.stem)
def test_every_swept_value_reaches_the_recipe(path, vllm_installed, monkeypatch, tmp_path):
    sweep = load_sweep(path)
    assert sweep["method"] in ("bayes", "random") and sweep["metric"]["goal"] in ("minimize", "maximize")
    assert sweep["command"][1:3] == ["accelerate", "launch"] and sweep["command"][-1] == "${args}"
    parser = recipe_parser(sweep["program"])
    monkeypatch.chdir(ROOT)  # where `wandb agent` runs: the sweep's paths are relative to the checkout
    baseline = {name: possible_values(spec)[0] for name, spec in sweep["parameters"].items()}
    for name, spec in sweep["parameters"].items():
        for value in possible_values(spec):
            command = agent_command(sweep, baseline | {name: value}, monkeypatch, tmp_path)
            # --use_cpu only lets the GPU configs' bf16 pass the device check here; it is not a swept option.
            script_args, training_args, model_args = parser.parse_args_and_config(
                recipe_args(sweep, command) + ["--use_cpu", "true"]
            )
            if name.endswith("_weight"):
                weights = script_args.resolve_reward_weights(training_args.reward_weights)
                parsed = weights[script_args.reward_funcs.index(name.removesuffix("_weight"))]
            else:
                (parsed,) = [
                    getattr(args, name) for args in (script_args, training_args, model_args) if hasattr(args, name)
                ]
            assert parsed == value, (name, command)


def launch_trial(sweep: dict, trial: dict, scale_down: list[str], monkeypatch, tmp_path: Path) -> None:
    """Run the agent's command for `trial` on one CPU process, with `scale_down` appended (the last option wins)."""
    command = agent_command(sweep, trial, monkeypatch, tmp_path)
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "accelerate_configs/cpu.yaml"]
    command = launcher + [sweep["program"]] + recipe_args(sweep, command) + scale_down
    # A W&B service started by an earlier in-process test must not be shared: it holds that test's run ids.
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env |= {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_PROJECT": "hintgrpo-tests"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert list((tmp_path / "wandb").glob("offline-run-*")), "the trial should log to W&B (offline)"


def logged_metrics(output_dir: Path) -> dict:
    """Every metric the trial logged, named as the W&B callback sends it."""
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return {name: value for log in history for name, value in rewrite_logs(log).items()}


def test_a_sampled_hint_grpo_trial_trains(tiny_model_dir, real_data_dir, monkeypatch, tmp_path):
    sweep = load_sweep(ROOT / "sweeps/hint_grpo.yaml")
    rng = random.Random(0)
    trial = {name: sample(spec, rng) for name, spec in sweep["parameters"].items()}
    output_dir = tmp_path / "hint_grpo_trial"
    scale_down = ["--model_name_or_path", str(tiny_model_dir), "--dtype", "float32", "--bf16", "false"]
    scale_down += ["--use_cpu", "true", "--use_vllm", "false", "--activation_checkpointing", "false"]
    scale_down += ["--task", "emobank", "--data_dir", str(real_data_dir), "--limit", "4"]
    scale_down += ["--per_device_train_batch_size", str(trial["num_generations"]), "--gradient_accumulation_steps", "1"]
    scale_down += ["--max_completion_length", "16", "--max_steps", "2", "--eval_steps", "2", "--logging_steps", "1"]
    scale_down += ["--output_dir", str(output_dir)]
    launch_trial(sweep, trial, scale_down, monkeypatch, tmp_path)

    training_args = torch.load(output_dir / "training_args.bin", weights_only=False)
    for name in ("learning_rate", "beta", "num_generations", "hint_mode", "hint_trigger", "hint_reward_threshold"):
        assert getattr(training_args, name) == trial[name], name
    swept_weights = [trial.get(f"{name}_weight", 1.0) for name in ("format", "polarity", "regression", "consistency")]
    assert training_args.reward_weights == swept_weights  # the paper config's polarity weight is 1.0
    metrics = logged_metrics(output_dir)
    assert sweep["metric"]["name"] in metrics  # what the sweep optimises
    assert {f"train/rewards/{name}_reward/mean" for name in ("format", "polarity", "regression")} <= set(metrics)


def test_a_sampled_sft_trial_trains(tiny_model_dir, real_data_dir, monkeypatch, tmp_path):
    sweep = load_sweep(ROOT / "sweeps/sft.yaml")
    rng = random.Random(0)
    trial = {name: sample(spec, rng) for name, spec in sweep["parameters"].items()}
    cot_file = tmp_path / "cot.jsonl"
    synthesize(
        SynthesizeArguments(
            task="emobank", data_dir=str(real_data_dir), limit=8, teacher_backend="lexicon", output_file=str(cot_file)
        )
    )
    output_dir = tmp_path / "sft_trial"
    scale_down = ["--model_name_or_path", str(tiny_model_dir), "--dtype", "float32", "--bf16", "false"]
    scale_down += ["--use_cpu", "true", "--activation_checkpointing", "false"]
    scale_down += ["--cot_file", str(cot_file), "--eval_cot_file", str(cot_file), "--task", "emobank"]
    # 8 records in batches of 4: the 2 steps make one epoch, which ends with the eval the sweep optimises.
    scale_down += ["--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1", "--max_steps", "2"]
    scale_down += ["--logging_steps", "1", "--output_dir", str(output_dir)]
    launch_trial(sweep, trial, scale_down, monkeypatch, tmp_path)

    training_args = torch.load(output_dir / "training_args.bin", weights_only=False)
    assert (training_args.learning_rate, training_args.warmup_steps) == (trial["learning_rate"], trial["warmup_steps"])
    adapter = json.loads((output_dir / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (
        trial["lora_r"],
        trial["lora_alpha"],
        trial["lora_dropout"],
    )
    assert sweep["metric"]["name"] in logged_metrics(output_dir)
