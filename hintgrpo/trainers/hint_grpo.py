"""`HintGRPOTrainer`: TRL's GRPOTrainer that hints hard groups and re-samples them.

The hint step sits inside TRL's own generation hook (`_generate`): after a batch is generated it is scored, the
hard groups are found on the rewards gathered from every process, and their rows are regenerated with the hint.
TRL then scores the final completions and computes every advantage as usual, so a hinted group's advantages come
from its new rewards and `hint_mode="none"` is exactly TRL's GRPO. Each completion is scored once
(`RewardLedger`): TRL's final scoring only scores the rows regenerated since the last one, and what the reward
functions log describes the rows that are trained. `hint_group="replace"` regenerates every row of a hinted
group; `"mix"` regenerates its last `hint_rows` rows and keeps the failed others, whose negative advantages then
stay in the update (LUFFY, arXiv 2504.14945, mixes its off-policy traces into the on-policy group the same way).

What a hinted row is trained as (`hint_loss_context`):

- `"hinted"`: the completion of the context it was sampled in. Forced prefix tokens are returned with a
  zero `tool_mask`, which TRL keeps as context in the forward pass and leaves out of the loss; in prompt
  mode the loss's prompt holds the hint sentence. The row is on-policy for that context, so TRL's
  importance ratio, clipping and sampling log-probabilities apply unchanged.
- `"original"`: the completion of the unhinted prompt: the forced tokens are trained (`tool_mask` 1) and in
  prompt mode the loss's prompt is the original one. The row was not sampled from the policy on that prompt, so
  it is off-policy. Its importance ratio is TRL's π_θ(y|x) / π_old(y|x) on the unhinted context (π_old: the
  policy before the update). When generation and optimisation are aligned (`num_iterations=1`,
  `steps_per_generation` ≤ `gradient_accumulation_steps`) π_old is `per_token_logps.detach()`: the ratio is 1
  and clipping inactive, so the row gets a plain advantage-weighted ∇log π_θ(y|x) update, like LUFFY's
  off-policy term. Otherwise TRL computes π_old on the unhinted context before the first update, and from the
  second update on the row is clipped like any other. The hinted behaviour policy is never divided out: the
  sampling log-probabilities of tokens sampled under another context (every token in prompt mode, the forced
  ones in prefix mode) are dropped (NaN), which TRL's vLLM importance-sampling correction and off-policy mask
  read as ratio 1. Guide-GRPO's correction (arXiv 2506.13923), π_θ(y|x) over the hinted π_old(y|x, h), is not
  applied: it would shrink the update on exactly the tokens the unhinted policy finds unlikely, which are the
  ones the hint is there to teach. `hint_policy_shaping=γ` applies LUFFY's policy shaping to those off-policy
  tokens instead: their advantage is weighted by γ·π/(π+γ)² (π: the unhinted policy's probability of the token
  before the update), which bounds each token's step and still trains the unlikely ones. The share of off-policy
  tokens is logged (`hint/offpolicy_token_frac`), with their mean probability and weight under shaping.

DAPO-style dynamic sampling (`dynamic_sampling=True`) runs on the same hook: groups whose rewards are
all equal are replaced by groups of fresh prompts from the training set, up to `max_refill_rounds` times.

Every generated completion is counted (`completions/generated_total`, saved in each checkpoint), so methods that
re-sample can be compared at equal generation cost. Under `completion_budget` a run never generates more: it stops
after the step past which no generation batch fits (evaluating that final model when the run evaluates), hints and
refills are limited to the groups that keep the budget reachable exactly, and the LR schedule runs over generated
completions rather than steps. TRL's `completions/*` length metrics and `num_tokens` are recomputed on the rows as
they are trained.
"""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from dataclasses import dataclass

