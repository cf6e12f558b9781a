"""Run by tests/test_hint_grpo_distributed.py under `accelerate launch` with 2 CPU processes.

First run: each rank holds one group of 4 completions; only the second prompt's group is hard, so only
rank 1 regenerates while rank 0 must still join every collective call. Second run (`hint_group="mix"`):
one group of 4 spans both ranks (2 rows each) and only its last row, on rank 1, is hinted. Third run (DAPO):
three groups of 4 over 2 ranks of 6 rows, the middle one split across them; every group stays zero-variance, so
each is refilled, and both halves of the split group must get the same fresh prompt.
"""

import json
import sys

from datasets import Dataset
from transformers import set_seed

from hintgrpo.data.prompts import add_prompt
from hintgrpo.rewards import get_reward_funcs
from hintgrpo.trainers import HintGRPOConfig, HintGRPOTrainer


def easy_first_prompt(completions, text, **kwargs):
    return [1.0 if t == "sample 0" else 0.0 for t in text]


def constant(completions, **kwargs):
    return [1.0] * len(completions)


def train(model_dir: str, output_dir: str, reward_funcs: list, rows: int = 2, **options) -> HintGRPOTrainer:
    rows = [
        {"id": str(i), "text": f"sample {i}", "label": 1.0, "task": "emobank", "context": "", "polarity": "positive"}
        for i in range(rows)
    ]
    config = HintGRPOConfig(
        output_dir=output_dir,
        use_cpu=True,
        num_generations=4,
        max_completion_length=16,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
        shuffle_dataset=False,
        **({"max_steps": 2} | options),
    )
    set_seed(0)
    trainer = HintGRPOTrainer(
        model=model_dir,
        args=config,
        train_dataset=Dataset.from_list(rows).map(add_prompt),
        reward_funcs=reward_funcs,
    )
    trainer.train()
    return trainer


def hint_logs(trainer: HintGRPOTrainer) -> list[dict]:
    return [log for log in trainer.state.log_history if "hint/hard_group_frac" in log]


def main(model_dir: str, output_dir: str) -> None:
    one_hard_rank = train(
        model_dir,
        f"{output_dir}/one_hard_rank",
        [easy_first_prompt],
        per_device_train_batch_size=4,
        hint_trigger="reward",
        hint_reward_threshold=0.5,
    )
    # A random model states no polarity: every group is hard, and the hinted row alone states the gold one.
    mixed = train(
        model_dir,
        f"{output_dir}/mix",
        get_reward_funcs(["polarity"]),
        per_device_train_batch_size=2,
        hint_group="mix",
        hint_rows=1,
    )
    refilled = train(
        model_dir,
        f"{output_dir}/dapo",
        [constant],
        rows=12,
        per_device_train_batch_size=6,
        max_steps=1,
        hint_mode="none",
        dynamic_sampling=True,
        max_refill_rounds=2,
    )
    if mixed.accelerator.is_main_process:
        print("DAPO_PROMPTS " + json.dumps([prompt[-1]["content"] for prompt in refilled._logs["prompt"]]))
        print("HINT_LOGS " + json.dumps(hint_logs(one_hard_rank)))
        print("MIX_LOGS " + json.dumps(hint_logs(mixed)))
        print("MIX_ADVANTAGES " + json.dumps(list(mixed._logs["advantages"])))


if __name__ == "__main__":
    main(*sys.argv[1:])
