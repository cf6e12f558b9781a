"""Scale-out: DeepSpeed ZeRO-2 on CPU, TRL's vLLM generation (also for hints), and config errors caught at launch."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import torch
from trl import ModelConfig

from hintgrpo.configs import GRPOScriptArguments
from hintgrpo.hints import hint_prefix
from hintgrpo.rewards import REWARDS, get_reward_funcs
from hintgrpo.tasks import TaskSpec, register_task
from hintgrpo.trainers import HintGRPOConfig, HintGRPOTrainer, hint_grpo_config
from hintgrpo.training import prompt_dataset

ROOT = Path(__file__).parents[1]
PAPER_CONFIG = ROOT / "recipes/configs/qwen2.5-7b-instruct/hint_grpo.yaml"


def load_recipe(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_recipe", ROOT / "recipes" / f"{name}.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe


def parse_hint_grpo(*args: str) -> tuple[GRPOScriptArguments, HintGRPOConfig, ModelConfig]:
    return load_recipe("hint_grpo").make_parser().parse_args_and_config(list(args))


@pytest.fixture
def vllm_installed(monkeypatch):
    monkeypatch.setattr(hint_grpo_config, "is_vllm_available", lambda: True)


# --- DeepSpeed ZeRO-2 -------------------------------------------------------------------------------------------------


def test_hint_grpo_trains_under_zero2_on_cpu(tiny_model_dir, real_data_dir, tmp_path):
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "accelerate_configs/zero2_cpu.yaml"]
    command += ["recipes/hint_grpo.py", "--config", "recipes/configs/demo/hint_grpo.yaml"]
    command += ["--model_name_or_path", str(tiny_model_dir), "--data_dir", str(real_data_dir), "--limit", "8"]
    command += ["--output_dir", str(tmp_path), "--max_steps", "2", "--max_completion_length", "16", "--save_steps", "2"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    # A DeepSpeed checkpoint with ZeRO-2 optimizer shards, not a plain Trainer one.
    step_dir = tmp_path / "checkpoint-2" / "global_step2"
    assert (step_dir / "zero_pp_rank_0_mp_rank_00_optim_states.pt").is_file()
    engine_state = torch.load(step_dir / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)
    assert engine_state["ds_config"]["zero_optimization"]["stage"] == 2
    # Hard groups were regenerated through the DeepSpeed-wrapped model.
    logs = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    assert [log["hint/hinted_group_frac"] for log in logs if "loss" in log] == [1.0, 1.0]


# --- vLLM ------------------------------------------------------------------------------------------------------------


def test_use_vllm_without_vllm_fails_at_parse_time(monkeypatch, tmp_path):
    monkeypatch.setattr(hint_grpo_config, "is_vllm_available", lambda: False)
    with pytest.raises(ImportError, match="pip install vllm"):
        parse_hint_grpo("--output_dir", str(tmp_path), "--use_cpu", "true", "--use_vllm", "true")


@pytest.mark.parametrize("mode", ["server", "colocate"])
def test_vllm_options_reach_the_trainer_config(vllm_installed, mode):
    _, training_args, _ = parse_hint_grpo(
        "--config", str(PAPER_CONFIG), "--use_cpu", "true", "--vllm_mode", mode, "--vllm_server_host", "10.0.0.7"
    )
    assert training_args.use_vllm and training_args.vllm_mode == mode
    assert training_args.vllm_server_host == "10.0.0.7"


@dataclass
class VLLMCall:
    prompts: list[list[int]]
    num_generations: int


class RecordingVLLM:
    """Stands in for TRL's `VLLMGeneration`: records each call and answers every prompt row with `completion`."""

    def __init__(self, completion: list[int]):
        self.completion = completion
        self.calls: list[VLLMCall] = []
        self.weight_syncs = 0

    def sync_weights(self):
        self.weight_syncs += 1

    def generate(self, prompts, images, num_generations, profiler=None):
        self.calls.append(VLLMCall([list(p) for p in prompts], num_generations))
        completions = [list(self.completion) for _ in prompts]
        logprobs = [[[-2.0] for _ in c] for c in completions]
        return prompts, completions, logprobs, None