import torch
from transformers import TrainerCallback
from transformers.optimization import get_scheduler
from transformers.trainer_callback import ExportableState
from trl import GRPOTrainer

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
from hintgrpo.reasoning import parse_completion
from hintgrpo.rewards import completion_text
from hintgrpo.tasks import get_task
from hintgrpo.trainers.hint_grpo_config import HintGRPOConfig
from hintgrpo.trainers.reward_ledger import RewardLedger
from hintgrpo.trainers.sampling import HardPoolSampler, ShuffledRows, hard_pool_ids, hard_rows


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

    def replace(
        self, row: int, prompt_ids: list, forced: list, new: list, logprobs: list, text: str, train_forced: bool
    ) -> None:
        """Row `row` becomes `forced + new` after `prompt_ids`; the forced tokens are context unless `train_forced`."""
        if forced and not train_forced and self.tool_mask is None:
            self.tool_mask = [[1] * len(ids) for ids in self.completion_ids]
        self.prompt_ids[row] = prompt_ids
        self.completion_ids[row] = forced + new
        if self.tool_mask is not None:
            self.tool_mask[row] = [int(train_forced)] * len(forced) + [1] * len(new)
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


class GeneratedCompletions(TrainerCallback, ExportableState):
    """The completions a run has generated over all processes, saved in every checkpoint's trainer state."""

    def __init__(self, count: int = 0):
        self.count = count

    def state(self) -> dict:
        return {"args": {"count": self.count}, "attributes": {}}


