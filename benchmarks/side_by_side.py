"""Zero-shot, SFT, GRPO, Hint-GRPO (replace/hinted, mix/original) and DAPO from one SFT student, at equal budget.

    python benchmarks/side_by_side.py --sft_model outputs/smollm2-135m/sft        # the sized run (see below)
    python benchmarks/side_by_side.py --methods grpo hint --seeds 42              # two rows, one seed
    python benchmarks/side_by_side.py --completion_budget 4096 --eval_limit 1000  # a GPU-sized budget

Every stage is the user-facing command (`hintgrpo synthesize`, `recipes/sft.py`, `recipes/hint_grpo.py`,
`hintgrpo evaluate`, `hintgrpo baselines`), printed before it runs, and skipped or resumed when its output exists,
so the script can be killed and rerun; the tables are rewritten after every row. The RL rows start from the same
SFT student and stop after the same number of generated completions (`--completion_budget`, hinted and refilled
completions included).

Outputs in `--output_dir`:
- `results.md` / `results.json`: every method (seeds averaged) with 95% bootstrap intervals over the rows, the
  `hintgrpo baselines` rows beside them, and the paired differences that answer "does it beat GRPO?" (the rows are
  resampled together for all methods, `hintgrpo.compare`);
- `hard_prompt_curve.png`: the unhinted polarity accuracy (sampled, TRL's evaluation loop on
  `--eval_ids_file`) over training, on `--hard_prompts` training prompts the SFT student gets wrong greedily;
- `reward_curves.png`: the mean training reward per step.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from trl import TrlParser  # noqa: E402

from hintgrpo.compare import PairedBootstrap, read_predictions  # noqa: E402
from hintgrpo.jsonl import read_records  # noqa: E402
from hintgrpo.tasks import get_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RL_METHODS = {
    "grpo": ["--hint_mode", "none"],
    "hint": ["--hint_mode", "prefix", "--hint_group", "replace", "--hint_loss_context", "hinted"],
    "hint_mix": ["--hint_mode", "prefix", "--hint_group", "mix", "--hint_loss_context", "original"],
    "hint_prompt": ["--hint_mode", "prompt"],
    "dapo": ["--hint_mode", "none", "--dynamic_sampling", "true"],
}
METHODS = ("zero_shot", "sft", *RL_METHODS)
DEFAULT_METHODS = ("zero_shot", "sft", "grpo", "hint", "hint_mix", "dapo")
BASELINES = ("constant", "vader", "tfidf")
IN_DOMAIN = ("emobank", "dev")
CROSS_DOMAIN = ("meld_sentiment", "test")
DOMAINS = {"in_domain": (*IN_DOMAIN, "emobank_dev"), "cross_domain": (*CROSS_DOMAIN, "meld_test")}
# On MELD the coarse result is the sentiment label, so an EmoBank-trained model (which answers a score) is scored on
# the polarity it discriminates; `accuracy` and `weighted_f1` judge the final answer, which must be a MELD label.
COLUMNS = {"in_domain": ("Corr", "MAE"), "cross_domain": ("polarity_accuracy", "accuracy", "weighted_f1")}
HEADERS = {"Corr": "EmoBank Corr", "MAE": "EmoBank MAE", "polarity_accuracy": "MELD polarity acc",
           "accuracy": "MELD label acc", "weighted_f1": "MELD label wF1"}  # fmt: skip
# (method, reference): the differences the table reports, paired over the same rows.
COMPARISONS = (
    ("hint", "grpo"),
    ("hint_mix", "grpo"),
    ("hint_mix", "hint"),
    ("dapo", "grpo"),
    ("grpo", "sft"),
    ("hint", "sft"),
    ("hint_mix", "sft"),
    ("sft", "baseline: tfidf"),
)
HARD_ACCURACY = "eval_rewards/polarity_reward/mean"
STAGES = "stages.jsonl"  # one record per finished stage: its command, kind and wall time


@dataclass
class SideBySideArguments:
    output_dir: str = field(default="outputs/benchmarks/side_by_side", metadata={"help": "Where every stage writes."})
    data_dir: str = field(default="../shared/data", metadata={"help": "Folder with one subfolder per dataset."})
    model: str = field(default="smollm2-135m-instruct", metadata={"help": "Base model (shipped name, id or folder)."})
    sft_model: str | None = field(
        default=None,
        metadata={
            "help": "The SFT student the RL rows start from (recipes/configs/smollm2-135m/sft.yaml's); default: "
            "train one here with the demo SFT config for --sft_steps steps."
        },
    )
    sft_steps: int = field(default=45, metadata={"help": "SFT steps when no --sft_model is given (8 samples each)."})
    methods: list[str] = field(
        default_factory=lambda: list(DEFAULT_METHODS), metadata={"help": "Rows to produce.", "choices": list(METHODS)}
    )
    seeds: list[int] = field(default_factory=lambda: [42, 43], metadata={"help": "Seeds of the RL rows."})
    completion_budget: int = field(
        default=96, metadata={"help": "Generated completions per RL run, hinted and refilled ones included."}
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "Learning rate of the RL rows (constant)."})
    eval_limit: int | None = field(default=500, metadata={"help": "EmoBank dev rows (None: all 1,000)."})
    cross_domain_limit: int | None = field(default=500, metadata={"help": "MELD test rows (None: all 2,610)."})
    max_new_tokens: int = field(default=160, metadata={"help": "Evaluation generation budget of trained models."})
    hard_pool: int = field(default=128, metadata={"help": "Training rows searched for hard prompts."})
    hard_prompts: int = field(default=16, metadata={"help": "Hard training prompts followed over training."})
    hard_eval_steps: int = field(default=6, metadata={"help": "Steps between evaluations on the hard prompts."})
    resamples: int = field(default=1000, metadata={"help": "Bootstrap draws of the rows."})


def run(command: list[str], bench: SideBySideArguments) -> None:
    """Run a stage, echoing it as a reproducible command line; its wall time goes to `STAGES` once it finishes."""
    print("+", shlex.join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    record = {"command": shlex.join(command), "kind": stage_kind(command), "seconds": time.perf_counter() - started}
    with open(Path(bench.output_dir) / STAGES, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def stage_kind(command: list[str]) -> str:
    if any(part.startswith("recipes/") for part in command):
        return "training"
    return next(kind for kind in ("synthesize", "evaluate", "baselines") if kind in command)


def stage_costs(root: Path) -> str:
    """One line: the wall time of every finished stage, in all, and by kind (empty before any finished here)."""
    records = read_records(root / STAGES)
    if not records:
        return ""
    kinds: dict[str, float] = {}
    for record in records:
        kinds[record["kind"]] = kinds.get(record["kind"], 0.0) + record["seconds"]
    parts = ", ".join(f"{kind} {seconds / 60:.1f}" for kind, seconds in kinds.items())
    total = sum(kinds.values()) / 60
    return f"Wall time of the {len(records)} finished stages: {total:.1f} min ({parts}); each in `{STAGES}`."


def accelerate(recipe: str, *args: str) -> list[str]:
    config = str(ROOT / "accelerate_configs" / "cpu.yaml")
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", config, recipe, *args]


def hintgrpo(*args: str) -> list[str]:
    return [sys.executable, "-m", "hintgrpo.cli", *args]


def limited(limit: int | None) -> list[str]:
    return ["--limit", str(limit)] if limit is not None else []


def trained(output_dir: Path) -> bool:
    return (output_dir / "train_results.json").is_file()


def train_sft(bench: SideBySideArguments, root: Path) -> Path:
    if bench.sft_model is not None:
        return Path(bench.sft_model).resolve()
    output_dir = root / "sft"
    if not trained(output_dir):
        cot_file = root / "cot_emobank_train.jsonl"
        run(hintgrpo("synthesize", "--task", "emobank", "--split", "train", "--backend", "lexicon",
                     "--data_dir", bench.data_dir, "--output_file", str(cot_file)), bench)  # fmt: skip
        run(accelerate("recipes/sft.py", "--config", "recipes/configs/demo/sft.yaml",
                       "--model_name_or_path", bench.model, "--cot_file", str(cot_file),
                       "--max_steps", str(bench.sft_steps), "--output_dir", str(output_dir)), bench)  # fmt: skip
    return output_dir


def evaluate(bench: SideBySideArguments, model: str, task: str, split: str, limit: int | None, output_dir: Path):
    """Metrics and predictions of `model` (resumes from the records already written)."""
    args = ["evaluate", "--model", model, "--task", task, "--split", split, "--data_dir", bench.data_dir]
    args += ["--output_dir", str(output_dir), *limited(limit)]
    if model != bench.model:  # trained models write the DC format, whose answer comes after the reasoning
        args += ["--max_new_tokens", str(bench.max_new_tokens)]
    if not (output_dir / "metrics.json").is_file():
        run(hintgrpo(*args), bench)
    return json.loads((output_dir / "metrics.json").read_text()), read_predictions(output_dir / "predictions.jsonl")


def hard_prompt_ids(bench: SideBySideArguments, sft_dir: Path, root: Path) -> Path:
    """The first `hard_prompts` of `hard_pool` training rows whose polarity the SFT student gets wrong greedily."""
    ids_file = root / "hard_prompts.txt"
    if not ids_file.is_file():
        _, records = evaluate(bench, str(sft_dir), "emobank", "train", bench.hard_pool, root / "eval" / "sft_train")
        hard = [r["id"] for r in records if r["polarity"] != r["gold_polarity"]][: bench.hard_prompts]
        ids_file.write_text("".join(f"{i}\n" for i in hard))
    return ids_file


def train_rl(bench: SideBySideArguments, method: str, seed: int, sft_dir: Path, hard_ids: Path, root: Path) -> Path:
    output_dir = root / f"{method}_seed{seed}"
    if not trained(output_dir):
        run(accelerate("recipes/hint_grpo.py", "--config", "recipes/configs/demo/hint_grpo.yaml",
                       "--data_dir", bench.data_dir, "--model_name_or_path", str(sft_dir),
                       "--completion_budget", str(bench.completion_budget), "--max_steps", "1000",
                       "--learning_rate", str(bench.learning_rate), "--lr_scheduler_type", "constant",
                       "--save_steps", "4", "--seed", str(seed), "--output_dir", str(output_dir),
                       "--eval_strategy", "steps", "--eval_steps", str(bench.hard_eval_steps),
                       "--eval_on_start", "true", "--eval_split", "train", "--eval_ids_file", str(hard_ids),
                       "--per_device_eval_batch_size", "64", *RL_METHODS[method]), bench)  # fmt: skip
    return output_dir


def baselines(bench: SideBySideArguments, task: str, split: str, limit: int | None, output_dir: Path) -> dict:
    """Each baseline's metrics and predictions on the rows the models are scored on (the first `limit`)."""
    output_dir = output_dir / ("all" if limit is None else f"first{limit}")
    if not (output_dir / "metrics.json").is_file():
        run(hintgrpo("baselines", "--task", task, "--split", split, "--data_dir", bench.data_dir,
                     "--output_dir", str(output_dir), "--baselines", *BASELINES, *limited(limit)), bench)  # fmt: skip
    metrics = json.loads((output_dir / "metrics.json").read_text())
    return {name: (metrics[name], read_predictions(output_dir / f"predictions_{name}.jsonl")) for name in BASELINES}


