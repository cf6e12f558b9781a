import pytest
import torch
from datasets import Dataset
from PIL import Image
from transformers import set_seed
from trl import GRPOConfig, GRPOTrainer

from hintgrpo.data.prompts import add_prompt
from hintgrpo.hints import (
    first_groups,
    group_has_variance,
    groups_within_budget,
    hard_groups,
    hint_prefix,
    hint_probability,
    hint_prompt,
    hint_reveals_label,
    hinted_rows,
    policy_shaping_weights,
    sample_hinted_groups,
)
from hintgrpo.rewards import completion_text, get_reward_funcs
from hintgrpo.tasks import get_task
from hintgrpo.trainers import hint_grpo
from hintgrpo.trainers.hint_grpo import Generation, HintGRPOTrainer
from hintgrpo.trainers.hint_grpo_config import HintGRPOConfig
from hintgrpo.trainers.reward_ledger import RewardLedger

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
    ("schedule", "progress", "expected"),
    [
        ("constant", 0.7, 0.8),
        ("linear", 0.0, 0.8),
        ("linear", 0.5, 0.5),
        ("linear", 1.0, 0.2),
        ("linear", 2.0, 0.2),
        ("cosine", 0.0, 0.8),
        ("cosine", 0.5, 0.5),
        ("cosine", 1.0, 0.2),
    ],
)
def test_hint_probability_schedules(schedule, progress, expected):
    assert hint_probability(progress, schedule, 0.8, 0.2) == pytest.approx(expected)


def test_hinted_groups_are_a_seeded_subset_of_hard_groups():
    hard = torch.tensor([True, False, True, True] * 25)
    first = sample_hinted_groups(hard, 0.5, seed=3, batch=4)
    assert torch.equal(first, sample_hinted_groups(hard, 0.5, seed=3, batch=4))  # every rank draws the same
    assert not (first & ~hard).any() and 0 < first.sum() < hard.sum()
    assert not sample_hinted_groups(hard, 0.0, seed=3, batch=4).any()
    assert torch.equal(sample_hinted_groups(hard, 1.0, seed=3, batch=4), hard)


def test_hint_texts():
    assert hint_prefix("negative") == "<think>\n<discrimination>polarity: negative."
    prompt = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    hinted = hint_prompt(prompt, "positive", "Hint: the coarse result is {polarity}.")
    assert hinted[1]["content"] == "U\n\nHint: the coarse result is positive."
    assert prompt[1]["content"] == "U"  # the original conversation is untouched


def test_group_variance():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    assert group_has_variance(rewards, GROUP).tolist() == [False, True]


@pytest.mark.parametrize(
    ("wanted", "remaining", "expected"),
    [
        (2, float("inf"), 2),  # no budget
        (2, 24, 2),  # 16 left: two more batches
        (2, 12, 1),  # 2 groups would leave 4, less than a batch: 1 leaves exactly a batch
        (3, 12, 3),  # 3 groups spend the budget
        (1, 6, 1),  # the last batch: fill what fits
        (3, 2, 0),  # not even one group fits
    ],
)
def test_groups_within_budget_keep_the_budget_reachable_exactly(wanted, remaining, expected):
    assert groups_within_budget(wanted, rows_per_group=4, remaining=remaining, batch_rows=8) == expected


def test_policy_shaping_weights_by_hand():
    # γ·π / (π + γ)² with γ = 0.1: 1/4 at π = γ, and the same 0.1 / 1.21 at π = 1 and at π = γ² / 1 = 0.01.
    weights = policy_shaping_weights(torch.tensor([0.1, 1.0, 0.01]).log(), gamma=0.1)
    assert weights.tolist() == pytest.approx([0.25, 0.1 / 1.21, 0.1 / 1.21])


def test_first_groups_keeps_the_first_flags():
    flags = torch.tensor([False, True, True, False, True])
    assert first_groups(flags, 2).tolist() == [False, True, True, False, False]


