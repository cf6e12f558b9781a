"""`HintGRPOTrainer`: TRL's GRPOTrainer that hints hard groups and re-samples them (DESIGN §5, §6).

The hint step sits inside TRL's own generation hook (`_generate`): after a batch is generated it is
scored, the hard groups are found on the rewards gathered from every process, and only their rows are
regenerated with the hint. TRL then scores the final completions and computes every advantage as
usual, so a hinted group's advantages come from its new rewards and `hint_mode="none"` is exactly
TRL's GRPO. Forced prefix tokens are returned with a zero `tool_mask`, which TRL keeps as context in
the forward pass and leaves out of the loss.

DAPO-style dynamic sampling (`dynamic_sampling=True`) runs on the same hook: groups whose rewards are
all equal are replaced by groups of fresh prompts from the training set, up to `max_refill_rounds` times.

Every generated completion is counted (`completions/generated_total`), and `completion_budget` stops training
once the count reaches it, so methods that re-sample can be compared at equal generation cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from trl import GRPOTrainer

from hintgrpo.hints import (
    group_has_variance,
    hard_groups,
    hint_prefix,
    hint_probability,
    hint_prompt,
    rank_agnostic_generator,
    sample_hinted_groups,
)
from hintgrpo.reasoning import parse_completion
from hintgrpo.rewards import completion_text
from hintgrpo.tasks import get_task
from hintgrpo.trainers.hint_grpo_config import HintGRPOConfig


@dataclass
class Generation:
    """The per-row lists TRL's `_generate` returns, in its order, with rows that can be replaced."""

    prompt_ids: list
    completion_ids: list
    tool_mask: list | None
    completions: list
    logprobs: list | None
    extra_fields: dict
    images: list | None
    tool_images: list

    def replace(self, row: int, prompt_ids: list, forced: list, new: list, logprobs, text: str) -> None:
        """Row `row` becomes `forced + new` after `prompt_ids`; forced tokens are context, not trained on."""
        if forced and self.tool_mask is None:
            self.tool_mask = [[1] * len(ids) for ids in self.completion_ids]
        self.prompt_ids[row] = prompt_ids
        self.completion_ids[row] = forced + new
        if self.tool_mask is not None:
            self.tool_mask[row] = [0] * len(forced) + [1] * len(new)
        conversational = not isinstance(self.completions[row], str)
        self.completions[row] = [{"role": "assistant", "content": text}] if conversational else text
        if self.logprobs is not None:
            self.logprobs[row] = [None] * len(forced) + list(logprobs)

    def as_tuple(self) -> tuple:
        return (
            self.prompt_ids,
            self.completion_ids,
            self.tool_mask,
            self.completions,
            self.logprobs,
            self.extra_fields,
            self.images,
            self.tool_images,
        )


