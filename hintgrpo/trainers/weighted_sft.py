"""Supervised fine-tuning where each sample counts by its `weight` column (1.0 when absent), and rows are drawn in
proportion to their `sampling_weight` column when there is one.

    loss = Σ_i w_i Σ_t ℓ_it / Σ_i w_i n_i

over the completion tokens of the samples in an optimizer step (and of every rank when TRL averages
tokens across devices). With every weight at 1.0 this is exactly TRL's SFT loss.

How the weight travels through TRL: dataset preparation keeps extra columns, so `weight` survives it;
the signature columns keep it past `remove_unused_columns`; the collator spreads it over each sample's
tokens as `token_weights`. `get_batch_samples` divides those by their mean over the accumulated batch's
loss tokens, and `SFTTrainer.compute_loss` then runs unchanged on a forward whose per-token
log-probabilities are scaled by them: TRL's Σ_t ℓ_t / n becomes Σ_t w_t ℓ_t / Σ_t w_t.

`decision_token_weight` (WeightedSFTConfig) multiplies the weight of the completion tokens that decide the answer:
the numbers and the polarity or label words. A rationale is mostly tokens that follow from the text and the format,
so with a small budget the cheapest loss is the format with the majority answer; weighting the decisions up makes
the answer itself most of what is learned.

`weight` scales a row's loss within its batch; `sampling_weight` changes how often the row is drawn (with
replacement, seeded alike on every rank), which is what rebalances a skewed label distribution: with batches of a few
rows, loss weights mostly meet batches of the majority class alone and are normalised away.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import torch
from torch.utils.data import WeightedRandomSampler
from trl import SFTTrainer
from trl.data_utils import get_dataset_column_names
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
from trl.trainer.utils import pad

from hintgrpo.tasks import TASKS

WEIGHT_COLUMN = "weight"
SAMPLING_WEIGHT_COLUMN = "sampling_weight"
NUMBER_PIECE = re.compile(r"[+\-−]|[+\-−]?\d+")


def decision_token_ids(tokenizer) -> frozenset[int]:
    """Ids of the tokens that state a decision: number pieces (digits, a sign) and every task's polarity or label
    words, however the tokenizer spaces them. Sentence punctuation is not among them."""
    words = {word for spec in TASKS.values() for word in (*spec.polarities, *spec.labels)}
    decisions = set()
    for token_id in range(len(tokenizer)):
        piece = tokenizer.decode([token_id]).strip()
        if NUMBER_PIECE.fullmatch(piece) or piece.lower() in words:
            decisions.add(token_id)
    return frozenset(decisions)


@dataclasses.dataclass
class DataCollatorForWeightedLanguageModeling(DataCollatorForLanguageModeling):
    """TRL's language-modeling collator, plus `token_weights`: each sample's weight on all its tokens (0 on padding),
    times `decision_token_weight` on the tokens in `decision_token_ids`."""

    decision_token_ids: frozenset[int] = frozenset()
    decision_token_weight: float = 1.0

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        token_weights = []
        for example in examples:
            weight = float(example.get(WEIGHT_COLUMN, 1.0))
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"sample weights must be finite and non-negative, got {weight}")
            weights = torch.full((len(example["input_ids"]),), weight)
            if self.decision_token_weight != 1.0:
                decides = torch.tensor([token_id in self.decision_token_ids for token_id in example["input_ids"]])
                weights[decides] *= self.decision_token_weight
            token_weights.append(weights)
        if self.padding_free:
            token_weights = [torch.cat(token_weights)]
        batch["token_weights"] = pad(token_weights, 0.0, "right", self.pad_to_multiple_of)
        return batch


def loss_token_totals(labels: torch.Tensor, token_weights: torch.Tensor) -> torch.Tensor:
    """[Σ weight, count] over the tokens the loss scores: every label but the first, as the model predicts the next."""
    scored = labels[:, 1:] != -100
    return torch.stack([token_weights[:, 1:][scored].sum(), scored.sum().to(token_weights.dtype)])


def mean_one_scale(totals: torch.Tensor) -> float:
    """The factor that brings the scored tokens' mean weight to 1 (0 when they all weigh 0: nothing to learn)."""
    weight_sum, count = totals.tolist()
    return count / weight_sum if weight_sum > 0 else 0.0