def test_hinted_rows_replace_whole_groups_or_mix_in_the_last_rows():
    hinted = torch.tensor([True, False, True])
    assert hinted_rows(hinted, GROUP, "replace", 1).tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]
    assert hinted_rows(hinted, GROUP, "mix", 1).tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert hinted_rows(hinted, GROUP, "mix", 3).tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    ("task", "reveals"),
    [("meld_sentiment", True), ("mustard", True), ("meld_emotion", False), ("sst5", False), ("emobank", False)],
)
def test_a_hint_reveals_the_label_where_the_coarse_result_determines_it(task, reveals):
    assert hint_reveals_label(get_task(task)) is reveals


# --- the trainer on a tiny model -------------------------------------------------------------------------------------


def length_reward(completions, **kwargs):
    """Varies with the sampled text, so groups have non-zero variance even on a random model."""
    return [len(completion_text(c)) / 10 for c in completions]


def samples(n=2, weight=1.0, task="emobank", labels=(-2.0, 1.0)):
    rows = [
        {
            "id": str(i),
            "text": f"sample {i}",
            "label": labels[i % 2],
            "task": task,
            "context": "",
            "polarity": ["negative", "positive"][i % 2],
            "weight": weight,
        }
        for i in range(n)
    ]
    return Dataset.from_list(rows).map(add_prompt)