class HintGRPOTrainer(GRPOTrainer):
    """GRPO with discrimination hints for hard groups, optional dynamic sampling, and per-sample `weight`s."""

    refills_media = False  # whether a refilled row's media reach its new prompt (MultimodalHintGRPOTrainer)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, HintGRPOConfig):
            raise TypeError(f"HintGRPOTrainer needs a HintGRPOConfig, got {type(self.args).__name__}")
        if self._resamples and (self.tools or self.rollout_func is not None):
            raise ValueError("hints and dynamic sampling are not supported with tools or a custom rollout_func")
        columns = set(getattr(self.train_dataset, "column_names", None) or [])
        if self.args.hint_mode == "prefix" and "polarity" in columns:
            self._check_prefix_fits(set(self.train_dataset["polarity"]))
        if self.args.dynamic_sampling and not self.refills_media and columns & {"image", "images"}:
            # TRL puts a row's images into its prompt before generation; a refilled row would come without them.
            raise ValueError(
                "dynamic_sampling with an image column needs MultimodalHintGRPOTrainer "
                "(recipes/hint_grpo.py --modality_route native), which gives refilled rows their images"
            )
        self._batch_inputs: list[dict] | None = None
        self._pending_hint: dict | None = None
        self.generated_completions = 0  # over all processes; restored from the log history on resume

    def _prefix_ids(self, polarity: str) -> list[int]:
        """The forced opening of a prefix-hinted completion that states `polarity`."""
        return self._tokenizer.encode(hint_prefix(polarity), add_special_tokens=False)

    def _check_prefix_fits(self, polarities: set[str]) -> None:
        longest = max(len(self._prefix_ids(p)) for p in polarities)
        if longest >= self.max_completion_length:
            raise ValueError(
                f"the hint prefix takes up to {longest} tokens of the completion, max_completion_length is "
                f"{self.max_completion_length}: raise max_completion_length so hinted completions have room to reason"
            )

    @property
    def _resamples(self) -> bool:
        return self.args.hint_mode != "none" or self.args.dynamic_sampling

    def _generate_and_score_completions(self, inputs):
        self._batch_inputs = inputs
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._batch_inputs = None
        weights = torch.tensor([float(x.get("weight", 1.0)) for x in inputs], device=output["advantages"].device)
        if not torch.all(weights == 1.0):
            output["advantages"] = output["advantages"] * weights
        return output

    def _generate(self, prompts: list):
        generated = super()._generate(prompts)
        if self.model.training:
            self._count_generated(len(prompts) * self.accelerator.num_processes)
        if not self._resamples or not self.model.training or self._batch_inputs is None:
            return generated
        generation = Generation(*(list(x) if isinstance(x, list) else x for x in generated))
        if self.args.hint_mode != "none":
            self._hint_hard_groups(prompts, self._batch_inputs, generation)
        if self.args.dynamic_sampling:
            self._refill_zero_variance_groups(prompts, self._batch_inputs, generation)
        return generation.as_tuple()

    def _count_generated(self, count: int) -> None:
        if self.generated_completions == 0 and self.state.global_step > 0:  # resumed from a checkpoint
            logged = [
                e["completions/generated_total"] for e in self.state.log_history if "completions/generated_total" in e
            ]
            self.generated_completions = int(logged[-1]) if logged else 0
        self.generated_completions += count
        budget = self.args.completion_budget
        if budget is not None and self.generated_completions >= budget:
            self.control.should_training_stop = True  # after this step: every process counts the same

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training:  # a running total: TRL would average it over the logging window
            logs["completions/generated_total"] = float(self.generated_completions)
        super().log(logs, start_time)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self._pending_hint is not None:  # the first scoring of the batch that holds the hinted rows
            self._log_rewards_after_hint(self._total_rewards(rewards_per_func), self._pending_hint)
            self._pending_hint = None
        return rewards_per_func

    def _total_rewards(self, rewards_per_func: torch.Tensor) -> torch.Tensor:
        """TRL's weighted sum of the reward functions; NaN where no function scored the row."""
        weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
        total = (rewards_per_func * weights).nansum(dim=1)
        total[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
        return total

    def _score(self, prompts: list, inputs: list[dict], generation: Generation) -> torch.Tensor:
        """Total reward of every row of the global batch (gathered from all processes)."""
        rewards = self._calculate_rewards(inputs, prompts, generation.completions, generation.completion_ids)
        return self._total_rewards(rewards)

    def _local_rows(self, groups: torch.Tensor, batch_size: int) -> list[int]:
        """Indices into this process's rows of the flagged groups (a group may span processes)."""
        offset = self.accelerator.process_index * batch_size
        return [i for i in range(batch_size) if groups[(offset + i) // self.num_generations]]

    def _hint_hard_groups(self, prompts: list, inputs: list[dict], generation: Generation) -> None:
        device, group_size = self.accelerator.device, self.num_generations
        total = self._score(prompts, inputs, generation)
        correct = torch.tensor(
            [
                parse_completion(completion_text(c), get_task(x["task"])).polarity == x["polarity"]
                for c, x in zip(generation.completions, inputs, strict=True)
            ],
            device=device,
        )
        correct = self.accelerator.gather(correct)
        hard = hard_groups(correct, total, group_size, self.args.hint_trigger, self.args.hint_reward_threshold)
        probability = hint_probability(
            self.state.global_step,
            self.state.max_steps,
            self.args.hint_schedule,
            self.args.hint_prob_start,
            self.args.hint_prob_end,
        )
        hinted = sample_hinted_groups(hard, probability, self.args.seed, self.state.global_step)

        metrics = self._metrics["train"]
        metrics["hint/hard_group_frac"].append(hard.float().mean().item())
        metrics["hint/hinted_group_frac"].append(hinted.float().mean().item())
        metrics["hint/probability"].append(probability)
        zero_std_before = ~group_has_variance(total, group_size)
        metrics["hint/zero_std_group_frac_before"].append(zero_std_before.float().mean().item())
        if not hinted.any():  # the same answer on every rank: all skip the collective calls below together
            return
        self._regenerate(self._local_rows(hinted, len(prompts)), prompts, inputs, generation, self.args.hint_mode)
        row_hinted = hinted.repeat_interleave(group_size)
        self._pending_hint = {"hinted": hinted, "row_hinted": row_hinted, "reward_before": total[row_hinted]}

    def _refill_zero_variance_groups(self, prompts: list, inputs: list[dict], generation: Generation) -> None:
        """DAPO dynamic sampling: swap groups without reward variance for groups of fresh training prompts."""
        group_size, refilled = self.num_generations, 0
        for round_index in range(self.args.max_refill_rounds + 1):
            dead = ~group_has_variance(self._score(prompts, inputs, generation), group_size)
            if round_index == self.args.max_refill_rounds or not dead.any():
                break
            # Every process that holds part of a group must pick the same fresh prompt for it.
            generator = rank_agnostic_generator(self.args.seed, self.state.global_step, draw=1 + round_index)
            replacements = torch.randint(len(self.train_dataset), (dead.numel(),), generator=generator)
            rows = self._local_rows(dead, len(prompts))
            offset = self.accelerator.process_index * len(prompts)
            for row in rows:
                inputs[row] = dict(self.train_dataset[int(replacements[(offset + row) // group_size])])
                prompts[row] = inputs[row]["prompt"]
            self._regenerate(rows, prompts, inputs, generation, "none")
            refilled += int(dead.sum())
        metrics = self._metrics["train"]
        metrics["dapo/refilled_groups"].append(float(refilled))
        metrics["dapo/zero_std_group_frac_after"].append(dead.float().mean().item())

    def _regenerate(self, rows: list[int], prompts: list, inputs: list[dict], generation: Generation, mode: str):
        """Sample `rows` again (hinted per `mode`) and write them into `generation`.

        Every rank generates the same number of rows (padding with throwaway copies), so collective
        generation backends (vLLM server, DeepSpeed ZeRO-3 gathering) see matching calls on all ranks.
        """
        counts = self.accelerator.gather(torch.tensor([len(rows)], device=self.accelerator.device))
        padded_count = int(counts.max().item())
        self._count_generated(int(counts.sum().item()))
        padded_rows = rows + [rows[0] if rows else 0] * (padded_count - len(rows))
        polarities = [inputs[i]["polarity"] for i in padded_rows]
        if mode == "prompt":
            conversations = [
                hint_prompt(prompts[i], polarity, self.args.hint_template)
                for i, polarity in zip(padded_rows, polarities, strict=True)
            ]
        else:
            conversations = [prompts[i] for i in padded_rows]
        forced = [self._prefix_ids(p) if mode == "prefix" else [] for p in polarities]
        prompt_ids, images, multimodal_fields = self._tokenize_prompts(conversations)
        generation_ids = [list(p) + f for p, f in zip(prompt_ids, forced, strict=True)]
        new_ids, new_logprobs = self._generate_single_turn(generation_ids, images, multimodal_fields, 1)
        new_logprobs = new_logprobs if new_logprobs is not None else [[] for _ in new_ids]
        for k, row in enumerate(rows):
            # Generation ran with the full budget after the forced tokens; the whole completion must fit it.
            kept = max(self.max_completion_length - len(forced[k]), 0)
            new, logprobs = list(new_ids[k])[:kept], new_logprobs[k][:kept]
            text = self.processing_class.decode(forced[k] + new, skip_special_tokens=True)
            generation.replace(row, list(prompt_ids[k]), forced[k], new, logprobs, text)

    def _log_rewards_after_hint(self, total_after: torch.Tensor, pending: dict) -> None:
        metrics = self._metrics["train"]
        metrics["hint/reward_before"].append(torch.nanmean(pending["reward_before"]).item())
        metrics["hint/reward_after"].append(torch.nanmean(total_after[pending["row_hinted"]]).item())
        gained = group_has_variance(total_after, self.num_generations)[pending["hinted"]]
        metrics["hint/nonzero_std_after_frac"].append(gained.float().mean().item())
