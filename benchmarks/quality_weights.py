"""SFT with quality weights vs SFT with uniform weights: same model, rows, order, seed and steps; EmoBank dev.

    python benchmarks/quality_weights.py                                    # the full run (hours on the 2-core CPU)
    python benchmarks/quality_weights.py --train_rows 16 --max_steps 2 --eval_rows 8 --output_dir /tmp/qw  # smoke

Both runs train `recipes/sft.py` (demo config) on the same lexicon-teacher CoT of the first `--train_rows` EmoBank
train sentences; the weighted run adds `--preprocess score`, which sets each row's weight from its decoupled
quality scores (`hintgrpo.preprocess.quality`), the uniform run trains with every weight 1. The table also carries
the `hintgrpo baselines` rows (constant, vader, tfidf; fit on all of EmoBank train), scored on the same dev rows.
Each stage is the user-facing command, printed before it runs and skipped when its output exists, so the script
can be killed and rerun. Results: `results.md` and `results.json` in `--output_dir`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from trl import TrlParser

from hintgrpo.configs import QualityArguments
from hintgrpo.preprocess.quality import score
from hintgrpo.preprocess.records import load_cot_records

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("MAE", "Corr", "Mult_acc_7", "Has0_acc_2", "Non0_acc_2", "parse_rate", "well_formed_rate")
RUNS = {"uniform": [], "quality": ["--preprocess", "score"]}
BASELINES = ("constant", "vader", "tfidf")


@dataclass
class QualityWeightsArguments:
    output_dir: str = field(default="outputs/benchmarks/quality_weights", metadata={"help": "Where stages write."})
    data_dir: str = field(default="../shared/data", metadata={"help": "Folder with one subfolder per dataset."})
    model: str = field(default="smollm2-135m-instruct", metadata={"help": "Base model (shipped name, id or folder)."})
    train_rows: int = field(default=400, metadata={"help": "EmoBank train sentences given teacher CoT."})
    max_steps: int = field(default=50, metadata={"help": "SFT optimizer steps of each run (4 samples each)."})
    eval_rows: int | None = field(default=None, metadata={"help": "EmoBank dev rows (default: all 1,000)."})
    seed: int = field(default=42, metadata={"help": "Training seed of both runs."})


def run(command: list[str], done: Path) -> None:
    """Run `command` from the repository root unless `done` exists."""
    if done.exists():
        print(f"skip (exists: {done})")
        return
    print("$ " + shlex.join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def main(args: QualityWeightsArguments) -> None:
    output = Path(args.output_dir).resolve()
    data_dir = str(Path(args.data_dir).resolve())
    cot_file = output / "cot_emobank_train.jsonl"
    hintgrpo = [sys.executable, "-m", "hintgrpo.cli"]
    run(
        [*hintgrpo, "synthesize", "--task", "emobank", "--data_dir", data_dir, "--split", "train"]
        + ["--limit", str(args.train_rows), "--backend", "lexicon", "--output_file", str(cot_file)],
        cot_file,
    )
    results = {}
    for name, options in RUNS.items():
        model_dir, eval_dir = output / f"sft_{name}", output / f"eval_{name}"
        run(
            [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "accelerate_configs/cpu.yaml"]
            + ["recipes/sft.py", "--config", "recipes/configs/demo/sft.yaml", "--model_name_or_path", args.model]
            + ["--cot_file", str(cot_file), "--output_dir", str(model_dir), "--max_steps", str(args.max_steps)]
            + ["--seed", str(args.seed), "--save_strategy", "no", "--preprocess_cache_dir", str(output / "cache")]
            + options,
            model_dir / "model.safetensors",
        )
        run(
            [*hintgrpo, "evaluate", "--model", str(model_dir), "--task", "emobank", "--data_dir", data_dir]
            + ["--split", "dev", "--max_new_tokens", "160", "--output_dir", str(eval_dir)]
            + (["--limit", str(args.eval_rows)] if args.eval_rows else []),
            eval_dir / "metrics.json",
        )
        results[name] = json.loads((eval_dir / "metrics.json").read_text())
    # Scored on the dev rows the models are, in a folder named by their number: other --eval_rows never reuse it.
    baseline_dir = output / (f"baselines_first{args.eval_rows}" if args.eval_rows else "baselines_all")
    run(
        [*hintgrpo, "baselines", "--task", "emobank", "--data_dir", data_dir, "--split", "dev"]
        + ["--output_dir", str(baseline_dir), "--baselines", *BASELINES]
        + (["--limit", str(args.eval_rows)] if args.eval_rows else []),
        baseline_dir / "metrics.json",
    )
    baseline_metrics = json.loads((baseline_dir / "metrics.json").read_text())
    results |= {f"baseline: {name}": baseline_metrics[name] for name in BASELINES}
    weights = np.asarray(score(load_cot_records(cot_file), QualityArguments(), cache_dir=output / "cache")["weight"])
    results["weights"] = {"mean": weights.mean(), "std": weights.std(), "min": weights.min(), "max": weights.max()}
    results["setup"] = vars(args)
    (output / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    table = [
        f"SFT of {args.model} on {args.train_rows} EmoBank train sentences (lexicon-teacher CoT), {args.max_steps} "
        f"steps of 4, seed {args.seed}; EmoBank dev, {args.eval_rows or 1000} rows. Quality weights: mean "
        f"{weights.mean():.3f}, std {weights.std():.3f}, range [{weights.min():.3f}, {weights.max():.3f}]. "
        "Baselines: `hintgrpo baselines`, fit on all of EmoBank train.",
        "",
        "| run | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    rows = [*RUNS, *(f"baseline: {name}" for name in BASELINES)]
    table += [f"| {row} | " + " | ".join(cell(results[row][c]) for c in COLUMNS) + " |" for row in rows]
    (output / "results.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    (arguments,) = TrlParser((QualityWeightsArguments,)).parse_args_and_config()
    main(arguments)