def make_trainer(
    model_dir,
    tmp_path,
    trainer_cls=HintGRPOTrainer,
    config_cls=HintGRPOConfig,
    rewards=None,
    dataset=None,
    eval_dataset=None,
    **options,
):
    # bf16 off for both trainer kinds: TRL's GRPOConfig reads an unset bf16 as on, HintGRPOConfig as on where native.
    defaults = dict(max_completion_length=16, max_steps=2, learning_rate=1e-2, report_to=[], logging_steps=1)
    defaults |= dict(bf16=False, save_strategy="no", per_device_train_batch_size=2 * GROUP)
    config = config_cls(
        output_dir=str(tmp_path),
        use_cpu=True,
        num_generations=GROUP,
        seed=0,
        **(defaults | options),
    )
    set_seed(0)
    return trainer_cls(
        model=str(model_dir),
        args=config,
        train_dataset=dataset or samples(),
        eval_dataset=eval_dataset,
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

    grad = loss_grad(trainer, batch)
    assert torch.all(grad[forced] == 0) and grad[generated].abs().sum() > 0
    # Control: unmasked, the same tokens do get gradient.
    unmasked = loss_grad(trainer, {k: v for k, v in batch.items() if k != "tool_mask"})
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
    # The completions table shows the advantages that are trained: the weighted ones.
    assert list(trainer._logs["advantages"])[-len(weighted) :] == pytest.approx(weighted.tolist())


def test_training_with_hints_trains_on_the_hinted_rows(tiny_model_dir, tmp_path):
    # Same seed, same first generation: only the hinted regeneration can make the two runs' weights differ.
    _, plain = losses_and_weights(make_trainer(tiny_model_dir, tmp_path / "plain", hint_mode="none"))
    hinted_trainer = make_trainer(tiny_model_dir, tmp_path / "hinted", hint_mode="prefix")
    _, hinted = losses_and_weights(hinted_trainer)
    assert hinted_trainer.state.log_history[0]["hint/hinted_group_frac"] == 1.0
    assert any(not torch.equal(a, b) for a, b in zip(plain, hinted, strict=True))


@pytest.mark.parametrize(("mode", "totals"), [("none", [8, 16]), ("prefix", [12, 20])])
def test_a_run_never_generates_past_its_completion_budget(tiny_model_dir, tmp_path, mode, totals):
    # 8 rows per step, and every group of a random model is hard. "none": a third batch would pass 20, so the run
    # stops at 16. "prefix": step 1 hints one group of two, which leaves exactly one batch: the run ends on 20.
    trainer = make_trainer(
        tiny_model_dir, tmp_path, hint_mode=mode, max_steps=10, completion_budget=20, lr_scheduler_type="linear"
    )
    trainer.train()
    logged = [log for log in trainer.state.log_history if "loss" in log]
    assert [log["completions/generated_total"] for log in logged] == totals
    # The LR schedule runs over the budget: linear from 1e-2 to 0 at 20 completions, not at max_steps. A step
    # logs the rate it trained at, set by the completions generated before it.
    expected = [1e-2 * (1 - before / 20) for before in [0, *totals[:-1]]]
    assert [log["learning_rate"] for log in logged] == pytest.approx(expected)


def test_a_resumed_run_counts_on_from_the_checkpoint(tiny_model_dir, tmp_path):
    # Logged every 2 steps, saved every step: checkpoint-1's log holds no count, its trainer state does.
    options = dict(hint_mode="none", max_steps=2, save_strategy="steps", save_steps=1, logging_steps=2)
    make_trainer(tiny_model_dir, tmp_path / "first", **options).train()
    resumed = make_trainer(tiny_model_dir, tmp_path / "resumed", **options)
    resumed.train(resume_from_checkpoint=str(tmp_path / "first" / "checkpoint-1"))
    assert resumed.generated_completions == 2 * 2 * GROUP


def test_a_run_stopped_by_its_completion_budget_evaluates_its_final_model(tiny_model_dir, tmp_path):
    # Steps of 8 completions: periodic evaluation at step 2, the budget of 24 ends the run at step 3.
    trainer = make_trainer(
        tiny_model_dir,
        tmp_path,
        hint_mode="none",
        max_steps=10,
        completion_budget=24,
        eval_dataset=samples(),
        eval_strategy="steps",
        eval_steps=2,
    )
    trainer.train()
    assert [log["step"] for log in trainer.state.log_history if "eval_runtime" in log] == [2, 3]


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
    # TRL builds the loss's image inputs from the unhinted prompt: right only when the loss sees that prompt.
    with pytest.raises(ValueError, match="hint_mode='prompt' with an image column"):
        make_trainer(tiny_model_dir, tmp_path, dataset=dataset, hint_mode="prompt")
    make_trainer(tiny_model_dir, tmp_path, dataset=dataset, hint_mode="prompt", hint_loss_context="original")


def test_hints_that_state_the_label_are_refused_unless_allowed(tiny_model_dir, tmp_path):
    dataset = samples(task="meld_sentiment", labels=("negative", "positive"))
    with pytest.raises(ValueError, match=r"on \['meld_sentiment'\] the coarse result a hint states is the label"):
        make_trainer(tiny_model_dir, tmp_path, dataset=dataset)
    assert make_trainer(tiny_model_dir, tmp_path, dataset=dataset, allow_label_hints=True).args.allow_label_hints
    make_trainer(tiny_model_dir, tmp_path, dataset=dataset, hint_mode="none")


def test_hints_need_a_task_column(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="needs a 'task' column"):
        make_trainer(tiny_model_dir, tmp_path, dataset=samples().remove_columns("task"))


def test_prompt_hints_mixed_into_a_group_trained_on_the_hinted_prompt_are_refused(tmp_path):
    with pytest.raises(ValueError, match="one group on two prompts"):
        HintGRPOConfig(output_dir=str(tmp_path), hint_mode="prompt", hint_group="mix", bf16=False)


def test_hints_need_a_polarity_column(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="hint_mode='prefix' needs a 'polarity' column"):
        make_trainer(tiny_model_dir, tmp_path, dataset=samples().remove_columns("polarity"))


def test_a_prefix_longer_than_the_completion_budget_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match=r"the hint prefix takes up to \d+ tokens of the completion"):
        make_trainer(tiny_model_dir, tmp_path, hint_mode="prefix", max_completion_length=8)


class RowCountingReward:
    """A reward that counts the rows it is asked to score and logs what it gave them through TRL's hooks."""

    __name__ = "row_counting_reward"

    def __init__(self, score):
        self.score, self.rows_scored = score, 0

    def __call__(self, completions, log_metric, log_extra, **columns):
        self.rows_scored += len(completions)
        rewards = self.score(completions, **columns)
        log_metric("given_mean", sum(rewards) / len(rewards))
        log_extra("given", rewards)
        return rewards


