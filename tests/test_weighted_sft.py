"""WeightedSFTTrainer: per-sample weights in TRL's SFT loss, on the tiny model (full fine-tuning and LoRA)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from trl import ModelConfig, SFTConfig, SFTTrainer, get_peft_config

from hintgrpo.data.prompts import build_messages
from hintgrpo.reasoning import render
from hintgrpo.tasks import get_task
from hintgrpo.trainers import DataCollatorForWeightedLanguageModeling, WeightedSFTConfig, WeightedSFTTrainer
from hintgrpo.trainers.weighted_sft import decision_token_ids
from hintgrpo.training import with_polarity_balance

TASK = get_task("emobank")
# Texts of different lengths, so batches are padded.
SAMPLES = [
    ("I love this so much.", 2.1),
    ("This is terrible, sad and a waste of everyone's time.", -1.8),
    ("It is a table.", 0.0),
    ("What a wonderful day, truly great!", 2.6),
    ("The delay annoyed me a little.", -0.9),
    ("Fine.", 0.2),
    ("The service was slow but the staff were kind and the food was excellent.", 1.1),
    ("Awful.", -2.7),
]


def cot_dataset(weights: list[float] | None = None, rows: list[int] | None = None) -> Dataset:
    """Records shaped like `load_cot_dataset`'s: the DC prompt and a gold DC completion (no weight column if None)."""
    records = []
    for i in rows if rows is not None else range(len(SAMPLES)):
        text, score = SAMPLES[i]
        sample = {"id": str(i), "text": text, "task": TASK.name, "label": score, "polarity": TASK.polarity_of(score)}
        cot = render(sample["polarity"], f'"{text}" sets the side.', "Moderate cues, plain context.", score)
        record = sample | {"prompt": build_messages(sample), "completion": [{"role": "assistant", "content": cot}]}
        if weights is not None:
            record["weight"] = weights[i]
        records.append(record)
    return Dataset.from_list(records)


def make_trainer(model_dir, output_dir, dataset, trainer_class=WeightedSFTTrainer, use_peft=False, **config):
    config_class = WeightedSFTConfig if "decision_token_weight" in config else SFTConfig
    args = config_class(
        **{
            "output_dir": str(output_dir),
            "use_cpu": True,
            "bf16": False,
            "activation_checkpointing": False,
            "report_to": "none",
            "save_strategy": "no",
            "logging_steps": 1,
            "disable_tqdm": True,
            "seed": 0,
            "learning_rate": 1e-2,
            **config,
        }
    )
    # No LoRA dropout: it draws from the global RNG, which two trainings in one process do not see alike.
    model_args = ModelConfig(
        use_peft=use_peft, lora_r=4, lora_alpha=8, lora_dropout=0.0, lora_target_modules=["q_proj", "v_proj"]
    )
    return trainer_class(
        model=str(model_dir), args=args, train_dataset=dataset, peft_config=get_peft_config(model_args)
    )


def parameters(trainer) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters()}


def logged_losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.parametrize(
    ("use_peft", "weights"),
    [(False, [1.0] * len(SAMPLES)), (False, None), (True, [1.0] * len(SAMPLES))],
    ids=["full", "full-no-weight-column", "lora"],
)
def test_unit_weights_train_exactly_like_sft_trainer(tiny_model_dir, tmp_path, use_peft, weights):
    # Two optimizer steps of two accumulated micro-batches of two padded samples each.
    config = {"max_steps": 2, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2}
    plain = make_trainer(tiny_model_dir, tmp_path / "plain", cot_dataset(weights), SFTTrainer, use_peft, **config)
    weighted = make_trainer(tiny_model_dir, tmp_path / "weighted", cot_dataset(weights), use_peft=use_peft, **config)
    before = parameters(weighted)
    plain.train()
    weighted.train()

    assert logged_losses(weighted) == logged_losses(plain)
    assert [e["mean_token_accuracy"] for e in weighted.state.log_history if "loss" in e] == [
        e["mean_token_accuracy"] for e in plain.state.log_history if "loss" in e
    ]
    after, reference = parameters(weighted), parameters(plain)
    for name in after:
        assert torch.equal(after[name], reference[name]), name
    trainable = {name for name, p in weighted.model.named_parameters() if p.requires_grad}
    assert all(not torch.equal(before[name], after[name]) for name in trainable), "every trained tensor must move"
    if use_peft:
        assert trainable and all("lora_" in name for name in trainable)
        assert all(torch.equal(before[name], after[name]) for name in after if name not in trainable)


