"""`WeightedSFTConfig`: TRL's SFTConfig plus the loss weight of decision tokens, with bf16 only where it is native."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trl import SFTConfig

from hintgrpo.models.precision import training_bf16


@dataclass
class WeightedSFTConfig(SFTConfig):
    decision_token_weight: float = field(
        default=1.0,
        metadata={
            "help": "Loss weight of the completion tokens that state a decision (numbers, polarity and label words) "
            "relative to the other completion tokens; 1.0 is TRL's SFT loss."
        },
    )

    def __post_init__(self):
        self.bf16 = training_bf16(self.bf16, self.fp16, self.use_cpu)
        super().__post_init__()
        if not (math.isfinite(self.decision_token_weight) and self.decision_token_weight > 0):
            raise ValueError(f"decision_token_weight={self.decision_token_weight} must be finite and positive")