def test_each_completion_is_scored_once_when_hard_groups_are_regenerated(tiny_model_dir, tmp_path):
    reward = RowCountingReward(sample_one_is_easy)
    trainer = make_trainer(tiny_model_dir, tmp_path, rewards=[reward], hint_trigger="reward", hint_reward_threshold=0.5)
    generated_rows = count_generated_rows(trainer)
    trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    assert generated_rows == [2 * GROUP, GROUP]
    assert reward.rows_scored == 3 * GROUP  # the 8 first completions and the 4 hinted ones, none twice


def test_each_completion_is_scored_once_under_dynamic_sampling(tiny_model_dir, tmp_path):
    def sample_index_reward(completions, text, **kwargs):  # every group is zero-variance
        return [float(t.split()[-1]) for t in text]

    reward = RowCountingReward(sample_index_reward)
    dataset = samples(n=6).remove_columns("polarity")
    trainer = make_trainer(
        tiny_model_dir, tmp_path, rewards=[reward], dataset=dataset, hint_mode="none", dynamic_sampling=True
    )
    generated_rows = count_generated_rows(trainer)
    trainer._generate_and_score_completions(batch_inputs(trainer, dataset.select(range(2))))
    assert generated_rows == [2 * GROUP] * 3
    assert reward.rows_scored == 3 * 2 * GROUP


@pytest.mark.parametrize(("group", "trained_rewards"), [("replace", [1.0] * 8), ("mix", [0, 0, 0, 1, 0, 0, 0, 1])])
def test_what_rewards_log_describes_the_trained_rows(tiny_model_dir, tmp_path, group, trained_rewards):
    # A random model never states a polarity: every group is hard, and the forced opening then states the gold one.
    reward = RowCountingReward(get_reward_funcs(["polarity"])[0])
    trainer = make_trainer(tiny_model_dir, tmp_path, rewards=[reward], hint_group=group, hint_rows=1)
    count_generated_rows(trainer)
    trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    assert list(trainer._logs["extra"]["given"]) == trained_rewards
    assert trainer._metrics["train"]["given_mean"] == [pytest.approx(sum(trained_rewards) / len(trained_rewards))]


def test_dynamic_sampling_refills_zero_variance_groups_with_fresh_prompts(tiny_model_dir, tmp_path):
    def sample_index_reward(completions, text, **kwargs):  # all-equal within a group: every group is zero-variance
        return [float(t.split()[-1]) for t in text]

    dataset = samples(n=6).remove_columns("polarity")  # refills need no polarity
    trainer = make_trainer(
        tiny_model_dir,
        tmp_path,
        rewards=[sample_index_reward],
        dataset=dataset,
        hint_mode="none",
        dynamic_sampling=True,
        max_refill_rounds=2,
    )
    calls = record_generations(trainer)
    inputs = batch_inputs(trainer, dataset.select(range(2)))
    batch = trainer._generate_and_score_completions(inputs)
    assert [len(prompts) for prompts, _ in calls] == [2 * GROUP] * 3  # the batch, then two refill rounds of both
    # Rows were swapped for fresh prompts, one prompt per group of num_generations rows.
    texts = [row["text"] for row in inputs]
    assert all(len(set(texts[g * GROUP : (g + 1) * GROUP])) == 1 for g in range(2))
    # Each refill was generated from, and is trained after, the prompt of the row it now holds.
    for (prompts, _), source in zip(calls[1:], ("first refill", "second refill"), strict=True):
        assert all(trainer._tokenizer.decode(ids).count("sample ") == 1 for ids in prompts), source
    trained_prompts = [trainer._tokenizer.decode(ids) for ids in rows_of(batch["prompt_ids"], batch["prompt_mask"])]
    assert all(text in prompt for text, prompt in zip(texts, trained_prompts, strict=True))
    assert trained_prompts == [trainer._tokenizer.decode(ids) for ids in calls[-1][0]]
    assert trainer._metrics["train"]["dapo/refilled_groups"] == [4.0]
    assert trainer._metrics["train"]["dapo/zero_std_group_frac_after"] == [1.0]