def test_hint_regeneration_goes_through_vllm(tiny_model_dir, real_data_dir, tmp_path):
    group = 4
    dataset = prompt_dataset(GRPOScriptArguments(task="emobank", data_dir=str(real_data_dir), limit=2))
    config = HintGRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        per_device_train_batch_size=2 * group,
        num_generations=group,
        max_completion_length=16,
        max_steps=2,
        report_to=[],
        hint_mode="prefix",
    )
    trainer = HintGRPOTrainer(
        model=str(tiny_model_dir),
        reward_funcs=get_reward_funcs(["format", "polarity"]),
        args=config,
        train_dataset=dataset,
    )
    tokenizer = trainer.processing_class
    # What TRL's __init__ sets up for use_vllm=True, with the engine replaced by the recorder.
    plain_answer = tokenizer.encode("The sentence is plain.", add_special_tokens=False) + [tokenizer.eos_token_id]
    vllm = RecordingVLLM(plain_answer)
    trainer.use_vllm, trainer.vllm_generation, trainer._last_loaded_step = True, vllm, -1
    trainer.model.train()
    trainer.state.max_steps = 2

    inputs = [dict(row) for row in dataset for _ in range(group)]
    batch = trainer._generate_and_score_completions(inputs)

    # The batch, then its hard groups (all: no completion states a polarity) again, with the forced opening.
    first, hinted = vllm.calls
    assert (len(first.prompts), first.num_generations) == (2 * group, group)
    assert (len(hinted.prompts), hinted.num_generations) == (2 * group, 1)
    for prompt, original, row in zip(hinted.prompts, first.prompts, inputs, strict=True):
        assert prompt == original + tokenizer.encode(hint_prefix(row["polarity"]), add_special_tokens=False)
    assert vllm.weight_syncs == 1  # the regeneration samples from the weights synced for this step
    forced = (batch["tool_mask"] == 0) & (batch["completion_mask"] == 1)
    assert forced.any(dim=1).all()
    assert torch.isfinite(batch["importance_sampling_ratio"]).all()  # forced tokens have no vLLM logprob


# --- configuration errors at launch, before any model loads ----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (["--per_device_train_batch_size", "6", "--num_generations", "4"], ValueError, "divisible by num_generations"),
        (["--vllm_mode", "serve"], ValueError, r"vllm_mode='serve' is not one of \['server', 'colocate'\]"),
        (["--hint_prob_start", "2"], ValueError, "must be a probability"),
    ],
)
def test_wrong_training_options_fail_at_parse_time(tmp_path, options, error, message):
    with pytest.raises(error, match=message):
        parse_hint_grpo("--output_dir", str(tmp_path), "--use_cpu", "true", *options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--reward_funcs", "format", "fluency"], r"unknown reward\(s\) \['fluency'\]"),
        (["--reward_weights", "1.0", "0.5"], r"2 reward_weights \[1.0, 0.5\] for 4 reward_funcs"),
        (["--accuracy_weight", "2.0"], r"weights given for \['accuracy'\], which are not in reward_funcs"),
    ],
)
def test_wrong_rewards_fail_before_data_or_model_load(tmp_path, options, message):
    args = parse_hint_grpo("--output_dir", str(tmp_path), "--use_cpu", "true", *options)
    args[0].data_dir = str(tmp_path / "no-data")
    args[2].model_name_or_path = str(tmp_path / "no-model")
    with pytest.raises(ValueError, match=message):
        load_recipe("hint_grpo").main(*args)


def test_scalar_reward_weights_replace_their_entries():
    script_args = GRPOScriptArguments(reward_funcs=["format", "polarity", "regression"], regression_weight=2.0)
    assert script_args.resolve_reward_weights([0.5, 1.0, 1.0]) == [0.5, 1.0, 2.0]
    assert script_args.resolve_reward_weights(None) == [1.0, 1.0, 2.0]
    assert GRPOScriptArguments().resolve_reward_weights(None) is None  # TRL's default: every weight 1


def test_the_scalar_weight_options_are_the_rewards():
    weight_options = [option.name for option in fields(GRPOScriptArguments) if option.name.endswith("_weight")]
    assert sorted(weight_options) == sorted(f"{name}_weight" for name in REWARDS)


def test_every_task_has_a_coarse_result_for_prefix_hints():
    # The prefix hint states the gold coarse result; a task whose labels lack one cannot be registered.
    with pytest.raises(ValueError, match=r"labels without a coarse result: \['b'\]"):
        register_task(
            TaskSpec(
                name="no_coarse",
                kind="classification",
                dataset="none",
                metric_suite="classification",
                instruction="",
                labels=("a", "b"),
                coarse_of_label={"a": "positive"},
            )
        )