def training_log(output_dir: Path) -> dict:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    steps = [entry for entry in history if "reward" in entry]
    return {
        "train_seconds": json.loads((output_dir / "train_results.json").read_text())["train_runtime"],
        "rewards": [entry["reward"] for entry in steps],
        "completions": [entry.get("completions/generated_total") for entry in steps],
        "hint_frac": [entry.get("hint/hinted_group_frac", 0.0) for entry in steps],
        "hard_curve": [(entry["step"], entry[HARD_ACCURACY]) for entry in history if HARD_ACCURACY in entry],
    }


def evaluate_run(bench: SideBySideArguments, model: str, name: str, root: Path, domains=tuple(DOMAINS)) -> dict:
    run_result = {}
    for key in domains:
        task, split, folder = DOMAINS[key]
        limit = bench.eval_limit if key == "in_domain" else bench.cross_domain_limit
        metrics, predictions = evaluate(bench, model, task, split, limit, root / "eval" / name / folder)
        run_result[key], run_result[f"{key}_predictions"] = metrics, predictions
    return run_result


def summarize(results: dict[str, list[dict]], resamples: int) -> dict:
    """Per domain: each method's intervals, and the paired differences of COMPARISONS among the methods present."""
    summary = {}
    for key, (task, _, _) in DOMAINS.items():
        methods = {  # a method is summarised once every run of it is scored
            name: [r[f"{key}_predictions"] for r in runs]
            for name, runs in results.items()
            if all(f"{key}_predictions" in r for r in runs)
        }
        bootstrap = PairedBootstrap(methods, get_task(task), resamples=resamples)
        columns = COLUMNS[key]
        summary[key] = {
            "methods": {name: {c: bootstrap.interval(name, c) for c in columns} for name in methods},
            "differences": {
                f"{a} − {b}": {c: bootstrap.difference(a, b, c) for c in columns}
                for a, b in COMPARISONS
                if a in methods and b in methods
            },
        }
    return summary


