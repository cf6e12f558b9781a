"""The TRL and transformers internals the Hint-GRPO trainers override, call or read.

Each check names the hook it guards, so a release that renames a private method, reorders its parameters or
moves a field fails here with that name, not deep inside a training step. pyproject.toml pins TRL to the minor
range these checks pass on.
"""

from __future__ import annotations

import inspect

import pytest
from datasets import Dataset
from transformers import Trainer
from trl import GRPOTrainer
from trl.trainer.utils import RepeatSampler

from hintgrpo.data.prompts import add_prompt
from hintgrpo.rewards import get_reward_funcs
from hintgrpo.trainers import HintGRPOConfig, HintGRPOTrainer
from hintgrpo.trainers.hint_grpo import Generation

# hook -> the leading parameters (after self) the trainers pass or receive.
GRPO_HOOKS = {
    "_generate": ["prompts"],  # overridden: hints and refills happen inside it
    "_generate_and_score_completions": ["inputs"],  # overridden: sample weights, off-policy shaping
    "_calculate_rewards": ["inputs", "prompts", "completions", "completion_ids_list"],  # overridden: the ledger
    "_generate_single_turn": ["prompt_ids", "images", "multimodal_fields", "num_generations", "has_tool_images"],
    "_tokenize_prompts": ["prompts"],  # returns (prompt_ids, images, multimodal_fields)
    "_get_per_token_logps_and_entropies": ["model", "input_ids", "attention_mask", "logits_to_keep", "batch_size"],
    "_get_train_sampler": ["dataset"],  # overridden: the hard pool
    "_compute_loss": ["model", "inputs"],  # overridden by the multimodal mixin
    "_log_completion_extra": ["column", "values"],  # swapped while the ledger scores rows
    "_log_metric": ["name", "value"],
}
# hook -> source fragments that show it reads or writes what the trainers rely on.
GRPO_FIELDS = {
    "_log_completion_extra": ["self._pending_extra_logs[column]"],
    "_log_metric": ["self._pending_metrics[name]"],
    "_calculate_rewards": ['reward_kwargs["log_extra"] = self._log_completion_extra', "gather(rewards_per_func)"],
    "_generate_and_score_completions": [
        "= self._generate(prompts)",
        "self._calculate_rewards(inputs, prompts, completions, completion_ids_list)",
        'self._logs["advantages"]',
        "self._pending_extra_logs.clear()",
        "self._pending_metrics.clear()",
    ],
    "_compute_loss": ["if advantages.dim() == 1:", 'inputs.get("old_per_token_logps")'],  # per-token advantages
    "_get_train_sampler": ["RepeatSampler("],
}


@pytest.mark.parametrize(("hook", "parameters"), GRPO_HOOKS.items())
def test_grpo_trainer_hook_signatures(hook, parameters):
    method = getattr(GRPOTrainer, hook, None)
    assert method is not None, f"TRL's GRPOTrainer has no {hook} any more: hintgrpo's trainers override or call it"
    actual = list(inspect.signature(method).parameters)[1:]
    assert actual[: len(parameters)] == parameters, (
        f"GRPOTrainer.{hook} now takes ({', '.join(actual)}); hintgrpo's trainers pass ({', '.join(parameters)})"
    )


@pytest.mark.parametrize(("hook", "fragments"), GRPO_FIELDS.items())
def test_grpo_trainer_hooks_use_the_fields_hintgrpo_relies_on(hook, fragments):
    source = inspect.getsource(getattr(GRPOTrainer, hook))
    for fragment in fragments:
        assert fragment in source, f"GRPOTrainer.{hook} no longer contains {fragment!r}: check hintgrpo's use of it"


def test_repeat_sampler_keeps_the_fields_the_hard_pool_sampler_uses():
    parameters = list(inspect.signature(RepeatSampler.__init__).parameters)[1:]
    expected = ["data_source", "mini_repeat_count", "batch_size", "repeat_count", "shuffle", "seed"]
    assert parameters == expected, f"trl.trainer.utils.RepeatSampler now takes {parameters}"
    sampler = RepeatSampler(range(4), mini_repeat_count=2, batch_size=2, repeat_count=1, seed=0)
    for name in ("num_samples", "batch_size", "repeat_count", "mini_repeat_count"):
        assert hasattr(sampler, name), f"RepeatSampler has no {name} any more"


def test_transformers_trainer_hooks():
    parameters = list(inspect.signature(Trainer.create_scheduler).parameters)[1:]
    assert parameters == ["num_training_steps", "optimizer"], f"Trainer.create_scheduler now takes {parameters}"
    assert "self._created_lr_scheduler = True" in inspect.getsource(Trainer.create_scheduler), (
        "Trainer.create_scheduler no longer sets _created_lr_scheduler: HintGRPOTrainer.create_scheduler does"
    )
    assert "isinstance(cb, ExportableState)" in inspect.getsource(Trainer._save_checkpoint), (
        "Trainer._save_checkpoint no longer saves ExportableState callbacks: the generated count would be lost"
    )


def test_the_generation_hook_returns_what_generation_unpacks(tiny_model_dir, tmp_path):
    rows = [{"id": str(i), "text": f"sample {i}", "label": 0.5, "task": "emobank", "context": "",
             "polarity": "positive"} for i in range(2)]  # fmt: skip
    config = HintGRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_train_batch_size=4, num_generations=2,
        max_completion_length=8, max_steps=1, report_to=[], save_strategy="no", hint_mode="none",
    )  # fmt: skip
    trainer = HintGRPOTrainer(
        model=str(tiny_model_dir), args=config, reward_funcs=get_reward_funcs(["format"]),
        train_dataset=Dataset.from_list(rows).map(add_prompt),
    )  # fmt: skip
    trainer.model.train()
    for name in ("_tokenizer", "eos_token_ids", "reward_weights", "_step", "_metrics", "_logs"):
        assert hasattr(trainer, name), f"GRPOTrainer has no {name} any more: HintGRPOTrainer reads it"
    prompts = [row["prompt"] for row in trainer.train_dataset for _ in range(2)]
    generated = GRPOTrainer._generate(trainer, prompts)
    fields = list(Generation.__dataclass_fields__)
    assert len(generated) == len(fields), f"GRPOTrainer._generate returns {len(generated)} values, not {fields}"
    generation = Generation(*generated)
    assert len(generation.prompt_ids) == len(generation.completion_ids) == len(generation.completions) == 4
    assert all(isinstance(ids, list) and isinstance(ids[0], int) for ids in generation.completion_ids)
    prompt_ids, images, multimodal_fields = trainer._tokenize_prompts(prompts[:1])
    new_ids, logprobs = trainer._generate_single_turn(prompt_ids, images, multimodal_fields, 1)
    assert len(new_ids) == 1, "GRPOTrainer._generate_single_turn no longer returns one completion per prompt"
    assert {"prompt", "completion", "rewards", "advantages", "extra"} <= set(trainer._logs), (
        f"GRPOTrainer._logs holds {sorted(trainer._logs)}"
    )
