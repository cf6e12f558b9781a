import pytest
import torch
from datasets import Dataset
from PIL import Image
from transformers import set_seed
from trl import GRPOConfig, GRPOTrainer

from hintgrpo.data.prompts import add_prompt
from hintgrpo.hints import (
    group_has_variance,
    hard_groups,
    hint_prefix,
    hint_probability,
    hint_prompt,
    sample_hinted_groups,
)
from hintgrpo.rewards import completion_text, get_reward_funcs
from hintgrpo.trainers.hint_grpo import HintGRPOTrainer
from hintgrpo.trainers.hint_grpo_config import HintGRPOConfig

GROUP = 4


# --- hard-group detection, schedule and hint construction on hand-made values ---------------------------------------


def test_polarity_trigger_flags_groups_with_no_correct_polarity():
    correct = torch.tensor([0, 0, 0, 0, 0, 1, 0, 0], dtype=torch.bool)
    rewards = torch.zeros(8)
    assert hard_groups(correct, rewards, GROUP, "polarity", 0.0).tolist() == [True, False]


def test_reward_trigger_uses_the_best_reward_and_ignores_nan():
    correct = torch.zeros(8, dtype=torch.bool)
    rewards = torch.tensor([0.1, 0.4, float("nan"), 0.2, 0.1, 0.9, 0.0, 0.0])
    assert hard_groups(correct, rewards, GROUP, "reward", 0.5).tolist() == [True, False]


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        ("constant", 7, 0.8),
        ("linear", 0, 0.8),
        ("linear", 5, 0.5),
        ("linear", 10, 0.2),
        ("linear", 20, 0.2),
        ("cosine", 0, 0.8),
        ("cosine", 5, 0.5),
        ("cosine", 10, 0.2),
    ],
)
def test_hint_probability_schedules(schedule, step, expected):
    assert hint_probability(step, 10, schedule, 0.8, 0.2) == pytest.approx(expected)


def test_hinted_groups_are_a_seeded_subset_of_hard_groups():
    hard = torch.tensor([True, False, True, True] * 25)
    first = sample_hinted_groups(hard, 0.5, seed=3, step=4)
    assert torch.equal(first, sample_hinted_groups(hard, 0.5, seed=3, step=4))  # every rank draws the same
    assert not (first & ~hard).any() and 0 < first.sum() < hard.sum()
    assert not sample_hinted_groups(hard, 0.0, seed=3, step=4).any()
    assert torch.equal(sample_hinted_groups(hard, 1.0, seed=3, step=4), hard)


def test_hint_texts():
    assert hint_prefix("negative") == "<think>\n<discrimination>polarity: negative."
    prompt = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    hinted = hint_prompt(prompt, "positive", "Hint: the coarse result is {polarity}.")
    assert hinted[1]["content"] == "U\n\nHint: the coarse result is positive."
    assert prompt[1]["content"] == "U"  # the original conversation is untouched


def test_group_variance():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    assert group_has_variance(rewards, GROUP).tolist() == [False, True]


# --- the trainer on a tiny model -------------------------------------------------------------------------------------


def length_reward(completions, **kwargs):
    """Varies with the sampled text, so groups have non-zero variance even on a random model."""
    return [len(completion_text(c)) / 10 for c in completions]


def samples(n=2, weight=1.0):
    rows = [
        {
            "id": str(i),
            "text": f"sample {i}",
            "label": [-2.0, 1.0][i % 2],
            "task": "emobank",
            "context": "",
            "polarity": ["negative", "positive"][i % 2],
            "weight": weight,
        }
        for i in range(n)
    ]
    return Dataset.from_list(rows).map(add_prompt)


def make_trainer(
    model_dir, tmp_path, trainer_cls=HintGRPOTrainer, config_cls=HintGRPOConfig, rewards=None, dataset=None, **options
):
    defaults = dict(max_completion_length=16, max_steps=2, learning_rate=1e-2, report_to=[], logging_steps=1)
    config = config_cls(
        output_dir=str(tmp_path),
        use_cpu=True,
        per_device_train_batch_size=2 * GROUP,
        num_generations=GROUP,
        save_strategy="no",
        seed=0,
        **(defaults | options),
    )
    set_seed(0)
    return trainer_cls(
        model=str(model_dir),
        args=config,
        train_dataset=dataset or samples(),
        reward_funcs=rewards or [length_reward, *get_reward_funcs(["polarity"])],
    )


def losses_and_weights(trainer):
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    return losses, [p.detach().clone() for p in trainer.model.parameters()]


