"""Trainers: TRL subclasses that add what hintgrpo's recipes need."""

from hintgrpo.trainers.hint_grpo import HintGRPOTrainer
from hintgrpo.trainers.hint_grpo_config import HintGRPOConfig
from hintgrpo.trainers.weighted_sft import DataCollatorForWeightedLanguageModeling, WeightedSFTTrainer
from hintgrpo.trainers.weighted_sft_config import WeightedSFTConfig

__all__ = [
    "DataCollatorForWeightedLanguageModeling",
    "HintGRPOConfig",
    "HintGRPOTrainer",
    "WeightedSFTConfig",
    "WeightedSFTTrainer",
]