def test_loss_is_the_weighted_mean_over_completion_tokens(tiny_model_dir, tmp_path):
    """Σ_i w_i Σ_t ℓ_it / Σ_i w_i n_i over completion tokens, from the model's own logits, for an eval batch."""
    weights = [2.0, 0.5, 0.0, 1.0]
    dataset = cot_dataset(weights + [1.0] * (len(SAMPLES) - 4), rows=range(4))
    trainer = make_trainer(tiny_model_dir, tmp_path, dataset, per_device_eval_batch_size=4)
    # The eval loader keeps the order and goes through the same column removal and collator as training.
    batch = next(iter(trainer.get_eval_dataloader(trainer.train_dataset)))
    tokenizer, model = trainer.processing_class, trainer.model.eval()

    weighted_nll, weighted_tokens = 0.0, 0.0
    for i, record in enumerate(dataset):
        prompt_ids = tokenizer.apply_chat_template(record["prompt"], add_generation_prompt=True, return_dict=False)
        ids = tokenizer.apply_chat_template(record["prompt"] + record["completion"], return_dict=False)
        start = len(prompt_ids)
        labels = batch["labels"][i]
        assert labels[:start].eq(-100).all(), "prompt tokens must carry no loss"
        assert labels[start : len(ids)].tolist() == ids[start:]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        nll = F.cross_entropy(logits[start - 1 : -1], torch.tensor(ids[start:]), reduction="sum")
        weighted_nll += weights[i] * nll
        weighted_tokens += weights[i] * (len(ids) - start)

    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
    torch.testing.assert_close(loss, weighted_nll / weighted_tokens)


def test_decision_tokens_weigh_more_in_the_loss(tiny_model_dir, tmp_path):
    """With decision_token_weight=4 the numbers and polarity words of a completion count 4 times in the mean."""
    weights = [2.0, 1.0, 0.5, 1.0]
    dataset = cot_dataset(weights + [1.0] * (len(SAMPLES) - 4), rows=range(4))
    trainer = make_trainer(tiny_model_dir, tmp_path, dataset, per_device_eval_batch_size=4, decision_token_weight=4.0)
    batch = next(iter(trainer.get_eval_dataloader(trainer.train_dataset)))
    tokenizer, model = trainer.processing_class, trainer.model.eval()
    decisions = decision_token_ids(tokenizer)

    weighted_nll, weighted_tokens = 0.0, 0.0
    for i, record in enumerate(dataset):
        prompt_ids = tokenizer.apply_chat_template(record["prompt"], add_generation_prompt=True, return_dict=False)
        ids = tokenizer.apply_chat_template(record["prompt"] + record["completion"], return_dict=False)
        start = len(prompt_ids)
        completion = ids[start:]
        answer = tokenizer.encode(f"{SAMPLES[i][1]:g}", add_special_tokens=False)
        assert set(answer) - {tokenizer.convert_tokens_to_ids(".")} <= decisions, "the answer's digits decide"
        assert not set(tokenizer.encode("</answer>", add_special_tokens=False)) & decisions
        token_weights = torch.tensor([weights[i] * (4.0 if t in decisions else 1.0) for t in completion])
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        nll = F.cross_entropy(logits[start - 1 : -1], torch.tensor(completion), reduction="none")
        weighted_nll += (token_weights * nll).sum()
        weighted_tokens += token_weights.sum()

    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
    torch.testing.assert_close(loss, weighted_nll / weighted_tokens)
    with pytest.raises(ValueError, match="decision_token_weight"):
        WeightedSFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, decision_token_weight=0.0)


