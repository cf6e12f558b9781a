"""How many evaluation rows and seeds an RL-vs-SFT comparison needs to see a given difference.

    python benchmarks/power.py --reference outputs/rl/eval/sft_dev/predictions.jsonl \\
        --runs outputs/rl/eval/grpo_seed42_dev/predictions.jsonl [more seeds ...]

From paired predictions on the same rows: the per-row standard deviation of the paired MAE difference, the
bootstrap standard error of the paired Corr difference, and (with two runs or more) the seed-to-seed standard
deviation of each difference. The standard error of a difference over N rows and S seeds is taken as
sqrt(σ_rows² · n₀ / N + σ_seeds² / S), σ_rows the row part measured on n₀ rows. The row part is not divided by S:
the reference's errors are shared by every seed, and the seeds' errors on a row are correlated, so more seeds
shrink only the seed part (conservative: the truth lies between this and dividing both by S). A two-sided test at
α = 0.05 with 80% power sees an effect δ when δ ≥ 2.80 · SE. The script prints the smallest detectable effect at
the rows and seeds given, and the rows needed for the target effects (one seed, no seed variance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from trl import TrlParser

from hintgrpo.compare import PairedBootstrap, read_predictions
from hintgrpo.tasks import get_task

Z = 1.959964 + 0.841621  # two-sided α = 0.05, power 0.80


@dataclass
class PowerArguments:
    reference: str = field(metadata={"help": "Predictions of the reference (the SFT student)."})
    runs: list[str] = field(metadata={"help": "Predictions of the compared method, one file per seed."})
    task: str = field(default="emobank", metadata={"help": "Task the predictions are scored as."})
    corr_effect: float = field(default=0.02, metadata={"help": "Corr difference to detect."})
    mae_effect: float = field(default=0.01, metadata={"help": "MAE difference to detect (its size)."})
    seeds: list[int] = field(default_factory=lambda: [1, 3, 5], metadata={"help": "Seed counts to report."})
    resamples: int = field(default=2000, metadata={"help": "Bootstrap draws for the Corr standard error."})


def main(args: PowerArguments) -> str:
    task = get_task(args.task)
    reference = read_predictions(args.reference)
    runs = [read_predictions(path) for path in args.runs]
    rows = len(reference)
    row_se, seed_sd, observed = {}, {}, {}
    for metric in ("Corr", "MAE"):
        per_run = []
        for k, run in enumerate(runs):
            bootstrap = PairedBootstrap({"run": [run], "reference": [reference]}, task, args.resamples, seed=k)
            per_run.append((bootstrap.difference("run", "reference", metric).value,
                            bootstrap.difference_spread("run", "reference", metric)))  # fmt: skip
        observed[metric] = [value for value, _ in per_run]
        row_se[metric] = float(np.mean([spread for _, spread in per_run]))
        seed_sd[metric] = float(np.std(observed[metric], ddof=1)) if len(runs) > 1 else None
    by_row = {r["id"]: r for r in reference}
    differences = [
        abs(r["answer"] - r["label"]) - abs(by_row[r["id"]]["answer"] - r["label"])
        for r in runs[0]
        if r["answer"] is not None and by_row[r["id"]]["answer"] is not None
    ]
    lines = [
        f"Rows: {rows}; runs: {len(runs)}. Paired per-row |error| difference, run 1: mean "
        f"{np.mean(differences):+.4f}, sd {np.std(differences, ddof=1):.4f}.",
        "",
        "| metric | observed differences | row SE at N rows, 1 seed | seed SD | target | rows needed (1 seed, "
        "no seed variance) | smallest detectable at N rows: " + ", ".join(f"{s} seed(s)" for s in args.seeds) + " |",
        "|---|---|---|---|---|---|---|",
    ]
    for metric, effect in (("Corr", args.corr_effect), ("MAE", args.mae_effect)):
        se, sd = row_se[metric], seed_sd[metric]
        needed = math.ceil(rows * (Z * se / effect) ** 2)
        detectable = [Z * math.sqrt(se**2 + (sd or 0.0) ** 2 / s) for s in args.seeds]
        seed_part = "–" if sd is None else f"{sd:.4f}"
        lines.append(
            f"| {metric} | {', '.join(f'{v:+.4f}' for v in observed[metric])} | {se:.4f} | {seed_part} | "
            f"{effect:.3f} | {needed:,} | {', '.join(f'{d:.4f}' for d in detectable)} |"
        )
    if len(runs) == 1:
        lines += ["", "One run: the seed part is unknown, so the detectable effects are lower bounds."]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main(TrlParser((PowerArguments,)).parse_args_and_config()[0])