def sampling_weights(dataset) -> torch.Tensor | None:
    """The dataset's `sampling_weight` column as a tensor (None without one), checked."""
    if dataset is None or SAMPLING_WEIGHT_COLUMN not in (get_dataset_column_names(dataset) or []):
        return None
    weights = torch.tensor(dataset[SAMPLING_WEIGHT_COLUMN], dtype=torch.float64)
    bad = torch.nonzero(~torch.isfinite(weights) | (weights < 0)).flatten()
    if len(bad):
        row = int(bad[0])
        raise ValueError(f"row {row}: {SAMPLING_WEIGHT_COLUMN} must be finite and non-negative, got {weights[row]}")
    if weights.sum() == 0:
        raise ValueError(f"every {SAMPLING_WEIGHT_COLUMN} is 0: no row could be drawn")
    return weights


class WeightedSFTTrainer(SFTTrainer):
    """`trl.SFTTrainer` with per-sample weights; takes the same arguments."""

    _tag_names = ["trl", "sft", "hintgrpo", "weighted-sft"]
    _name = "Weighted SFT"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._reject_options_that_ignore_weights()
        if type(self.data_collator) is DataCollatorForLanguageModeling:
            self.data_collator = DataCollatorForWeightedLanguageModeling(**dataclasses.asdict(self.data_collator))
        decision_token_weight = getattr(self.args, "decision_token_weight", 1.0)
        if decision_token_weight != 1.0:
            if not isinstance(self.data_collator, DataCollatorForWeightedLanguageModeling):
                raise ValueError(
                    f"decision_token_weight needs DataCollatorForWeightedLanguageModeling, not "
                    f"{type(self.data_collator).__name__}"
                )
            tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
            self.data_collator.decision_token_ids = decision_token_ids(tokenizer)
            self.data_collator.decision_token_weight = decision_token_weight
        self.sampling_weights = sampling_weights(self.train_dataset)

    def _get_train_sampler(self, train_dataset=None):
        if self.sampling_weights is None:
            return super()._get_train_sampler(train_dataset)
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        generator = torch.Generator().manual_seed(seed)
        return WeightedRandomSampler(self.sampling_weights, len(self.sampling_weights), generator=generator)

    def _reject_options_that_ignore_weights(self) -> None:
        args = self.args
        parallelism = self.accelerator.parallelism_config
        unsupported = {
            "loss_type='dft'": args.loss_type == "dft",
            "label smoothing": args.label_smoothing_factor > 0,
            "compute_loss_func": self.compute_loss_func is not None,
            "context or sequence parallelism": parallelism is not None
            and (parallelism.cp_enabled or parallelism.sp_enabled),
        }
        rejected = [option for option, used in unsupported.items() if used]
        if rejected:
            raise ValueError(
                f"{type(self).__name__} does not support {', '.join(rejected)}: the loss would ignore weights"
            )

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        if packing and WEIGHT_COLUMN in get_dataset_column_names(dataset):
            raise ValueError(
                f"{type(self).__name__} cannot pack the {dataset_name} dataset: packing keeps only input_ids and "
                "labels, so the sample weights would be lost. Set packing=False (and eval_packing=False)."
            )
        return super()._prepare_dataset(dataset, processing_class, args, packing, formatting_func, dataset_name)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if WEIGHT_COLUMN not in self._signature_columns:
            self._signature_columns.append(WEIGHT_COLUMN)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        # A counted batch is normalised by its token count over all its micro-batches (and ranks), so the
        # weights' mean is taken over the same tokens.
        if num_items_in_batch is not None:
            totals = sum(loss_token_totals(batch["labels"], batch["token_weights"]) for batch in batch_samples)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                totals = self.accelerator.gather(totals.to(device)).view(-1, 2).sum(0)
            scale = mean_one_scale(totals)
            for batch in batch_samples:
                batch["token_weights"] = batch["token_weights"] * scale
        return batch_samples, num_items_in_batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "token_weights" not in inputs:
            raise ValueError(
                f"the batch has no token_weights: {type(self).__name__} needs DataCollatorForWeightedLanguageModeling"
            )
        token_weights = inputs.pop("token_weights")
        # Without a count, TRL normalises each micro-batch by its own tokens (evaluation, for one); so do the weights.
        if num_items_in_batch is None:
            token_weights = token_weights * mean_one_scale(loss_token_totals(inputs["labels"], token_weights))
        scored_weights = token_weights[:, 1:]

        def forward_with_weighted_log_probs(**model_inputs):
            outputs = model(**model_inputs)
            if model_inputs.get("fused_lm_head"):
                outputs.log_probs = outputs.log_probs * scored_weights
            return outputs

        return super().compute_loss(forward_with_weighted_log_probs, inputs, return_outputs, num_items_in_batch)