def test_dynamic_sampling_draws_fresh_prompts_without_replacement(tiny_model_dir, tmp_path):
    def constant_reward(completions, **kwargs):  # every group stays zero-variance
        return [1.0] * len(completions)

    dataset = samples(n=8).remove_columns("polarity")
    trainer = make_trainer(
        tiny_model_dir, tmp_path, rewards=[constant_reward], dataset=dataset, hint_mode="none", dynamic_sampling=True,
        max_refill_rounds=3,
    )  # fmt: skip
    record_generations(trainer)
    refills, drawn = trainer._refill_rows(), []
    draw = refills.next
    refills.next = lambda: drawn.append(draw()) or drawn[-1]
    for _ in range(2):  # 2 batches x 3 rounds x 2 groups = 12 draws from 8 rows
        trainer._generate_and_score_completions(batch_inputs(trainer, dataset.select(range(2))))
    assert len(drawn) == 12
    assert sorted(drawn[:8]) == list(range(8))  # every row once before any row twice


def test_groups_still_dead_after_the_refills_leave_the_loss(tiny_model_dir, tmp_path):
    def varies_on_sample_one(completions, text, **kwargs):  # sample 1's group has variance, every other none
        pairs = zip(completions, text, strict=True)
        return [len(completion_text(c)) / 10 if t == "sample 1" else 0.0 for c, t in pairs]

    dataset = samples(n=6).remove_columns("polarity")
    trainer = make_trainer(
        tiny_model_dir, tmp_path, rewards=[varies_on_sample_one], dataset=dataset, hint_mode="none",
        dynamic_sampling=True, max_refill_rounds=1,
    )  # fmt: skip
    record_generations(trainer)
    inputs = batch_inputs(trainer, dataset.select(range(2)))
    batch = trainer._generate_and_score_completions(inputs)
    live = torch.tensor([row["text"] == "sample 1" for row in inputs])
    assert live.any() and not live.all()
    loss_mask = batch["completion_mask"] * batch["tool_mask"]
    assert torch.all(loss_mask[~live] == 0) and torch.equal(loss_mask[live], batch["completion_mask"][live])
    assert batch["num_items_in_batch"].item() == batch["completion_mask"][live].sum().item()


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


# --- mixed groups, loss context, schedule, metrics ---------------------------------------------------------------


def record_generations(trainer) -> list[tuple[list, list]]:
    """Ready the trainer for a direct batch call; the list fills with each generate call's (prompt ids, completions)."""
    trainer.model.train()
    trainer.state.max_steps = 2
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which these tests bypass
    calls = []
    original = trainer._generate_single_turn

    def recording(prompt_ids, *args, **kwargs):
        completion_ids, logprobs = original(prompt_ids, *args, **kwargs)
        calls.append(([list(ids) for ids in prompt_ids], [list(ids) for ids in completion_ids]))
        return completion_ids, logprobs

    trainer._generate_single_turn = recording
    return calls