def test_hint_mode_none_is_exactly_trl_grpo(tiny_model_dir, tmp_path):
    trl_losses, trl_params = losses_and_weights(
        make_trainer(tiny_model_dir, tmp_path / "trl", trainer_cls=GRPOTrainer, config_cls=GRPOConfig)
    )
    hint_losses, hint_params = losses_and_weights(make_trainer(tiny_model_dir, tmp_path / "hint", hint_mode="none"))
    assert any(loss != 0.0 for loss in trl_losses)
    assert hint_losses == trl_losses
    assert all(torch.equal(a, b) for a, b in zip(trl_params, hint_params, strict=True))


def batch_inputs(trainer, dataset):
    """One generation batch as TRL builds it: every sample repeated num_generations times."""
    return [dict(row) for row in dataset for _ in range(trainer.num_generations)]


@pytest.mark.parametrize("mode", ["prefix", "prompt"])
def test_hints_fire_on_hard_groups_and_are_logged(tiny_model_dir, tmp_path, mode):
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode=mode)
    trainer.train()
    log = trainer.state.log_history[0]
    # A random model never states a polarity, so every group is hard and hinted.
    assert log["hint/hard_group_frac"] == 1.0 and log["hint/hinted_group_frac"] == 1.0
    assert {"hint/reward_before", "hint/reward_after", "hint/nonzero_std_after_frac"} <= set(log)
    completions = [completion_text(c) for c in trainer._logs["completion"]]
    if mode == "prefix":
        # The forced opening states the gold polarity, so the polarity reward becomes 1 everywhere.
        assert all(c.startswith("<think>\n<discrimination>polarity: ") for c in completions)
        assert log["rewards/polarity_reward/mean"] == 1.0


def count_generated_rows(trainer) -> list[int]:
    """Ready the trainer for a direct generation call; the returned list fills with each generate call's row count."""
    trainer.model.train()
    trainer.state.max_steps = 2
    generated_rows = []
    original = trainer._generate_single_turn

    def counting(prompt_ids, *args, **kwargs):
        generated_rows.append(len(prompt_ids))
        return original(prompt_ids, *args, **kwargs)

    trainer._generate_single_turn = counting
    return generated_rows


def test_only_hard_groups_are_regenerated(tiny_model_dir, tmp_path):
    def easy_reward(completions, text, **kwargs):  # sample 1's group always scores 1: never hard
        return [1.0 if t == "sample 1" else 0.0 for t in text]

    trainer = make_trainer(
        tiny_model_dir, tmp_path, rewards=[easy_reward], hint_trigger="reward", hint_reward_threshold=0.5
    )
    generated_rows = count_generated_rows(trainer)
    trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    assert generated_rows == [2 * GROUP, GROUP]  # the batch, then only the hard group of sample 0


def test_forced_prefix_tokens_carry_no_gradient(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode="prefix")
    trainer.model.train()
    trainer.state.max_steps = 2
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which this test bypasses
    batch = trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    forced = (batch["tool_mask"] == 0) & (batch["completion_mask"] == 1)
    generated = (batch["tool_mask"] == 1) & (batch["completion_mask"] == 1)
    assert forced.any() and generated.any()
    batch["advantages"] = torch.linspace(-1.0, 1.0, batch["advantages"].numel())  # every row pushes the loss

    captured = {}
    original = trainer._get_per_token_logps_and_entropies

    def capture(*args, **kwargs):
        logps, entropies, aux = original(*args, **kwargs)
        logps.retain_grad()
        captured["logps"] = logps
        return logps, entropies, aux

    trainer._get_per_token_logps_and_entropies = capture

    def grad_of(inputs):
        trainer.model.zero_grad()
        trainer.compute_loss(trainer.model, inputs).backward()
        return captured["logps"].grad

    grad = grad_of(batch)
    assert torch.all(grad[forced] == 0) and grad[generated].abs().sum() > 0
    # Control: unmasked, the same tokens do get gradient.
    unmasked = grad_of({k: v for k, v in batch.items() if k != "tool_mask"})
    assert unmasked[forced].abs().sum() > 0


def test_prefix_hinted_completions_fit_max_completion_length(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode="prefix", max_completion_length=24)
    trainer.model.train()
    trainer.state.max_steps = 2
    trainer.current_gradient_accumulation_steps = 1
    batch = trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    lengths = batch["completion_mask"].sum(dim=1)
    # A random model rarely stops early: hinted rows run to the budget, forced prefix included, and no further.
    assert (batch["tool_mask"] == 0).any()
    assert lengths.max().item() == 24


def test_sample_weights_scale_advantages(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode="none")
    trainer.model.train()
    set_seed(1)
    plain = trainer._generate_and_score_completions(batch_inputs(trainer, samples()))["advantages"]
    weighted_inputs = batch_inputs(trainer, samples())
    for i, row in enumerate(weighted_inputs):
        row["weight"] = 0.5 * (i + 1)
    set_seed(1)
    weighted = trainer._generate_and_score_completions(weighted_inputs)["advantages"]
    assert plain.abs().sum() > 0
    assert torch.allclose(weighted, plain * torch.tensor([0.5 * (i + 1) for i in range(len(weighted_inputs))]))


