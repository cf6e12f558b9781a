"""The RL results table: every arm beside the SFT student and the baselines, paired on the same rows.

    python benchmarks/rl_results.py --sft benchmarks/results/rl/predictions/sft_dev.jsonl \\
        --arms grpo=benchmarks/results/rl/predictions/grpo_seed42_dev.jsonl \\
        --baselines_dir outputs/rl/baselines --output_file benchmarks/results/rl/results.md

An arm is `name=file[,file...]`, one predictions file per seed. Intervals are 95% bootstrap intervals that
resample the rows and, for an arm with several seeds, its seeds (`hintgrpo.compare.PairedBootstrap`); the paired
differences use the same draws for every method. Each table is printed twice: on all rows, and on the rows whose
polarity the SFT student gets wrong (where a hint has something to teach).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trl import TrlParser

from hintgrpo.compare import PairedBootstrap, read_predictions
from hintgrpo.tasks import get_task

BASELINES = ("constant", "vader", "tfidf", "probe")
METRICS = ("Corr", "MAE", "Non0_acc_2", "polarity_accuracy")


@dataclass
class RLResultsArguments:
    sft: str = field(metadata={"help": "Predictions of the SFT student."})
    arms: list[str] = field(metadata={"help": "name=file[,file...]: an RL arm's predictions, one file per seed."})
    baselines_dir: str | None = field(default=None, metadata={"help": "A `hintgrpo baselines` output folder."})
    task: str = field(default="emobank", metadata={"help": "Task the predictions are scored as."})
    resamples: int = field(default=1000, metadata={"help": "Bootstrap draws."})
    output_file: str | None = field(default=None, metadata={"help": "Where the markdown goes (also printed)."})


def distinct(runs: list[list[dict]]) -> str:
    return "/".join(str(len({r["answer"] for r in run if r["answer"] is not None})) for run in runs)


def table(methods: dict[str, list[list[dict]]], task, resamples: int, title: str) -> str:
    bootstrap = PairedBootstrap(methods, task, resamples=resamples)
    metrics = [m for m in METRICS if m in bootstrap.point["sft"]]
    lines = [f"**{title}** ({bootstrap.rows} rows)", "", "| method | seeds | " + " | ".join(metrics) + " | distinct |"]
    lines.append("|---|---|" + "---|" * len(metrics) + "---|")
    for name, runs in methods.items():
        cells = [str(bootstrap.interval(name, m)) for m in metrics]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + f" | {distinct(runs)} |")
    lines += ["", "| paired difference | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for name in methods:
        if name != "sft":
            cells = [bootstrap.difference(name, "sft", m).signed() for m in metrics]
            lines.append(f"| {name} − sft | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(args: RLResultsArguments) -> str:
    task = get_task(args.task)
    methods: dict[str, list[list[dict]]] = {}
    if args.baselines_dir is not None:
        for name in BASELINES:
            path = Path(args.baselines_dir) / f"predictions_{name}.jsonl"
            if path.is_file():
                methods[f"baseline: {name}"] = [read_predictions(path)]
    methods["sft"] = [read_predictions(args.sft)]
    for arm in args.arms:
        name, files = arm.split("=", 1)
        methods[name] = [read_predictions(path) for path in files.split(",")]
    wrong = {r["id"] for r in methods["sft"][0] if r["polarity"] != r["gold_polarity"]}
    on_wrong = {name: [[r for r in run if r["id"] in wrong] for run in runs] for name, runs in methods.items()}
    text = "\n\n".join(
        [
            table(methods, task, args.resamples, "All rows"),
            table(on_wrong, task, args.resamples, "Rows whose polarity the SFT student gets wrong"),
            "Intervals: 95% bootstrap over rows and, for arms with several seeds, over seeds; paired differences "
            "use the same draws.",
        ]
    )
    print(text)
    if args.output_file is not None:
        Path(args.output_file).write_text(text + "\n")
    return text


if __name__ == "__main__":
    main(TrlParser((RLResultsArguments,)).parse_args_and_config()[0])
