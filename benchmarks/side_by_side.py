"""Zero-shot vs SFT vs GRPO vs Hint-GRPO (prefix, prompt) vs DAPO: one model, the same seeds and budget.

    python benchmarks/side_by_side.py                                   # every row (hours on the 2-core CPU)
    python benchmarks/side_by_side.py --methods hint_prefix --seeds 42  # one row, one seed
    python benchmarks/side_by_side.py --completion_budget 4096 --sft_steps 200   # a GPU-sized budget

Every stage is the user-facing command (`hintgrpo synthesize`, `recipes/sft.py`, `recipes/hint_grpo.py`,
`hintgrpo evaluate`), printed before it runs, and every stage resumes or is skipped when its output exists, so
the script can be killed and rerun. The RL rows start from the same SFT checkpoint and stop after the same number
of generated completions (`--completion_budget`, hinted and refilled completions included). Every table also
carries the `hintgrpo baselines` rows (constant, vader, tfidf; fit on each task's own train split), scored on the
same rows as the models. Results: `results.md`, `results.json` and `reward_curves.png` in `--output_dir`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from trl import TrlParser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RL_METHODS = {
    "grpo": ["--hint_mode", "none"],
    "hint_prefix": ["--hint_mode", "prefix"],
    "hint_prompt": ["--hint_mode", "prompt"],
    "dapo": ["--hint_mode", "none", "--dynamic_sampling", "true"],
}
METHODS = ("zero_shot", "sft", *RL_METHODS)
BASELINES = ("constant", "vader", "tfidf")
IN_DOMAIN = ("emobank", "dev")
CROSS_DOMAIN = ("meld_sentiment", "test")
IN_DOMAIN_COLUMNS = ("MAE", "Corr", "Has0_acc_2", "Non0_acc_2", "Mult_acc_7", "parse_rate")
CROSS_DOMAIN_COLUMNS = ("accuracy", "weighted_f1", "parse_rate")


@dataclass
class SideBySideArguments:
    output_dir: str = field(default="outputs/benchmarks/side_by_side", metadata={"help": "Where every stage writes."})
    data_dir: str = field(default="../shared/data", metadata={"help": "Folder with one subfolder per dataset."})
    model: str = field(default="smollm2-135m-instruct", metadata={"help": "Base model (shipped name, id or folder)."})
    methods: list[str] = field(
        default_factory=lambda: list(METHODS), metadata={"help": "Rows to produce.", "choices": list(METHODS)}
    )
    seeds: list[int] = field(default_factory=lambda: [42, 43], metadata={"help": "Seeds of the RL rows."})
    sft_model: str | None = field(
        default=None,
        metadata={
            "help": "An SFT checkpoint to start the RL rows from (e.g. recipes/configs/smollm2-135m/sft.yaml's); "
            "default: train one here with the demo SFT config for --sft_steps steps."
        },
    )
    sft_steps: int = field(default=45, metadata={"help": "SFT optimizer steps (8 samples each on the demo config)."})
    completion_budget: int = field(
        default=256, metadata={"help": "Generated completions per RL run, hinted and refilled ones included."}
    )
    eval_limit: int | None = field(default=None, metadata={"help": "EmoBank dev rows (default: all 1,000)."})
    cross_domain_limit: int | None = field(
        default=None, metadata={"help": "MELD test rows (default: all 2,610; the slowest stage on a CPU)."}
    )
    max_new_tokens: int = field(default=160, metadata={"help": "Evaluation generation budget of trained models."})


def run(command: list[str]) -> float:
    """Run a stage, echoing it as a reproducible command line; its wall time in seconds."""
    print("+", shlex.join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    return time.perf_counter() - started


def accelerate(recipe: str, *args: str) -> list[str]:
    config = str(ROOT / "accelerate_configs" / "cpu.yaml")
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", config, recipe, *args]


def hintgrpo(*args: str) -> list[str]:
    return [sys.executable, "-m", "hintgrpo.cli", *args]


def trained(output_dir: Path) -> bool:
    return (output_dir / "train_results.json").is_file()


def train_sft(bench: SideBySideArguments, root: Path) -> Path:
    if bench.sft_model is not None:
        return Path(bench.sft_model).resolve()
    output_dir = root / "sft"
    if not trained(output_dir):
        cot_file = root / "cot_emobank_train.jsonl"
        run(hintgrpo("synthesize", "--task", "emobank", "--split", "train", "--backend", "lexicon",
                     "--data_dir", bench.data_dir, "--output_file", str(cot_file)))  # fmt: skip
        run(accelerate("recipes/sft.py", "--config", "recipes/configs/demo/sft.yaml",
                       "--model_name_or_path", bench.model, "--cot_file", str(cot_file),
                       "--max_steps", str(bench.sft_steps), "--output_dir", str(output_dir)))  # fmt: skip
    return output_dir


def train_rl(bench: SideBySideArguments, method: str, seed: int, sft_dir: Path, root: Path) -> Path:
    output_dir = root / f"{method}_seed{seed}"
    if not trained(output_dir):
        run(accelerate("recipes/hint_grpo.py", "--config", "recipes/configs/demo/hint_grpo.yaml",
                       "--data_dir", bench.data_dir, "--model_name_or_path", str(sft_dir),
                       "--completion_budget", str(bench.completion_budget), "--max_steps", "1000",
                       "--lr_scheduler_type", "constant", "--save_steps", "10",
                       "--seed", str(seed), "--output_dir", str(output_dir), *RL_METHODS[method]))  # fmt: skip
    return output_dir


def evaluate(bench: SideBySideArguments, model: str, task: str, split: str, limit: int | None, output_dir: Path):
    args = ["evaluate", "--model", model, "--task", task, "--split", split, "--data_dir", bench.data_dir]
    args += ["--output_dir", str(output_dir)] + (["--limit", str(limit)] if limit is not None else [])
    if model != bench.model:  # trained models write the DC format, whose answer comes after the reasoning
        args += ["--max_new_tokens", str(bench.max_new_tokens)]
    run(hintgrpo(*args))  # resumes from the records already written, and only rescores when all are there
    return json.loads((output_dir / "metrics.json").read_text())


def baselines(bench: SideBySideArguments, task: str, split: str, limit: int | None, output_dir: Path) -> dict:
    """Each baseline's metrics on the rows the models are scored on: `--limit` takes the first `limit` rows, as
    `hintgrpo evaluate --limit` does. The folder is named by the limit, so another limit never reuses its numbers.
    """
    output_dir = output_dir / ("all" if limit is None else f"first{limit}")
    if not (output_dir / "metrics.json").is_file():
        run(hintgrpo("baselines", "--task", task, "--split", split, "--data_dir", bench.data_dir,
                     "--output_dir", str(output_dir), "--baselines", *BASELINES,
                     *(["--limit", str(limit)] if limit is not None else [])))  # fmt: skip
    return json.loads((output_dir / "metrics.json").read_text())


def training_log(output_dir: Path) -> dict:
    if not trained(output_dir):
        return {}
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    steps = [entry for entry in history if "reward" in entry]
    return {
        "train_seconds": json.loads((output_dir / "train_results.json").read_text())["train_runtime"],
        "zero_std_group_frac": mean(entry["frac_reward_zero_std"] for entry in steps) if steps else None,
        "rewards": [entry["reward"] for entry in steps],
        "completions": [entry.get("completions/generated_total") for entry in steps],
    }


def evaluate_row(bench: SideBySideArguments, model: str, name: str, root: Path) -> dict:
    return {
        "in_domain": evaluate(bench, model, *IN_DOMAIN, bench.eval_limit, root / "eval" / name / "emobank_dev"),
        "cross_domain": evaluate(
            bench, model, *CROSS_DOMAIN, bench.cross_domain_limit, root / "eval" / name / "meld_test"
        ),
    }


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{mean(values):.3f} ± {(max(values) - min(values)) / 2:.3f}"


def markdown(results: dict[str, list[dict]]) -> str:
    header = ["method", "seeds", *(f"EmoBank {c}" for c in IN_DOMAIN_COLUMNS)]
    header += [*(f"MELD {c}" for c in CROSS_DOMAIN_COLUMNS), "zero-std groups", "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, runs in results.items():
        cells = [method, str(len(runs))]
        cells += [spread([r["in_domain"].get(c) for r in runs]) for c in IN_DOMAIN_COLUMNS]
        cells += [spread([r["cross_domain"].get(c) for r in runs]) for c in CROSS_DOMAIN_COLUMNS]
        cells += [spread([r.get("zero_std_group_frac") for r in runs])]
        cells += [spread([r.get("train_seconds") for r in runs]).replace(".000", "")]
        lines.append("| " + " | ".join(cells) + " |")
    note = "Baselines: `hintgrpo baselines`, fit on each task's train split (MELD's too, which no model row sees)."
    return "\n".join(lines) + f"\n\n{note}\n"


def plot_reward_curves(results: dict[str, list[dict]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for method, runs in results.items():
        for k, r in enumerate(runs):
            if r.get("rewards"):
                axes.plot(r["rewards"], label=method if k == 0 else None, color=f"C{list(results).index(method)}")
    axes.set(xlabel="step", ylabel="mean total reward")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(bench: SideBySideArguments) -> dict:
    root = Path(bench.output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    in_domain = baselines(bench, *IN_DOMAIN, bench.eval_limit, root / "baselines" / "emobank_dev")
    cross_domain = baselines(bench, *CROSS_DOMAIN, bench.cross_domain_limit, root / "baselines" / "meld_test")
    results: dict[str, list[dict]] = {
        f"baseline: {name}": [{"in_domain": in_domain[name], "cross_domain": cross_domain[name]}] for name in BASELINES
    }
    if "zero_shot" in bench.methods:
        results["zero_shot"] = [evaluate_row(bench, bench.model, "zero_shot", root)]
    if set(bench.methods) - {"zero_shot"}:
        sft_dir = train_sft(bench, root)
    if "sft" in bench.methods:
        results["sft"] = [evaluate_row(bench, str(sft_dir), "sft", root) | training_log(sft_dir)]
    for method in (m for m in bench.methods if m in RL_METHODS):
        results[method] = []
        for seed in bench.seeds:
            output_dir = train_rl(bench, method, seed, sft_dir, root)
            row = evaluate_row(bench, str(output_dir), output_dir.name, root)
            results[method].append(row | training_log(output_dir))
    (root / "results.json").write_text(json.dumps(results, indent=2))
    (root / "results.md").write_text(markdown(results))
    plot_reward_curves(results, root / "reward_curves.png")
    print(markdown(results))
    return results


if __name__ == "__main__":
    main(*TrlParser(SideBySideArguments).parse_args_and_config())
