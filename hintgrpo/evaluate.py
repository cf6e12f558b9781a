"""Generation-based evaluation: prompts → completions → parsed answers → MMSA metrics, report and plots.

Predictions are appended to `predictions.jsonl` batch by batch, so an interrupted run resumes from
the last written record.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from datasets import Dataset
from tqdm.auto import tqdm

from hintgrpo.configs import EvaluateArguments
from hintgrpo.data import first_rows, load_task_dataset
from hintgrpo.data.errors import require_unique_ids
from hintgrpo.data.prompts import build_messages
from hintgrpo.jsonl import read_records, write_jsonl
from hintgrpo.metrics import compute_metrics
from hintgrpo.models import load_for_generation, trained_prompt_style
from hintgrpo.models.decoding import stream_completions
from hintgrpo.models.precision import generation_device, resolve_dtype
from hintgrpo.plots import plot_confusion, plot_scatter
from hintgrpo.reasoning import parse_completion
from hintgrpo.tasks import TaskSpec, get_task

# Settings that change the predictions: a resumed run must match them.
# Records are keyed by sample id, so runs that differ only in --limit share (and extend) one predictions file.
RUN_KEYS = (
    "model",
    "task",
    "split",
    "max_new_tokens",
    "prompt_style",
    "modality_route",
    "features_file",
    "media_file",
    "dtype",
)


def prediction_record(sample: dict, completion: str, task: TaskSpec) -> dict:
    parsed = parse_completion(completion, task)
    return {
        "id": sample["id"],
        "label": sample["label"],
        "gold_polarity": sample["polarity"],
        "completion": completion,
        "answer": parsed.answer,
        "polarity": parsed.polarity,
        "well_formed": parsed.well_formed,
    }


def check_resumable(output_dir: Path, run: dict, predicted: bool) -> None:
    """Refuses a folder whose predictions were made by a different run.

    A run file beside no predictions is left by a run that failed before its first record (a wrong --model):
    it blocks nothing, and is replaced once this run writes records.
    """
    run_file = output_dir / "run.json"
    if predicted and run_file.is_file():
        previous = json.loads(run_file.read_text())
        # A key missing from an older run file is an option added since, at the value that run had.
        changed = {key: (previous[key], run[key]) for key in RUN_KEYS if previous.get(key, run[key]) != run[key]}
        if changed:
            raise ValueError(f"{output_dir} holds predictions of a different run ({changed}); use another --output_dir")


def score_records(records: list[dict], task: TaskSpec) -> dict[str, float]:
    """The task's metric suite plus parse statistics.

    An unparsed regression output is scored as the neutral midpoint of the range (MMSA metrics need a
    number); a classification one is simply wrong. Both lower `parse_rate`.
    """
    answers = [r["answer"] for r in records]
    labels = [r["label"] for r in records]
    n_parsed = sum(a is not None for a in answers)
    if task.is_regression:
        fallback = sum(task.score_range) / 2
        answers = [fallback if a is None else a for a in answers]
    metrics = compute_metrics(answers, labels, task.metric_suite)
    metrics.update(
        n=len(records),
        parse_rate=n_parsed / len(records),
        well_formed_rate=sum(r["well_formed"] for r in records) / len(records),
        polarity_accuracy=sum(r["polarity"] == r["gold_polarity"] for r in records) / len(records),
    )
    return metrics


def markdown_rows(rows: list[dict], title: str) -> str:
    """One markdown table, a row per dict (all with the same keys, the header); floats to four decimals."""

    def line(cells) -> str:
        return "| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in cells) + " |"

    columns = list(rows[0])
    lines = [line(columns), "|" + "---|" * len(columns), *(line(row.values()) for row in rows)]
    return f"### {title}\n\n" + "\n".join(lines) + "\n"


def json_safe(metrics: dict[str, float]) -> dict[str, float | None]:
    """NaN (e.g. Corr of a constant prediction) as None, so metrics.json stays strict JSON."""
    return {key: None if value != value else value for key, value in metrics.items()}


def write_report(output_dir: Path, records: list[dict], task: TaskSpec, title: str) -> dict[str, float]:
    metrics = score_records(records, task)
    (output_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2) + "\n")
    (output_dir / "metrics.md").write_text(markdown_rows([metrics], title))
    if task.is_regression:
        plot_scatter(records, task, output_dir / "scatter.png", title)
        plot_confusion(records, task, output_dir / "confusion.png", title, coarse=True)
    else:
        plot_confusion(records, task, output_dir / "confusion.png", title, coarse=False)
    return metrics


def media_completions(media_model, dataset: Dataset, todo: list[int], conversations: dict, args: EvaluateArguments):
    """(row, completion) of the rows `todo`, a batch of them at a time, each given its media."""
    from hintgrpo.multimodal.generation import generate_with_media

    for start in range(0, len(todo), args.batch_size):
        batch = todo[start : start + args.batch_size]
        samples, prompts = [dataset[i] for i in batch], [conversations[i] for i in batch]
        yield from zip(batch, generate_with_media(media_model, samples, prompts, args.max_new_tokens), strict=True)


def evaluate(args: EvaluateArguments, dataset: Dataset | None = None) -> dict[str, float]:
    """Evaluate `args.model` on `args.task`/`args.split`, resuming from any records already written."""
    task = get_task(args.task)
    if dataset is None:
        dataset = load_task_dataset(args.task, args.data_dir, args.split, skip_bad_rows=args.skip_bad_rows)
    dataset = first_rows(dataset, args.limit)
    # Resolved before the run check, so predictions made with one prompt are never extended with another's.
    args.prompt_style = args.prompt_style or trained_prompt_style(args.model) or "full"
    require_unique_ids(f"{args.task} {args.split} rows", dataset["id"])
    output_dir = Path(args.output_dir)
    predictions = output_dir / "predictions.jsonl"
    done = {r["id"]: r for r in read_records(predictions)}
    run = dataclasses.asdict(args)
    if args.modality_route == "text":  # the precision chosen, so that `auto` on another machine is told apart
        run["dtype"] = str(resolve_dtype(args.dtype, generation_device())).removeprefix("torch.")
    check_resumable(output_dir, run, predicted=bool(done))
    todo = [i for i, sample_id in enumerate(dataset["id"]) if sample_id not in done]
    if todo:
        if args.modality_route == "text":
            model, tokenizer = load_for_generation(args.model, run["dtype"])
        else:  # imported here: the multimodal model classes take seconds to import
            from hintgrpo.multimodal.generation import load_for_media_generation

            dataset, media_model = load_for_media_generation(args, dataset)
            tokenizer = media_model.processing_class
        conversations = {i: build_messages(dataset[i], task, args.prompt_style) for i in todo}
        # Similar lengths batched together waste less compute on padding.
        todo.sort(key=lambda i: len(tokenizer.apply_chat_template(conversations[i], tokenize=False)))
        if args.modality_route == "text":
            # Rows finish one by one (a finished row's place in the batch goes to the next): each is written then.
            ordered = [conversations[i] for i in todo]
            finished = stream_completions(model, tokenizer, ordered, args.max_new_tokens, args.batch_size)
            finished = ((todo[k], completion) for k, completion in finished)
        else:
            finished = media_completions(media_model, dataset, todo, conversations, args)
        output_dir.mkdir(parents=True, exist_ok=True)
        with open(predictions, "a", encoding="utf-8") as handle, tqdm(total=len(dataset), initial=len(done)) as bar:
            for count, (i, completion) in enumerate(finished):
                if count == 0:
                    # Only now: a run that fails to start must not claim the folder.
                    (output_dir / "run.json").write_text(json.dumps(run, indent=2))
                record = prediction_record(dataset[i], completion, task)
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                done[record["id"]] = record
                bar.update(1)
    # Completions are the raw result; parsing them again keeps the report current with the parser.
    records = [prediction_record(sample, done.pop(sample["id"])["completion"], task) for sample in dataset]
    write_jsonl(predictions, records + list(done.values()))  # rows beyond a smaller --limit are kept
    title = f"{args.model} on {args.task} {args.split} (n={len(records)})"
    return write_report(output_dir, records, task, title)
