"""`HintGRPOConfig`: TRL's GRPOConfig plus the hint options (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig
from trl.import_utils import is_vllm_available

HINT_MODES = ("none", "prefix", "prompt")
HINT_TRIGGERS = ("polarity", "reward")
HINT_SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class HintGRPOConfig(GRPOConfig):
    hint_mode: str = field(
        default="prefix",
        metadata={
            "help": "How hard groups are hinted: 'prefix' forces the gold discrimination opening at the start of the "
            "completion (masked out of the loss), 'prompt' adds a hint sentence to the user turn, 'none' is plain "
            "GRPO.",
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
            "training.",
            "choices": list(HINT_SCHEDULES),
        },
    )
    hint_prob_start: float = field(default=1.0, metadata={"help": "Probability of hinting a hard group at step 0."})
    hint_prob_end: float = field(
        default=1.0, metadata={"help": "Probability of hinting a hard group at the last step (non-constant schedules)."}
    )
    hint_template: str = field(
        default="Hint: the coarse result is {polarity}.",
        metadata={"help": "Sentence appended to the user turn in 'prompt' mode; {polarity} is the gold coarse result."},
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
    completion_budget: int | None = field(
        default=None,
        metadata={
            "help": "Stop training once this many completions have been generated (over all processes, hinted and "
            "refilled ones included), so methods that re-sample compare at equal generation cost."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        for name, value, allowed in (
            ("hint_mode", self.hint_mode, HINT_MODES),
            ("hint_trigger", self.hint_trigger, HINT_TRIGGERS),
            ("hint_schedule", self.hint_schedule, HINT_SCHEDULES),
            ("vllm_mode", self.vllm_mode, ("server", "colocate")),  # TRL does not check it
        ):
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not one of {list(allowed)}")
        for name in ("hint_prob_start", "hint_prob_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be a probability in [0, 1]")
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