def rows_of(padded: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    return [ids[m.bool()].tolist() for ids, m in zip(padded, mask, strict=True)]


def sample_one_is_easy(completions, text, **kwargs):
    return [1.0 if t == "sample 1" else 0.0 for t in text]


@pytest.mark.parametrize(("group", "replaced"), [("replace", [0, 1, 2, 3]), ("mix", [3])])
def test_hinted_rows_and_their_advantages(tiny_model_dir, tmp_path, group, replaced):
    # Sample 0's group is hard (its best total is under 0.5), sample 1's is not; the length term gives variance.
    trainer = make_trainer(
        tiny_model_dir,
        tmp_path,
        rewards=[sample_one_is_easy, *get_reward_funcs(["polarity"]), length_reward],
        reward_weights=[1.0, 1.0, 0.01],
        hint_trigger="reward",
        hint_reward_threshold=0.5,
        hint_group=group,
        hint_rows=1,
    )
    calls = record_generations(trainer)
    batch = trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    (_, first), (regenerated_prompts, _) = calls
    assert len(regenerated_prompts) == len(replaced)
    trained = rows_of(batch["completion_ids"], batch["completion_mask"])
    prefix = trainer._prefix_ids("negative")
    for row in range(2 * GROUP):
        if row in replaced:  # the hint opening, then a fresh sample
            assert trained[row][: len(prefix)] == prefix
        else:  # the first generation, kept
            assert trained[row] == first[row]

    # TRL's advantages over the groups as they stand, by hand from the trained token ids: (r - mean) / (std + 1e-4).
    completions = [trainer._tokenizer.decode(ids, skip_special_tokens=True) for ids in trained]
    polarity = [float(c.startswith(hint_prefix("negative"))) for c in completions]
    easy = [0.0] * GROUP + [1.0] * GROUP
    total = torch.tensor([e + p + 0.01 * len(c) / 10 for e, p, c in zip(easy, polarity, completions, strict=True)])
    grouped = total.view(-1, GROUP)
    expected = (grouped - grouped.mean(dim=1, keepdim=True)) / (grouped.std(dim=1, keepdim=True) + 1e-4)
    assert torch.allclose(batch["advantages"], expected.flatten(), atol=1e-4)
    if group == "mix":  # the failed rows keep their negative signal beside the hinted one
        assert batch["advantages"][3] > 0 and torch.all(batch["advantages"][:3] < 0)


@pytest.mark.parametrize("context", ["hinted", "original"])
def test_prompt_mode_generates_with_the_hint_and_trains_on_the_chosen_prompt(tiny_model_dir, tmp_path, context):
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode="prompt", hint_loss_context=context)
    calls = record_generations(trainer)
    batch = trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    (first_prompts, _), (regenerated_prompts, regenerated) = calls
    hint = "Hint: the coarse result is"
    decode = trainer.processing_class.decode
    assert all(hint in decode(ids) for ids in regenerated_prompts)
    assert not any(hint in decode(ids) for ids in first_prompts)
    trained_prompts = rows_of(batch["prompt_ids"], batch["prompt_mask"])
    assert trained_prompts == (regenerated_prompts if context == "hinted" else first_prompts)
    assert rows_of(batch["completion_ids"], batch["completion_mask"]) == regenerated


def loss_grad(trainer, batch, spread_advantages=True) -> torch.Tensor:
    """d loss / d per-token log-probability; with `spread_advantages`, every row's advantage is made non-zero."""
    if spread_advantages:
        batch["advantages"] = torch.linspace(-1.0, 1.0, batch["advantages"].numel())
    captured = {}
    original = trainer._get_per_token_logps_and_entropies

    def capture(*args, **kwargs):
        logps, entropies, aux = original(*args, **kwargs)
        logps.retain_grad()
        captured["logps"] = logps
        return logps, entropies, aux

    trainer._get_per_token_logps_and_entropies = capture
    try:
        trainer.model.zero_grad()
        trainer.compute_loss(trainer.model, batch).backward()
    finally:
        trainer._get_per_token_logps_and_entropies = original
    return captured["logps"].grad


@pytest.mark.parametrize("context", ["hinted", "original"])
def test_original_context_trains_the_forced_prefix(tiny_model_dir, tmp_path, context):
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode="prefix", hint_loss_context=context)
    calls = record_generations(trainer)
    batch = trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    (first_prompts, _), (regenerated_prompts, _) = calls
    assert rows_of(batch["prompt_ids"], batch["prompt_mask"]) == first_prompts  # the prefix is no prompt
    prefix_length = len(trainer._prefix_ids("negative"))
    forced = torch.zeros_like(batch["completion_mask"], dtype=torch.bool)
    forced[:, :prefix_length] = True  # every row was hinted (a random model states no polarity)
    grad = loss_grad(trainer, batch)
    if context == "hinted":
        assert torch.all(batch["tool_mask"][forced] == 0) and torch.all(grad[forced] == 0)
    else:
        assert "tool_mask" not in batch or torch.all(batch["tool_mask"][forced] == 1)
        assert torch.all(grad[forced] != 0)


