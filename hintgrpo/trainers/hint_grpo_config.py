"""`HintGRPOConfig`: TRL's GRPOConfig plus the hint, dynamic-sampling and budget options."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig
from trl.import_utils import is_vllm_available

from hintgrpo.models.precision import training_bf16

HINT_MODES = ("none", "prefix", "prompt")
HINT_TRIGGERS = ("polarity", "reward")
HINT_SCHEDULES = ("constant", "linear", "cosine")
HINT_GROUPS = ("replace", "mix")
HINT_LOSS_CONTEXTS = ("hinted", "original")


@dataclass
class HintGRPOConfig(GRPOConfig):
    r"""
    Configuration class for [`HintGRPOTrainer`]: every option of TRL's `GRPOConfig`, plus the ones below.

    Parameters:
        > Parameters that control the hint

        hint_mode (`str`, *optional*, defaults to `"prefix"`):
            How hard groups are hinted: `"prefix"` forces the gold discrimination opening at the start of the
            completion, `"prompt"` adds `hint_template` to the user turn, `"none"` is plain GRPO.
        hint_trigger (`str`, *optional*, defaults to `"polarity"`):
            When a group is hard: `"polarity"` = no completion states the gold polarity; `"reward"` = the best total
            reward of the group is below `hint_reward_threshold`.
        hint_reward_threshold (`float`, *optional*, defaults to `1.0`):
            Total-reward threshold of the `"reward"` trigger.
        hint_schedule (`str`, *optional*, defaults to `"constant"`):
            How the probability of hinting a hard group moves from `hint_prob_start` to `hint_prob_end` over training
            (`"constant"`, `"linear"` or `"cosine"`). Training progress is generated completions / `completion_budget`
            when a budget is set, else step / max_steps.
        hint_prob_start (`float`, *optional*, defaults to `1.0`):
            Probability of hinting a hard group at the start of training.
        hint_prob_end (`float`, *optional*, defaults to `1.0`):
            Probability of hinting a hard group at the end of training (non-constant schedules).
        hint_template (`str`, *optional*, defaults to `"Hint: the coarse result is {polarity}."`):
            Sentence appended to the user turn in `"prompt"` mode; `{polarity}` is the gold coarse result.
        hint_group (`str`, *optional*, defaults to `"replace"`):
            What a hinted group trains on: `"replace"` = `num_generations` hinted completions instead of the failed
            ones; `"mix"` = `hint_rows` hinted completions and the other failed ones, whose negative advantages stay
            in the update.
        hint_rows (`int`, *optional*, defaults to `1`):
            Rows of a hinted group regenerated with the hint under `hint_group="mix"` (1 to `num_generations` - 1).
        hint_loss_context (`str`, *optional*, defaults to `"hinted"`):
            What a hinted row is trained as. `"hinted"`: the completion of the hinted context (the forced prefix is
            context without loss; in prompt mode the loss sees the hint sentence). `"original"`: the completion of the
            unhinted prompt (the forced prefix is trained; in prompt mode the hint is absent from the loss's prompt),
            an off-policy row trained with importance ratio 1 against the unhinted policy (see `HintGRPOTrainer`).
        hint_policy_shaping (`float`, *optional*):
            γ of LUFFY's policy shaping (arXiv 2504.14945; LUFFY uses 0.1) for the off-policy tokens of rows trained
            under `hint_loss_context="original"`: the forced opening in prefix mode, the whole completion in prompt
            mode. Their advantage is weighted by γ·π / (π + γ)², π the token's probability under the unhinted policy
            before the update, in place of the importance ratio 1. Unset: ratio 1.
        allow_label_hints (`bool`, *optional*, defaults to `False`):
            Allow hints on tasks whose coarse result determines the label (MELD sentiment, MUStARD), where the hint
            hands the model its answer. Refused at trainer init otherwise.

        > Parameters that control dynamic sampling and the generation budget

        dynamic_sampling (`bool`, *optional*, defaults to `False`):
            DAPO dynamic sampling: replace groups whose rewards are all equal (after any hint) with groups of fresh
            training prompts.
        max_refill_rounds (`int`, *optional*, defaults to `2`):
            Most rounds of dynamic-sampling refills per generation batch.
        hard_pool_predictions (`str`, *optional*):
            A `hintgrpo evaluate` predictions file on the training split: its rows whose stated polarity is not the
            gold one form a hard pool, from which a `hard_pool_share` of the prompts is drawn.
        hard_pool_share (`float`, *optional*, defaults to `0.5`):
            Probability that a prompt is drawn from the hard pool (the others come from the other training rows).
        completion_budget (`int`, *optional*):
            Generate at most this many completions (over all processes, hinted and refilled ones included), so
            methods that re-sample compare at equal generation cost. Training stops when no further generation batch
            fits, hints and refills are limited so that the run can end on the budget exactly, and the LR schedule
            runs over generated completions (a budget that is a multiple of the generation batch is met exactly).
    """

    hint_mode: str = field(
        default="prefix",
        metadata={
            "help": "How hard groups are hinted: 'prefix' forces the gold discrimination opening at the start of the "
            "completion, 'prompt' adds a hint sentence to the user turn, 'none' is plain GRPO.",
            "choices": list(HINT_MODES),
        },
    )
    hint_trigger: str = field(
        default="polarity",
        metadata={
            "help": "When a group is hard: 'polarity' = no completion states the gold polarity; 'reward' = the best "
            "total reward of the group is below hint_reward_threshold.",
            "choices": list(HINT_TRIGGERS),
        },
    )
    hint_reward_threshold: float = field(
        default=1.0, metadata={"help": "Total-reward threshold of the 'reward' trigger."}
    )
    hint_schedule: str = field(
        default="constant",
        metadata={
            "help": "How the probability of hinting a hard group moves from hint_prob_start to hint_prob_end over "
            "training (progress: generated completions / completion_budget when a budget is set, else step / "
            "max_steps).",
            "choices": list(HINT_SCHEDULES),
        },
    )
    hint_prob_start: float = field(
        default=1.0, metadata={"help": "Probability of hinting a hard group at the start of training."}
    )
    hint_prob_end: float = field(
        default=1.0,
        metadata={"help": "Probability of hinting a hard group at the end of training (non-constant schedules)."},
    )
    hint_template: str = field(
        default="Hint: the coarse result is {polarity}.",
        metadata={"help": "Sentence appended to the user turn in 'prompt' mode; {polarity} is the gold coarse result."},
    )
    hint_group: str = field(
        default="replace",
        metadata={
            "help": "What a hinted group trains on: 'replace' = num_generations hinted completions instead of the "
            "failed ones; 'mix' = hint_rows hinted completions and the other failed ones.",
            "choices": list(HINT_GROUPS),
        },
    )
    hint_rows: int = field(
        default=1,
        metadata={"help": "Rows of a hinted group regenerated with the hint under hint_group='mix'."},
    )
    hint_loss_context: str = field(
        default="hinted",
        metadata={
            "help": "What a hinted row is trained as: 'hinted' = the completion of the hinted context (forced prefix "
            "not trained, hint sentence in the loss's prompt); 'original' = the completion of the unhinted prompt "
            "(forced prefix trained, no hint sentence), an off-policy row with importance ratio 1.",
            "choices": list(HINT_LOSS_CONTEXTS),
        },
    )
    hint_policy_shaping: float | None = field(
        default=None,
        metadata={
            "help": "γ of LUFFY's policy shaping (LUFFY: 0.1) for the off-policy tokens of rows trained under "
            "hint_loss_context='original': their advantage is weighted by γ·π/(π+γ)², π the unhinted policy's "
            "probability of the token. Unset: importance ratio 1."
        },
    )
    allow_label_hints: bool = field(
        default=False,
        metadata={
            "help": "Allow hints on tasks whose coarse result determines the label (meld_sentiment, mustard), "
            "where the hint hands the model its answer."
        },
    )

    dynamic_sampling: bool = field(
        default=False,
        metadata={
            "help": "DAPO dynamic sampling: replace groups whose rewards are all equal (after any hint) with groups of "
            "fresh training prompts."
        },
    )
    max_refill_rounds: int = field(
        default=2, metadata={"help": "Most rounds of dynamic-sampling refills per generation batch."}
    )
    hard_pool_predictions: str | None = field(
        default=None,
        metadata={
            "help": "A `hintgrpo evaluate` predictions file on the training split: its rows with a wrong polarity "
            "form a hard pool, from which hard_pool_share of the prompts is drawn."
        },
    )
    hard_pool_share: float = field(
        default=0.5,
        metadata={"help": "Probability that a prompt is drawn from the hard pool (else from the other rows)."},
    )
    completion_budget: int | None = field(
        default=None,
        metadata={
            "help": "Generate at most this many completions (over all processes, hinted and refilled ones included): "
            "training stops when no further generation batch fits, hints and refills are limited so the run can end "
            "on the budget exactly, and the LR schedule runs over generated completions."
        },
    )

    def __post_init__(self):
        self.bf16 = training_bf16(self.bf16, self.fp16, self.use_cpu)
        super().__post_init__()
        for name, value, allowed in (
            ("hint_mode", self.hint_mode, HINT_MODES),
            ("hint_trigger", self.hint_trigger, HINT_TRIGGERS),
            ("hint_schedule", self.hint_schedule, HINT_SCHEDULES),
            ("hint_group", self.hint_group, HINT_GROUPS),
            ("hint_loss_context", self.hint_loss_context, HINT_LOSS_CONTEXTS),
            ("vllm_mode", self.vllm_mode, ("server", "colocate")),  # TRL does not check it
        ):
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not one of {list(allowed)}")
        if not 0.0 < self.hard_pool_share < 1.0:
            raise ValueError(f"hard_pool_share={self.hard_pool_share} must be strictly between 0 and 1")
        for name in ("hint_prob_start", "hint_prob_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be a probability in [0, 1]")
        if self.hint_group == "mix" and not 1 <= self.hint_rows < self.num_generations:
            raise ValueError(
                f"hint_rows={self.hint_rows} must be at least 1 and below num_generations={self.num_generations} "
                "with hint_group='mix' (all rows hinted is hint_group='replace')"
            )
        if self.hint_policy_shaping is not None:
            if self.hint_policy_shaping <= 0:
                raise ValueError(f"hint_policy_shaping={self.hint_policy_shaping} must be positive (LUFFY: 0.1)")
            if self.hint_loss_context != "original" or self.hint_mode == "none":
                raise ValueError(
                    "hint_policy_shaping shapes the off-policy tokens of hinted rows trained in the unhinted context: "
                    "it needs hint_loss_context='original' and a hint_mode"
                )
        if self.hint_mode == "prompt" and self.hint_group == "mix" and self.hint_loss_context == "hinted":
            # The failed rows would be trained after the plain prompt and the hinted ones after the hinted prompt,
            # with one group baseline over both: the hinted rows' advantage would reward the hint, not the answer.
            raise ValueError(
                "hint_mode='prompt' with hint_group='mix' and hint_loss_context='hinted' trains one group on two "
                "prompts under one baseline: use hint_loss_context='original' (every row after the unhinted prompt) "
                "or hint_group='replace'"
            )
        if self.completion_budget is not None and self.completion_budget < 1:
            raise ValueError(f"completion_budget={self.completion_budget} must be positive")
        if self.max_refill_rounds < 1:
            raise ValueError(f"max_refill_rounds={self.max_refill_rounds} must be at least 1")
        if "{polarity}" not in self.hint_template:
            raise ValueError(f"hint_template {self.hint_template!r} must contain '{{polarity}}'")
        # TRL only finds out after loading the model.
        if self.use_vllm and not is_vllm_available():
            raise ImportError(
                "use_vllm=True needs vLLM, which is not installed: pip install vllm "
                "(or pip install 'trl[vllm]' for a version TRL supports)"
            )