def distinct_answers(runs: list[dict]) -> str:
    counts = [len({r["answer"] for r in run["in_domain_predictions"] if r["answer"] is not None}) for run in runs]
    return "/".join(map(str, counts))


def markdown(results: dict[str, list[dict]], summary: dict, bench: SideBySideArguments) -> str:
    rows = (f"first {bench.eval_limit}" if bench.eval_limit else "all") + " EmoBank dev rows, "
    rows += (f"first {bench.cross_domain_limit}" if bench.cross_domain_limit else "all") + " MELD test rows"
    metric_headers = [HEADERS[c] for key in ("in_domain", "cross_domain") for c in COLUMNS[key]]
    header = ["method", "seeds", *metric_headers, "parse", "distinct", "train s"]
    lines = [f"Value [95% bootstrap interval over the rows]; seeds averaged; {rows}.", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, runs in results.items():
        cells = [name, str(len(runs))]
        for key in ("in_domain", "cross_domain"):
            intervals = summary[key]["methods"].get(name)
            cells += [str(i) for i in intervals.values()] if intervals else ["pending"] * len(COLUMNS[key])
        parse = [r["in_domain"].get("parse_rate") for r in runs]
        cells += ["–" if None in parse else f"{sum(parse) / len(parse):.3f}", distinct_answers(runs)]
        seconds = [r["train_seconds"] for r in runs if "train_seconds" in r]
        cells.append(f"{sum(seconds) / len(seconds):.0f}" if seconds else "–")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Paired differences (method − reference, same rows, same bootstrap draws):", ""]
    lines += ["| " + " | ".join(["difference", *metric_headers]) + " |", "|" + "---|" * (1 + len(metric_headers))]
    for label, in_domain in summary["in_domain"]["differences"].items():
        cross = summary["cross_domain"]["differences"].get(label)
        cross_cells = [i.signed() for i in cross.values()] if cross else ["pending"] * len(COLUMNS["cross_domain"])
        cells = [label, *(i.signed() for i in in_domain.values()), *cross_cells]
        lines.append("| " + " | ".join(cells) + " |")
    note = "Baselines: `hintgrpo baselines`, fit on each task's train split (MELD's too, which no model row sees)."
    return "\n\n".join(part for part in ("\n".join(lines), note, stage_costs(Path(bench.output_dir))) if part) + "\n"


def plot_curves(results: dict[str, list[dict]], key: str, ylabel: str, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for index, (method, runs) in enumerate(results.items()):
        for k, r in enumerate(runs):
            points = r.get(key) or []
            if points and not isinstance(points[0], (list, tuple)):
                points = list(enumerate(points, start=1))
            if points:
                x, y = zip(*points, strict=True)
                axes.plot(x, y, marker="o", label=method if k == 0 else None, color=f"C{index}", alpha=0.8)
    axes.set(xlabel="optimizer step", ylabel=ylabel)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_results(results: dict[str, list[dict]], bench: SideBySideArguments, root: Path) -> str:
    summary = summarize(results, bench.resamples)
    table = markdown(results, summary, bench)
    serialisable = {
        name: [{k: v for k, v in r.items() if not k.endswith("_predictions")} for r in runs]
        for name, runs in results.items()
    }
    intervals = {
        key: {part: {name: {c: vars(i) for c, i in cells.items()} for name, cells in parts.items()}
              for part, parts in domain.items()}
        for key, domain in summary.items()
    }  # fmt: skip
    (root / "results.json").write_text(json.dumps({"runs": serialisable, "intervals": intervals}, indent=2))
    (root / "results.md").write_text(table)
    plot_curves(results, "rewards", "mean total reward", root / "reward_curves.png")
    plot_curves(results, "hard_curve", "unhinted polarity accuracy, hard prompts", root / "hard_prompt_curve.png")
    return table


def main(bench: SideBySideArguments) -> dict:
    root = Path(bench.output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    in_domain = baselines(bench, *IN_DOMAIN, bench.eval_limit, root / "baselines" / "emobank_dev")
    cross_domain = baselines(bench, *CROSS_DOMAIN, bench.cross_domain_limit, root / "baselines" / "meld_test")
    results: dict[str, list[dict]] = {
        f"baseline: {name}": [
            {"in_domain": in_domain[name][0], "in_domain_predictions": in_domain[name][1],
             "cross_domain": cross_domain[name][0], "cross_domain_predictions": cross_domain[name][1]}
        ]
        for name in BASELINES
    }  # fmt: skip
    if "zero_shot" in bench.methods:
        results["zero_shot"] = [evaluate_run(bench, bench.model, "zero_shot", root)]
    sft_dir = train_sft(bench, root) if set(bench.methods) - {"zero_shot"} else None
    if "sft" in bench.methods:
        results["sft"] = [evaluate_run(bench, str(sft_dir), "sft", root)]
        write_results(results, bench, root)
    rl_methods = [m for m in bench.methods if m in RL_METHODS]
    hard_ids = hard_prompt_ids(bench, sft_dir, root) if rl_methods else None
    # Seed by seed and in-domain first, so a cut-short run still answers on EmoBank for every method; the slower
    # cross-domain evaluations (MELD prompts carry the dialogue so far) follow.
    rl_runs = [(method, seed) for seed in bench.seeds for method in rl_methods]
    for method, seed in rl_runs:
        output_dir = train_rl(bench, method, seed, sft_dir, hard_ids, root)
        run_result = evaluate_run(bench, str(output_dir), output_dir.name, root, domains=("in_domain",))
        results.setdefault(method, []).append(run_result | training_log(output_dir))
        write_results(results, bench, root)
    for method, seed in rl_runs:
        run_result = results[method][bench.seeds.index(seed)]
        run_result |= evaluate_run(bench, str(root / f"{method}_seed{seed}"), f"{method}_seed{seed}", root,
                                   domains=("cross_domain",))  # fmt: skip
        write_results(results, bench, root)
    table = write_results(results, bench, root)
    print(table)
    return results


if __name__ == "__main__":
    main(*TrlParser(SideBySideArguments).parse_args_and_config())
