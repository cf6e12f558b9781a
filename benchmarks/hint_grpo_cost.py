"""Hint-GRPO against vanilla GRPO at equal batch, in one run: step time and zero-variance groups.

    python benchmarks/hint_grpo_cost.py --config recipes/configs/demo/hint_grpo.yaml \
        --max_steps 8 --per_device_train_batch_size 16 --output_dir outputs/benchmarks/hint_grpo_cost

Each arm (`--arms none prefix`) trains from the same checkpoint with the same seed and batch. Reported per arm:
mean step time (the first `--untimed_steps` steps excluded), the fraction of groups whose rewards have no variance
(TRL's `frac_reward_zero_std`, computed on the rewards the loss sees, i.e. after hinting) and the fraction of hard
groups h. The claims checked are step_time(hint) / step_time(none) <= 1 + 1.2 h, which holds only when hard groups
alone are regenerated, and zero_std(hint) <= zero_std(none) / 2.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from transformers import TrainerCallback
from trl import ModelConfig, TrlParser

from hintgrpo.configs import GRPOScriptArguments
from hintgrpo.rewards import get_reward_funcs
from hintgrpo.trainers import HintGRPOConfig, HintGRPOTrainer
from hintgrpo.trainers.hint_grpo_config import HINT_MODES
from hintgrpo.training import model_init_kwargs, model_path, prompt_dataset


@dataclass
class BenchmarkArguments:
    arms: list[str] = field(
        default_factory=lambda: ["none", "prefix"],
        metadata={"help": "hint_mode of each arm; the first is the base.", "choices": list(HINT_MODES)},
    )
    untimed_steps: int = field(default=1, metadata={"help": "First steps of each arm left out of the step time."})


class StepRecorder(TrainerCallback):
    """Wall time and logged metrics of every optimizer step."""

    def __init__(self):
        self.steps: list[dict] = []
        self._started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append({"step": state.global_step, "seconds": time.perf_counter() - self._started})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.steps and logs and "loss" in logs:
            self.steps[-1].update(logs)


def run_arm(
    hint_mode: str, script_args: GRPOScriptArguments, training_args: HintGRPOConfig, model_args: ModelConfig
) -> list[dict]:
    # A parsed config is copied, not rebuilt: GRPOConfig.__post_init__ rejects its own derived fields.
    arm_args = copy.deepcopy(training_args)
    arm_args.hint_mode = hint_mode
    arm_args.output_dir = str(Path(training_args.output_dir) / hint_mode)
    arm_args.save_strategy = "no"
    arm_args.logging_steps = 1
    arm_args.report_to = []
    arm_args.model_init_kwargs = model_init_kwargs(model_args, arm_args)
    recorder = StepRecorder()
    trainer = HintGRPOTrainer(
        model=model_path(model_args, arm_args),
        reward_funcs=get_reward_funcs(script_args.reward_funcs, script_args.regression_tau),
        args=arm_args,
        train_dataset=prompt_dataset(script_args),
        callbacks=[recorder],
    )
    trainer.train()
    return recorder.steps


def mean_logged(steps: list[dict], key: str) -> float | None:
    """Mean over the steps that logged `key` (hint metrics are only logged on steps with hard groups)."""
    values = [s[key] for s in steps if key in s]
    return mean(values) if values else None


def summarize(steps: list[dict], untimed_steps: int) -> dict:
    timed = steps[untimed_steps:] or steps
    return {
        "steps": len(steps),
        "step_seconds": mean(s["seconds"] for s in timed),
        "zero_std_group_frac": mean(s["frac_reward_zero_std"] for s in steps),
        "hard_group_frac": mean(s.get("hint/hard_group_frac", 0.0) for s in steps),
        "zero_std_group_frac_before_hint": mean_logged(steps, "hint/zero_std_group_frac_before"),
        "reward_before_hint": mean_logged(steps, "hint/reward_before"),
        "reward_after_hint": mean_logged(steps, "hint/reward_after"),
        "hinted_groups_gaining_variance": mean_logged(steps, "hint/nonzero_std_after_frac"),
    }


def compare(base: dict, arm: dict) -> dict:
    h = arm["hard_group_frac"]
    ratio = arm["step_seconds"] / base["step_seconds"]
    return {
        "step_time_ratio": ratio,
        "step_time_bound": 1 + 1.2 * h,
        "step_time_ok": ratio <= 1 + 1.2 * h,
        "zero_std_ratio": arm["zero_std_group_frac"] / base["zero_std_group_frac"]
        if base["zero_std_group_frac"]
        else None,
        "zero_std_ok": arm["zero_std_group_frac"] <= base["zero_std_group_frac"] / 2,
    }


def markdown(summaries: dict[str, dict], comparisons: dict[str, dict]) -> str:
    lines = [
        "| hint_mode | steps | s/step | hard groups h | zero-std groups | step-time ratio (bound 1+1.2h) |",
        "|---|---|---|---|---|---|",
    ]
    for arm, s in summaries.items():
        c = comparisons.get(arm)
        ratio = f"{c['step_time_ratio']:.3f} ({c['step_time_bound']:.3f})" if c else "1 (base)"
        lines.append(
            f"| {arm} | {s['steps']} | {s['step_seconds']:.1f} | {s['hard_group_frac']:.3f} "
            f"| {s['zero_std_group_frac']:.3f} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main(
    bench_args: BenchmarkArguments,
    script_args: GRPOScriptArguments,
    training_args: HintGRPOConfig,
    model_args: ModelConfig,
) -> dict:
    steps = {arm: run_arm(arm, script_args, training_args, model_args) for arm in bench_args.arms}
    summaries = {arm: summarize(arm_steps, bench_args.untimed_steps) for arm, arm_steps in steps.items()}
    base, *others = bench_args.arms
    comparisons = {arm: compare(summaries[base], summaries[arm]) for arm in others}
    result = {"summaries": summaries, "comparisons": comparisons, "steps": steps}
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.json").write_text(json.dumps(result, indent=2))
    (output_dir / "results.md").write_text(markdown(summaries, comparisons))
    print(markdown(summaries, comparisons))
    print(json.dumps(comparisons, indent=2))
    return result


if __name__ == "__main__":
    parser = TrlParser((BenchmarkArguments, GRPOScriptArguments, HintGRPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())