def test_policy_shaping_weights_the_gradient_of_the_forced_tokens(tiny_model_dir, tmp_path):
    trainer = make_trainer(
        tiny_model_dir, tmp_path, hint_mode="prefix", hint_loss_context="original", hint_policy_shaping=0.1
    )
    record_generations(trainer)
    batch = trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    shaped = batch["advantages"]
    assert shaped.dim() == 2  # per token
    row_advantages = shaped[:, -1]  # the last position is never a forced token
    forced = torch.zeros_like(batch["completion_mask"], dtype=torch.bool)
    forced[:, : len(trainer._prefix_ids("negative"))] = True  # every row was hinted (a random model states none)

    # By hand: the unhinted policy's probability of each forced token, and LUFFY's weight of it.
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    with torch.no_grad():
        logits = trainer.model(input_ids, attention_mask=torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1))
    width = batch["completion_ids"].size(1)
    logps = logits.logits[:, -width - 1 : -1].log_softmax(-1).gather(-1, batch["completion_ids"].unsqueeze(-1))[..., 0]
    probability = logps.exp()
    expected_weight = 0.1 * probability / (probability + 0.1) ** 2
    expected = torch.where(forced, row_advantages.unsqueeze(1) * expected_weight, row_advantages.unsqueeze(1))
    assert torch.allclose(shaped, expected, atol=1e-5)
    assert trainer._metrics["train"]["hint/offpolicy_token_frac"][-1] > 0

    # The loss sees it: the forced tokens' gradients are the unshaped ones times their weights, the others unchanged.
    shaped_grad = loss_grad(trainer, dict(batch), spread_advantages=False)
    plain_grad = loss_grad(trainer, batch | {"advantages": row_advantages}, spread_advantages=False)
    assert torch.allclose(shaped_grad[forced], plain_grad[forced] * expected_weight[forced], rtol=1e-4, atol=1e-10)
    assert torch.allclose(shaped_grad[~forced], plain_grad[~forced], rtol=1e-4, atol=1e-10)


@pytest.mark.parametrize("context", ["hinted", "original"])
def test_old_logprobs_of_hinted_rows_are_taken_on_the_prompt_they_are_trained_on(tiny_model_dir, tmp_path, context):
    # Two updates per generation and two steps per generation batch: TRL computes π_old before the first update.
    # The loss's ratio π_θ / π_old must start at 1 on every trained token, hinted rows included, which holds only
    # if π_old was computed on the prompt the row is trained after (hinted or original).
    trainer = make_trainer(
        tiny_model_dir, tmp_path, hint_mode="prompt", hint_loss_context=context, num_iterations=2,
        steps_per_generation=2, per_device_train_batch_size=GROUP, dataset=samples(n=2),
    )  # fmt: skip
    calls = record_generations(trainer)
    batch = trainer._generate_and_score_completions(batch_inputs(trainer, samples(n=2)))
    assert len(calls) == 2 and batch["old_per_token_logps"] is not None  # every group hinted, π_old computed
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, input_ids, attention_mask, batch["completion_ids"].size(1)
        )
    trained = batch["completion_mask"].bool()
    ratio = (logps - batch["old_per_token_logps"]).exp()[trained]
    assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-4)
    hinted_prompt = trainer._tokenizer.decode(rows_of(batch["prompt_ids"], batch["prompt_mask"])[0])
    assert ("Hint:" in hinted_prompt) == (context == "hinted")


def test_policy_shaping_needs_the_original_context(tmp_path):
    with pytest.raises(ValueError, match="hint_loss_context='original'"):
        HintGRPOConfig(output_dir=str(tmp_path), hint_policy_shaping=0.1, bf16=False)


@pytest.mark.parametrize(
    ("mode", "context", "expected"),
    [
        ("prompt", "hinted", [-0.1, -0.2, -0.3]),
        ("prompt", "original", [None, None, None]),  # sampled under the hinted prompt, trained without it
        ("prefix", "hinted", ["forced", -0.1, -0.2, -0.3]),
        ("prefix", "original", ["forced", -0.1, -0.2, -0.3]),  # sampled after the forced tokens, as trained
    ],
)
def test_sampling_logprobs_of_hinted_rows(tiny_model_dir, tmp_path, mode, context, expected):
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode=mode, hint_loss_context=context)
    trainer._generate_single_turn = lambda ids, *args, **kwargs: (
        [[5, 6, 7]] * len(ids),
        [[-0.1, -0.2, -0.3]] * len(ids),
    )
    inputs = batch_inputs(trainer, samples(n=1))
    generation = Generation([[1]] * GROUP, [[2]] * GROUP, None, ["x"] * GROUP, [[-1.0]] * GROUP, {}, None, [])
    trainer._ledger = RewardLedger(GROUP, len(trainer.reward_funcs), "cpu")
    trainer._regenerate([0], [x["prompt"] for x in inputs], inputs, generation, mode)
    forced = [None] * len(trainer._prefix_ids("negative"))
    assert generation.logprobs[0] == [x for e in expected for x in (forced if e == "forced" else [e])]
    assert generation.logprobs[1:] == [[-1.0]] * (GROUP - 1)