class HintGRPOTrainer(GRPOTrainer):
    """GRPO with discrimination hints for hard groups, optional dynamic sampling, and per-sample `weight`s."""

    _tag_names = ["trl", "grpo", "hintgrpo", "hint-grpo"]
    _name = "Hint-GRPO"
    _paper = {
        "title": "Boosting MLLM Reasoning with Text-Debiased Hint-GRPO",
        "id": "2503.23905",
        # docstyle-ignore
        "citation": textwrap.dedent("""\
            @inproceedings{huang2025hintgrpo,
                title        = {{Boosting MLLM Reasoning with Text-Debiased Hint-GRPO}},
                author       = {Qihan Huang and Weilong Dai and Jinlong Liu and Wanggui He and Hao Jiang and Mingli Song
                                and Jingyuan Chen and Chang Yao and Jie Song},
                booktitle    = {International Conference on Computer Vision (ICCV)},
                year         = 2025,
                eprint       = {arXiv:2503.23905},
            }
            @article{shao2024deepseekmath,
                title        = {{DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models}},
                author       = {Zhihong Shao and Peiyi Wang and Qihao Zhu and Runxin Xu and Junxiao Song
                                and Mingchuan Zhang and Y. K. Li and Y. Wu and Daya Guo},
                year         = 2024,
                eprint       = {arXiv:2402.03300},
            }"""),
    }

    # Whether the trainer moves each row's media into its prompts itself (MultimodalHintGRPOTrainer): refilled rows
    # then get their media, and the loss's media inputs follow the prompts as they are trained.
    carries_media = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, HintGRPOConfig):
            raise TypeError(f"HintGRPOTrainer needs a HintGRPOConfig, got {type(self.args).__name__}")
        if self._resamples and (self.tools or self.rollout_func is not None):
            raise ValueError("hints and dynamic sampling are not supported with tools or a custom rollout_func")
        self._check_dataset(set(getattr(self.train_dataset, "column_names", None) or []))
        self._hard_rows = None
        if self.args.hard_pool_predictions is not None:
            ids = [str(sample_id) for sample_id in self.train_dataset["id"]]
            pool = hard_pool_ids(self.args.hard_pool_predictions)
            self._hard_rows = hard_rows(ids, pool, self.args.hard_pool_predictions)
        self._batch_inputs: list[dict] | None = None
        self._pending_hint: dict | None = None
        self._ledger: RewardLedger | None = None  # the rewards of a batch that may be resampled, each row scored once
        self._offpolicy_tokens: dict[int, int] = {}  # local row -> its leading tokens sampled under the hint
        self._dead_rows: list[int] = []  # local rows of groups still without reward variance after the refills
        self._refills: ShuffledRows | None = None
        self._batch_rows = 0  # completions of one generation batch over all processes, hints aside
        self.add_callback(GeneratedCompletions())

    @property
    def generated_completions(self) -> int:
        """Completions generated so far over all processes, hinted and refilled ones included."""
        return self._completion_counter().count

    @generated_completions.setter
    def generated_completions(self, count: int) -> None:
        self._completion_counter().count = count

    def _completion_counter(self) -> GeneratedCompletions:
        # Looked up each time: restoring callback states from a checkpoint replaces the instance.
        return next(cb for cb in self.callback_handler.callbacks if isinstance(cb, GeneratedCompletions))

    def _check_dataset(self, columns: set[str]) -> None:
        """Refuse the option combinations the training set makes wrong (nothing is known of a streamed dataset)."""
        args, has_images = self.args, bool(columns & {"image", "images"})
        if args.hint_mode != "none" and columns:
            if "polarity" not in columns:
                raise ValueError(f"hint_mode={args.hint_mode!r} needs a 'polarity' column (the gold coarse result)")
            if "task" not in columns:
                raise ValueError(f"hint_mode={args.hint_mode!r} needs a 'task' column (to parse each polarity)")
            if not args.allow_label_hints and "task" in columns:
                revealing = sorted(t for t in set(self.train_dataset["task"]) if hint_reveals_label(get_task(t)))
                if revealing:
                    raise ValueError(
                        f"on {revealing} the coarse result a hint states is the label, so the hint is the answer: "
                        "use hint_mode='none', or allow_label_hints=True to hint anyway"
                    )
        if args.hint_mode == "prefix" and "polarity" in columns:
            self._check_prefix_fits(set(self.train_dataset["polarity"]))
        if args.hint_policy_shaping is not None and has_images:
            raise ValueError(
                "hint_policy_shaping is not supported with an image column (its forward pass is text-only)"
            )
        if args.dynamic_sampling and not self.carries_media and has_images:
            # TRL puts a row's images into its prompt before generation; a refilled row would come without them.
            raise ValueError(
                "dynamic_sampling with an image column needs MultimodalHintGRPOTrainer "
                "(recipes/hint_grpo.py --modality_route native), which gives refilled rows their images"
            )
        if args.hint_mode == "prompt" and args.hint_loss_context == "hinted" and not self.carries_media and has_images:
            # TRL builds the loss's image inputs (token type ids included) from the unhinted prompts.
            raise ValueError(
                "hint_mode='prompt' with an image column trains on the hinted prompt, whose image inputs TRL does "
                "not build: use hint_loss_context='original' (the loss sees the unhinted prompt) or "
                "MultimodalHintGRPOTrainer (recipes/hint_grpo.py --modality_route native)"
            )

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

    def _get_train_sampler(self, dataset=None):
        if self._hard_rows is None:
            return super()._get_train_sampler(dataset)
        return HardPoolSampler(  # the dataset's rows in their order (transformers may have dropped columns)
            data_source=self.train_dataset if dataset is None else dataset,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            hard_rows=self._hard_rows,
            hard_share=self.args.hard_pool_share,
            seed=self.args.seed,
        )

    @property
    def _resamples(self) -> bool:
        return self.args.hint_mode != "none" or self.args.dynamic_sampling

    @property
    def _generation_batch(self) -> int:
        """Index of the current generation batch (micro-step), the same on every rank and after a resume.

        Several generation batches can fall in one optimizer step (gradient accumulation), so the step alone
        would repeat the hint and refill draws; TRL resumes at a step boundary with its micro-step count at 0.
        """
        accumulation = self.args.gradient_accumulation_steps
        return self.state.global_step * accumulation + self._step % accumulation

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """Under a completion budget the LR schedule runs over generated completions, so it ends with the budget
        however many steps the hints and refills take; a warmup given in steps counts full steps of completions."""
        budget = self.args.completion_budget
        if budget is None or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.args.warmup_steps >= 1:
            per_step = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps
            warmup = int(self.args.warmup_steps) * per_step * self.accelerator.num_processes
        else:
            warmup = self.args.get_warmup_steps(budget)
        scheduler = get_scheduler(
            self.args.lr_scheduler_type,
            optimizer=optimizer or self.optimizer,
            num_warmup_steps=warmup,
            num_training_steps=budget,
            scheduler_specific_kwargs=self.args.lr_scheduler_kwargs,
        )
        if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            raise ValueError(
                f"lr_scheduler_type={self.args.lr_scheduler_type!r} cannot follow completion_budget: use a "
                "schedule over steps (linear, cosine, constant, ...) or no completion_budget"
            )
        scheduler.lr_lambdas = [lambda _, f=f: f(self.generated_completions) for f in scheduler.lr_lambdas]
        self.lr_scheduler, self._created_lr_scheduler = scheduler, True
        return scheduler

    def _budget_left(self) -> float:
        budget = self.args.completion_budget
        return math.inf if budget is None else budget - self.generated_completions

    def _training_progress(self) -> float:
        """How far training is, 0 to 1: by generated completions under a completion budget, else by steps."""
        if self.args.completion_budget is not None:
            return self.generated_completions / self.args.completion_budget
        return self.state.global_step / self.state.max_steps if self.state.max_steps > 0 else 0.0

    def _generate_and_score_completions(self, inputs):
        self._batch_inputs, self._offpolicy_tokens, self._dead_rows = inputs, {}, []
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._batch_inputs, self._ledger = None, None
        if "weight" in inputs[0]:
            weights = torch.tensor([float(x["weight"]) for x in inputs], device=output["advantages"].device)
            output["advantages"] = output["advantages"] * weights
            # TRL logged the whole batch's unweighted advantages last; the completions table shows the trained ones.
            logged, scaled = self._logs["advantages"], self.accelerator.gather(output["advantages"]).tolist()
            count = min(len(scaled), len(logged))
            for _ in range(count):
                logged.pop()
            logged.extend(scaled[len(scaled) - count :])
        if self.model.training and self.args.hint_mode != "none" and self.args.hint_loss_context == "original":
            self._train_offpolicy_tokens(output)
        if self.model.training and self.args.dynamic_sampling:
            self._drop_dead_groups(output)
        return output

    def _drop_dead_groups(self, output: dict) -> None:
        """Leave the groups that still have no reward variance out of the loss and of its token count (DAPO).

        Their advantages are 0, so they add nothing to the loss, but their tokens would still count in the `dapo`
        and `bnpo` normalisers and shrink every other row's update. They stay in the batch as context.
        """
        completion_mask = output["completion_mask"]
        tool_mask = output.get("tool_mask")
        tool_mask = torch.ones_like(completion_mask) if tool_mask is None else tool_mask.clone()
        tool_mask[self._dead_rows] = 0
        output["tool_mask"] = tool_mask
        output["num_items_in_batch"] = self.accelerator.gather((completion_mask * tool_mask).sum()).sum()

    def _train_offpolicy_tokens(self, output: dict) -> None:
        """Log the share of trained tokens that are off-policy (sampled under the hint, trained without it) and, under
        `hint_policy_shaping`, weight their advantages by LUFFY's shaping (the advantages become per token)."""
        trained = output["completion_mask"].bool()
        if "tool_mask" in output:
            trained = trained & output["tool_mask"].bool()
        offpolicy = torch.zeros_like(trained)
        for row, count in self._offpolicy_tokens.items():
            offpolicy[row, :count] = True
        offpolicy &= trained
        counts = torch.stack([offpolicy.sum(), trained.sum()]).float()
        offpolicy_count, trained_count = self.accelerator.gather(counts).view(-1, 2).sum(dim=0).tolist()
        metrics = self._metrics["train"]
        metrics["hint/offpolicy_token_frac"].append(offpolicy_count / max(trained_count, 1.0))
        gamma = self.args.hint_policy_shaping
        if gamma is None or offpolicy_count == 0:  # the same on every rank, so the forward below is collective
            return
        logps = output.get("old_per_token_logps")
        if logps is None:  # generation and optimisation are aligned: the policy now is the one before the update
            input_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
            attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
            with torch.no_grad():
                logps, _, _ = self._get_per_token_logps_and_entropies(
                    self.model, input_ids, attention_mask, output["completion_ids"].size(1),
                    batch_size=self.args.per_device_train_batch_size,
                )  # fmt: skip
        weights = policy_shaping_weights(logps, gamma)
        advantages = output["advantages"].unsqueeze(1).repeat(1, trained.size(1))
        advantages[offpolicy] = advantages[offpolicy] * weights[offpolicy]
        output["advantages"] = advantages
        sums = torch.stack([logps[offpolicy].exp().sum(), weights[offpolicy].sum()])
        probability_sum, weight_sum = self.accelerator.gather(sums).view(-1, 2).sum(dim=0).tolist()
        metrics["hint/offpolicy_prob_mean"].append(probability_sum / offpolicy_count)
        metrics["hint/offpolicy_weight_mean"].append(weight_sum / offpolicy_count)

    def _generate(self, prompts: list):
        if not self.model.training:
            return super()._generate(prompts)
        self._restore_generated_count()
        progress, tokens_seen = self._training_progress(), self.state.num_input_tokens_seen
        generated = super()._generate(prompts)
        self._batch_rows = len(prompts) * self.accelerator.num_processes
        self._count_generated(self._batch_rows)
        if not self._resamples or self._batch_inputs is None:
            return generated
        generation = Generation(*(list(x) if isinstance(x, list) else x for x in generated))
        self._ledger = RewardLedger(len(prompts), len(self.reward_funcs), self.accelerator.device)
        if self.args.hint_mode != "none":
            self._hint_hard_groups(prompts, self._batch_inputs, generation, progress)
        if self.args.dynamic_sampling:
            self._refill_zero_variance_groups(prompts, self._batch_inputs, generation)
        self._log_trained_lengths(generation, tokens_seen)
        return generation.as_tuple()

    def _restore_generated_count(self) -> None:
        """On a resumed run, the count saved in the checkpoint's trainer state."""
        saved = self.state.stateful_callbacks.setdefault(GeneratedCompletions.__name__, GeneratedCompletions().state())
        if self.generated_completions == 0:
            self.generated_completions = int(saved["args"]["count"])

    def _count_generated(self, count: int) -> None:
        self.generated_completions += count
        if self._budget_left() < self._batch_rows:
            # No further generation batch fits the budget: this step is the last (every process counts the same).
            self.control.should_training_stop = True
            # transformers evaluates the last step of a run that ends at max_steps; this one ends here.
            self.control.should_evaluate = self.args.eval_strategy != "no"

    def _log_trained_lengths(self, generation: Generation, tokens_seen: int) -> None:
        """Redo TRL's length metrics and token count, which `_generate` took before rows were replaced."""
        device = self.accelerator.device
        prompt_lengths = torch.tensor([len(ids) for ids in generation.prompt_ids], device=device)
        if generation.tool_mask is not None:  # TRL counts the trained (tool_mask 1) tokens only
            lengths = torch.tensor([sum(mask) for mask in generation.tool_mask], device=device)
        else:
            lengths = torch.tensor([len(ids) for ids in generation.completion_ids], device=device)
        eos_and_pad = [*self.eos_token_ids, self._tokenizer.pad_token_id]
        truncated = torch.tensor([ids[-1] not in eos_and_pad for ids in generation.completion_ids], device=device)
        prompt_lengths, lengths = self.accelerator.gather(prompt_lengths), self.accelerator.gather(lengths).float()
        truncated = self.accelerator.gather(truncated)
        self.state.num_input_tokens_seen = tokens_seen + (prompt_lengths.sum() + lengths.sum()).item()
        terminated = lengths[~truncated] if not truncated.all() else torch.zeros(1, device=device)
        metrics = self._metrics["train"]
        metrics["num_tokens"] = [self.state.num_input_tokens_seen]
        for name, value in (
            ("mean_length", lengths.mean()),
            ("min_length", lengths.min()),
            ("max_length", lengths.max()),
            ("clipped_ratio", truncated.float().mean()),
            ("mean_terminated_length", terminated.mean()),
            ("min_terminated_length", terminated.min()),
            ("max_terminated_length", terminated.max()),
        ):
            metrics[f"completions/{name}"][-1] = value.item()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training:  # a running total: TRL would average it over the logging window
            logs["completions/generated_total"] = float(self.generated_completions)
        super().log(logs, start_time)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        if self._ledger is None:  # a batch that is not resampled: TRL's scoring, once
            return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        # TRL's scoring of the final batch: only the rows regenerated since the last scoring are scored here.
        rewards_per_func = self._scored_rewards(inputs, prompts, completions, completion_ids_list)
        for column, values in self._ledger.extras.items():
            self._pending_extra_logs[column].extend(values)
        for name, value in self._ledger.logged_metrics().items():
            self._pending_metrics[name].append(value)
        return rewards_per_func

    def _scored_rewards(self, inputs, prompts, completions, completion_ids) -> torch.Tensor:
        """Rewards per function of every row of the global batch; rows the ledger holds are not scored again."""
        self._score_unscored_rows(inputs, prompts, completions, completion_ids)
        rewards_per_func = self.accelerator.gather(self._ledger.rewards)
        if self._pending_hint is not None:  # the first scoring since the hinted rows were regenerated
            self._log_rewards_after_hint(self._total_rewards(rewards_per_func), self._pending_hint)
            self._pending_hint = None
        return rewards_per_func

    def _score_unscored_rows(self, inputs, prompts, completions, completion_ids) -> None:
        """Score the rows without a reward in the ledger, keeping what the reward functions log for them.

        TRL's scoring gathers the rewards of every process, which needs the same row count on each: a process with
        fewer rows to score pads them with copies of one row and drops their results.
        """
        rows = self._ledger.unscored()
        padded, _ = self._padded_to_busiest_rank(rows)
        padded_count = len(padded)
        if padded_count == 0:
            return
        pending = self._pending_extra_logs, self._pending_metrics
        self._pending_extra_logs, self._pending_metrics = defaultdict(list), defaultdict(list)
        try:
            gathered = super()._calculate_rewards(
                [inputs[i] for i in padded],
                [prompts[i] for i in padded],
                [completions[i] for i in padded],
                [completion_ids[i] for i in padded],
            )
            extras, metrics = self._pending_extra_logs, self._pending_metrics
        finally:
            self._pending_extra_logs, self._pending_metrics = pending
        own = gathered.view(self.accelerator.num_processes, padded_count, -1)[self.accelerator.process_index]
        own_extras = {column: values[: len(rows)] for column, values in extras.items()}
        self._ledger.record(rows, own[: len(rows)], own_extras, metrics)

    def _total_rewards(self, rewards_per_func: torch.Tensor) -> torch.Tensor:
        """TRL's weighted sum of the reward functions; NaN where no function scored the row."""
        weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
        total = (rewards_per_func * weights).nansum(dim=1)
        total[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
        return total

    def _score(self, prompts: list, inputs: list[dict], generation: Generation) -> torch.Tensor:
        """Total reward of every row of the global batch (gathered from all processes)."""
        completions, completion_ids = generation.completions, generation.completion_ids
        return self._total_rewards(self._scored_rewards(inputs, prompts, completions, completion_ids))

    def _local_rows(self, rows: torch.Tensor, batch_size: int) -> list[int]:
        """Indices into this process's rows of the flagged rows of the global batch (a group may span processes)."""
        offset = self.accelerator.process_index * batch_size
        return [i for i in range(batch_size) if rows[offset + i]]

    def _hint_hard_groups(self, prompts: list, inputs: list[dict], generation: Generation, progress: float) -> None:
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
            progress, self.args.hint_schedule, self.args.hint_prob_start, self.args.hint_prob_end
        )
        hinted = sample_hinted_groups(hard, probability, self.args.seed, self._generation_batch)
        rows_per_group = group_size if self.args.hint_group == "replace" else self.args.hint_rows
        affordable = groups_within_budget(int(hinted.sum()), rows_per_group, self._budget_left(), self._batch_rows)
        hinted = first_groups(hinted, affordable)

        metrics = self._metrics["train"]
        metrics["hint/hard_group_frac"].append(hard.float().mean().item())
        metrics["hint/hinted_group_frac"].append(hinted.float().mean().item())
        metrics["hint/probability"].append(probability)
        zero_std_before = ~group_has_variance(total, group_size)
        metrics["hint/zero_std_group_frac_before"].append(zero_std_before.float().mean().item())
        if not hinted.any():  # the same answer on every rank: all skip the collective calls below together
            return
        rows = hinted_rows(hinted, group_size, self.args.hint_group, self.args.hint_rows)
        self._regenerate(self._local_rows(rows, len(prompts)), prompts, inputs, generation, self.args.hint_mode)
        self._pending_hint = {"hinted": hinted, "rows": rows, "reward_before": total[rows]}

    def _refill_zero_variance_groups(self, prompts: list, inputs: list[dict], generation: Generation) -> None:
        """DAPO dynamic sampling: swap groups without reward variance for groups of fresh training prompts."""
        group_size, refilled = self.num_generations, 0
        for round_index in range(self.args.max_refill_rounds + 1):
            dead = ~group_has_variance(self._score(prompts, inputs, generation), group_size)
            if round_index == self.args.max_refill_rounds or not dead.any():
                break
            affordable = groups_within_budget(int(dead.sum()), group_size, self._budget_left(), self._batch_rows)
            if affordable == 0:
                break
            dead = first_groups(dead, affordable)
            # Every process that holds part of a group must pick the same fresh prompt for it: all draw, in group
            # order, from the same stream of training rows (without replacement until every row has been drawn).
            replacements = {group: self._refill_rows().next() for group in dead.nonzero().flatten().tolist()}
            rows = self._local_rows(dead.repeat_interleave(group_size), len(prompts))
            offset = self.accelerator.process_index * len(prompts)
            for row in rows:
                inputs[row] = dict(self.train_dataset[replacements[(offset + row) // group_size]])
                prompts[row] = inputs[row]["prompt"]
            self._regenerate(rows, prompts, inputs, generation, "none")
            refilled += int(dead.sum())
        self._dead_rows = self._local_rows(dead.repeat_interleave(group_size), len(prompts))
        metrics = self._metrics["train"]
        metrics["dapo/refilled_groups"].append(float(refilled))
        metrics["dapo/zero_std_group_frac_after"].append(dead.float().mean().item())

    def _refill_rows(self) -> ShuffledRows:
        if self._refills is None:
            generator = torch.Generator().manual_seed(self.args.seed)  # the same stream on every rank
            self._refills = ShuffledRows(list(range(len(self.train_dataset))), generator)
        return self._refills

    def _padded_to_busiest_rank(self, rows: list[int]) -> tuple[list[int], int]:
        """`rows` padded with copies of one row to the most any rank holds, and the rows of all ranks together."""
        counts = self.accelerator.gather(torch.tensor([len(rows)], device=self.accelerator.device))
        padded = rows + [rows[0] if rows else 0] * (int(counts.max().item()) - len(rows))
        return padded, int(counts.sum().item())

    def _regenerate(self, rows: list[int], prompts: list, inputs: list[dict], generation: Generation, mode: str):
        """Sample `rows` again (hinted per `mode`) and write them into `generation`.

        Every rank generates the same number of rows (padding with throwaway copies), so collective
        generation backends (vLLM server, DeepSpeed ZeRO-3 gathering) see matching calls on all ranks.
        """
        padded_rows, total = self._padded_to_busiest_rank(rows)
        self._count_generated(total)
        # A refill ("none") needs no polarity, and the dataset may have none.
        polarities = [inputs[i]["polarity"] if mode != "none" else None for i in padded_rows]
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
        original = mode != "none" and self.args.hint_loss_context == "original"
        for k, row in enumerate(rows):
            # Generation ran with the full budget after the forced tokens; the whole completion must fit it.
            kept = max(self.max_completion_length - len(forced[k]), 0)
            new, logprobs = list(new_ids[k])[:kept], new_logprobs[k][:kept]
            text = self.processing_class.decode(forced[k] + new, skip_special_tokens=True)
            if original:
                # Trained after the row's unhinted prompt (its ids from the first generation). In prompt mode
                # every token was sampled after the hint sentence: none has a sampling log-probability under it.
                row_prompt_ids = generation.prompt_ids[row]
                if mode == "prompt":
                    logprobs = [None] * len(logprobs)
            else:
                row_prompt_ids = list(prompt_ids[k])
            if original:  # the tokens sampled under another context than the one they are trained in
                self._offpolicy_tokens[row] = len(forced[k]) if mode == "prefix" else len(forced[k]) + len(new)
            else:
                self._offpolicy_tokens.pop(row, None)
            generation.replace(row, row_prompt_ids, forced[k], new, logprobs, text, train_forced=original)
            self._ledger.forget(row)

    def _log_rewards_after_hint(self, total_after: torch.Tensor, pending: dict) -> None:
        metrics = self._metrics["train"]
        metrics["hint/reward_before"].append(torch.nanmean(pending["reward_before"]).item())
        metrics["hint/reward_after"].append(torch.nanmean(total_after[pending["rows"]]).item())
        gained = group_has_variance(total_after, self.num_generations)[pending["hinted"]]
        metrics["hint/nonzero_std_after_frac"].append(gained.float().mean().item())
