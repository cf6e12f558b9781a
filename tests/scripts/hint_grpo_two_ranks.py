"""Run by tests/test_hint_grpo_distributed.py under `accelerate launch` with 2 CPU processes.

Each rank holds one group of 4 completions; only the second prompt's group is hard, so only rank 1
regenerates while rank 0 must still join every collective call.
"""

import json
import sys

from datasets import Dataset
from transformers import set_seed

from hintgrpo.data.prompts import add_prompt
from hintgrpo.trainers import HintGRPOConfig, HintGRPOTrainer


def easy_first_prompt(completions, text, **kwargs):
    return [1.0 if t == "sample 0" else 0.0 for t in text]


def main(model_dir: str, output_dir: str) -> None:
    rows = [
        {"id": str(i), "text": f"sample {i}", "label": 1.0, "task": "emobank", "context": "", "polarity": "positive"}
        for i in range(2)
    ]
    config = HintGRPOConfig(
        output_dir=output_dir,
        use_cpu=True,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
        max_steps=2,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
        hint_trigger="reward",
        hint_reward_threshold=0.5,
        shuffle_dataset=False,
    )
    set_seed(0)
    trainer = HintGRPOTrainer(
        model=model_dir,
        args=config,
        train_dataset=Dataset.from_list(rows).map(add_prompt),
        reward_funcs=[easy_first_prompt],
    )
    trainer.train()
    if trainer.accelerator.is_main_process:
        logs = [log for log in trainer.state.log_history if "hint/hard_group_frac" in log]
        print("HINT_LOGS " + json.dumps(logs))


if __name__ == "__main__":
    main(*sys.argv[1:])