def test_the_hint_schedule_runs_on_the_completion_budget(tiny_model_dir, tmp_path):
    budget = 48
    trainer = make_trainer(
        tiny_model_dir,
        tmp_path,
        hint_mode="prefix",
        hint_schedule="linear",
        hint_prob_start=1.0,
        hint_prob_end=0.0,
        completion_budget=budget,
        max_steps=100,
    )
    trainer.train()
    logs = [log for log in trainer.state.log_history if "hint/probability" in log]
    assert len(logs) >= 2 and logs[-1]["completions/generated_total"] == budget
    generated_before = [0.0] + [log["completions/generated_total"] for log in logs[:-1]]
    assert [log["hint/probability"] for log in logs] == pytest.approx([1 - g / budget for g in generated_before])


def test_hint_draws_differ_between_the_generation_batches_of_a_step(tiny_model_dir, tmp_path, monkeypatch):
    keys = []
    draw = hint_grpo.sample_hinted_groups

    def recording(hard, probability, seed, batch):
        keys.append(batch)
        return draw(hard, probability, seed, batch)

    monkeypatch.setattr(hint_grpo, "sample_hinted_groups", recording)
    trainer = make_trainer(
        tiny_model_dir,
        tmp_path,
        dataset=samples(n=4),
        gradient_accumulation_steps=2,
        steps_per_generation=1,
        hint_prob_start=0.5,
    )
    trainer.train()
    assert keys == [0, 1, 2, 3]  # two generation batches in each of the two optimizer steps


def test_length_metrics_and_token_count_describe_the_trained_completions(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path, hint_mode="prefix")
    record_generations(trainer)
    batch = trainer._generate_and_score_completions(batch_inputs(trainer, samples()))
    trained = (batch["completion_mask"] * batch["tool_mask"]).sum(dim=1).float()  # the forced tokens are context
    metrics = trainer._metrics["train"]
    assert metrics["completions/mean_length"] == [pytest.approx(trained.mean().item())]
    assert metrics["completions/max_length"] == [trained.max().item()]
    assert metrics["num_tokens"] == [batch["prompt_mask"].sum().item() + trained.sum().item()]


def test_a_hard_pool_is_sampled_from_the_training_rows(tiny_model_dir, tmp_path):
    import json

    gold = ["negative", *["positive"] * 5]  # row 0 alone states the wrong polarity
    records = [{"id": str(i), "polarity": "positive", "gold_polarity": g} for i, g in enumerate(gold)]
    predictions = tmp_path / "train_predictions.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records))
    trainer = make_trainer(
        tiny_model_dir, tmp_path, dataset=samples(n=6), hard_pool_predictions=str(predictions), hard_pool_share=0.8
    )
    sampler = trainer.get_train_dataloader().batch_sampler.sampler  # the one TRL's batches are drawn with
    drawn = [index for _ in range(50) for index in sampler]
    assert drawn.count(0) / len(drawn) == pytest.approx(0.8, abs=0.06)

    records[0]["id"] = "not-a-row"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ValueError, match="not training rows"):
        make_trainer(tiny_model_dir, tmp_path, dataset=samples(n=6), hard_pool_predictions=str(predictions))


def test_the_model_card_names_the_method(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path)
    trainer.create_model_card(model_name="tiny-hint-grpo")
    card = (tmp_path / "README.md").read_text()
    assert "Hint-GRPO" in card and "2503.23905" in card and "huang2025hintgrpo" in card
    assert "- hintgrpo" in card and "- hint-grpo" in card