def test_training_with_hints_changes_the_weights(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode="prefix")
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


@pytest.mark.parametrize(("mode", "steps_run", "totals"), [("none", 3, [8, 16, 24]), ("prefix", 2, [16, 32])])
def test_completion_budget_counts_hinted_completions_and_stops_training(
    tiny_model_dir, tmp_path, mode, steps_run, totals
):
    # 8 rows per step; on a random model every group is hard, so "prefix" generates every row twice.
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode=mode, max_steps=10, completion_budget=20)
    trainer.train()
    assert trainer.state.global_step == steps_run
    logged = [log["completions/generated_total"] for log in trainer.state.log_history if "loss" in log]
    assert logged == totals


def test_config_rejects_unknown_options(tmp_path):
    with pytest.raises(ValueError, match=r"generation_batch_size \(6\) must be divisible by num_generations \(4\)"):
        HintGRPOConfig(output_dir=str(tmp_path), use_cpu=True, per_device_train_batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="hint_mode='hint' is not one of"):
        HintGRPOConfig(output_dir=str(tmp_path), use_cpu=True, hint_mode="hint")
    with pytest.raises(ValueError, match="must be a probability"):
        HintGRPOConfig(output_dir=str(tmp_path), use_cpu=True, hint_prob_end=1.5)


def test_dynamic_sampling_with_images_is_left_to_the_multimodal_trainer(tiny_model_dir, tmp_path):
    dataset = samples().map(lambda row: {"image": Image.new("RGB", (8, 8))})
    with pytest.raises(ValueError, match="dynamic_sampling with an image column needs MultimodalHintGRPOTrainer"):
        make_trainer(tiny_model_dir, tmp_path, dataset=dataset, hint_mode="none", dynamic_sampling=True)
    assert make_trainer(tiny_model_dir, tmp_path, dataset=dataset, hint_mode="prefix").args.hint_mode == "prefix"


def test_a_prefix_longer_than_the_completion_budget_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match=r"the hint prefix takes up to \d+ tokens of the completion"):
        make_trainer(tiny_model_dir, tmp_path, hint_mode="prefix", max_completion_length=8)


def test_dynamic_sampling_refills_zero_variance_groups_with_fresh_prompts(tiny_model_dir, tmp_path):
    def sample_index_reward(completions, text, **kwargs):  # all-equal within a group: every group is zero-variance
        return [float(t.split()[-1]) for t in text]

    dataset = samples(n=6)
    trainer = make_trainer(
        tiny_model_dir,
        tmp_path,
        rewards=[sample_index_reward],
        dataset=dataset,
        hint_mode="none",
        dynamic_sampling=True,
        max_refill_rounds=2,
    )
    generated_rows = count_generated_rows(trainer)
    inputs = batch_inputs(trainer, dataset.select(range(2)))
    trainer._generate_and_score_completions(inputs)
    assert generated_rows == [2 * GROUP, 2 * GROUP, 2 * GROUP]  # the batch, then two refill rounds of both groups
    # Rows were swapped for fresh prompts, one prompt per group of num_generations rows.
    texts = [row["text"] for row in inputs]
    assert all(len(set(texts[g * GROUP : (g + 1) * GROUP])) == 1 for g in range(2))
    assert trainer._metrics["train"]["dapo/refilled_groups"] == [4.0]
    assert trainer._metrics["train"]["dapo/zero_std_group_frac_after"] == [1.0]


def test_wandb_offline_gets_the_hinted_completions_table(tiny_model_dir, tmp_path, monkeypatch):
    import json

    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    sent_to_wandb = {}
    log = wandb.sdk.wandb_run.Run.log

    def record(run, data, *args, **kwargs):
        sent_to_wandb.update(data)
        return log(run, data, *args, **kwargs)

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", record)
    trainer = make_trainer(
        tiny_model_dir, tmp_path / "run", hint_mode="prefix", report_to=["wandb"], log_completions=True, max_steps=1
    )
    trainer.train()
    wandb.finish()
    (table_file, *_) = sorted(tmp_path.glob("wandb/offline-run-*/files/media/table/completions_*.table.json"))
    table = json.loads(table_file.read_text())
    assert {"completion", "polarity_reward", "advantage"} <= set(table["columns"])
    completion = table["data"][0][table["columns"].index("completion")]
    assert completion_text(completion).startswith("<think>\n<discrimination>polarity: ")
    hint_metrics = [f"train/hint/{name}" for name in ("hard_group_frac", "reward_before", "reward_after")]
    reward_components = [f"train/rewards/{name}_reward/mean" for name in ("length", "polarity")]
    assert set(hint_metrics + reward_components) <= set(sent_to_wandb)