@pytest.mark.parametrize(
    ("weights", "equivalent_rows"),
    [([1.0, 0.0, 1.0, 1.0], [0, 2, 3]), ([2.0, 1.0, 1.0, 1.0], [0, 0, 1, 2, 3])],
    ids=["zero-weight-drops-a-sample", "weight-2-duplicates-a-sample"],
)
def test_weights_act_like_dropping_or_repeating_samples(tiny_model_dir, tmp_path, weights, equivalent_rows):
    # One plain SGD step over the whole set, so the update is -lr times the gradient of the loss.
    config = {"max_steps": 1, "optim": "sgd", "learning_rate": 1.0}
    dataset = cot_dataset(weights + [1.0] * (len(SAMPLES) - 4), rows=range(4))
    weighted = make_trainer(tiny_model_dir, tmp_path / "w", dataset, per_device_train_batch_size=4, **config)
    plain = make_trainer(
        tiny_model_dir,
        tmp_path / "p",
        cot_dataset(rows=equivalent_rows),
        SFTTrainer,
        per_device_train_batch_size=len(equivalent_rows),
        **config,
    )
    weighted.train()
    plain.train()

    assert logged_losses(weighted) == pytest.approx(logged_losses(plain), rel=1e-5)
    after, reference = parameters(weighted), parameters(plain)
    for name in after:
        torch.testing.assert_close(after[name], reference[name], msg=name)


def test_gradient_accumulation_normalises_by_the_whole_batch(tiny_model_dir, tmp_path):
    """One optimizer step over four weighted samples: the same update in 1, 2 or 4 micro-batches."""
    dataset = cot_dataset([3.0, 1.0, 0.5, 2.0] + [1.0] * (len(SAMPLES) - 4), rows=range(4))
    updates = []
    for batch_size in (4, 2, 1):
        trainer = make_trainer(
            tiny_model_dir,
            tmp_path / str(batch_size),
            dataset,
            max_steps=1,
            optim="sgd",
            learning_rate=1.0,
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=4 // batch_size,
        )
        trainer.train()
        updates.append(parameters(trainer))
    for other in updates[1:]:
        for name in updates[0]:
            torch.testing.assert_close(other[name], updates[0][name], msg=name)


def test_collator_spreads_weights_over_tokens():
    examples = [{"input_ids": [1, 2, 3], "weight": 2.0}, {"input_ids": [4, 5]}]
    padded = DataCollatorForWeightedLanguageModeling(pad_token_id=0)(examples)
    assert padded["token_weights"].tolist() == [[2.0, 2.0, 2.0], [1.0, 1.0, 0.0]]
    flat = DataCollatorForWeightedLanguageModeling(pad_token_id=0, padding_free=True)(examples)
    assert flat["token_weights"].tolist() == [[2.0, 2.0, 2.0, 1.0, 1.0]]
    with pytest.raises(ValueError, match="non-negative"):
        DataCollatorForWeightedLanguageModeling(pad_token_id=0)([{"input_ids": [1], "weight": -1.0}])


def test_packing_would_drop_weights_and_is_rejected(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="packing"):
        make_trainer(tiny_model_dir, tmp_path, cot_dataset([1.0] * len(SAMPLES)), packing=True, max_length=512)


def test_rows_are_drawn_by_their_sampling_weight(tiny_model_dir, tmp_path):
    only = 7  # "Awful.": the one row with sampling weight
    dataset = cot_dataset().add_column("sampling_weight", [0.0] * only + [1.0])
    trainer = make_trainer(tiny_model_dir, tmp_path, dataset, per_device_train_batch_size=2, max_steps=1)
    expected = torch.tensor(trainer.train_dataset[only]["input_ids"])
    batches = list(trainer.get_train_dataloader())
    assert len(batches) == 4 and all(torch.equal(row, expected) for b in batches for row in b["input_ids"])
    trainer.train()
    assert logged_losses(trainer)[0] > 0


def test_balanced_polarities_weigh_the_same_and_bad_sampling_weights_name_the_row(tiny_model_dir, tmp_path):
    dataset = with_polarity_balance(cot_dataset())  # 3 positive, 3 negative, 2 neutral rows
    trainer = make_trainer(tiny_model_dir, tmp_path, dataset)
    totals = {}
    for polarity, weight in zip(dataset["polarity"], trainer.sampling_weights.tolist(), strict=True):
        totals[polarity] = totals.get(polarity, 0.0) + weight
    assert totals == pytest.approx({"positive": 1.0, "negative": 1.0, "neutral": 1.0})
    bad = cot_dataset().add_column("sampling_weight", [1.0, 1.0, float("nan")] + [1.0] * 5)
    with pytest.raises(ValueError, match="row 2: sampling_weight must be finite and non-negative, got nan"):
        make_trainer(tiny_model_dir, tmp_path, bad)
