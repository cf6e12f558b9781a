"""Teacher CoT synthesis: validated DC-format reasoning per sample, appended to a resumable JSONL file.

Each sample gets up to `teacher_max_tries` teacher attempts; a rejected attempt is answered with the validation
problem as feedback. One record per (task, id) is written as soon as the sample is done, by one writer:

    {"id", "task", "text", "context", "label", "polarity", "weight", "teacher",
     "status": "accepted" | "rejected", "cot", "tries", "errors": [{"kind", "message"}, ...]}

`cot` is the accepted completion, or the last attempt of a rejected sample. A sample whose requests keep
failing (endpoint down, timeouts) gets no record, so a rerun tries it again; a rerun skips every sample
already written, and redoes a record that a kill cut short.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset
from tqdm.auto import tqdm

from hintgrpo.configs import SynthesizeArguments
from hintgrpo.data.errors import require_unique_ids
from hintgrpo.data.loaders import first_rows, load_task_dataset
from hintgrpo.jsonl import read_records
from hintgrpo.tasks import TaskSpec, get_task
from hintgrpo.teachers import Teacher, TeacherRequestError, build_teacher
from hintgrpo.teachers.rationale import write_rationale

logger = logging.getLogger(__name__)


def synthesize_sample(sample: dict, task: TaskSpec, teacher: Teacher, max_tries: int, tolerance: float) -> dict:
    """Ask `teacher` until a rationale validates or `max_tries` are spent; the record to write."""
    reply = write_rationale(teacher, sample, task, max_tries, tolerance)
    return {
        "id": sample["id"],
        "task": task.name,
        "text": sample["text"],
        "context": sample.get("context") or "",
        "label": sample["label"],
        "polarity": sample["polarity"],
        "weight": sample.get("weight", 1.0),
        "teacher": teacher.name,
        "status": "accepted" if reply.valid else "rejected",
        "cot": reply.text,
        "tries": reply.tries,
        "errors": [asdict(problem) for problem in reply.problems],
    }


@dataclass
class SynthesisCounts:
    accepted: int = 0
    rejected: int = 0
    retried: int = 0  # samples that needed more than one try
    failed: int = 0  # samples left unwritten because their requests kept failing
    skipped: int = 0  # samples written by an earlier run
    errors: Counter = field(default_factory=Counter)  # failed tries and failed requests, by kind

    def add(self, record: dict) -> None:
        if record["status"] == "accepted":
            self.accepted += 1
        else:
            self.rejected += 1
        self.retried += record["tries"] > 1
        self.errors.update(error["kind"] for error in record["errors"])

    def as_dict(self) -> dict:
        return asdict(self) | {"errors": dict(self.errors.most_common())}


def synthesize(args: SynthesizeArguments, dataset: Dataset | None = None) -> dict:
    """Write a record for every sample of `args.task`/`args.split` not yet in `args.output_file`; the counts."""
    task = get_task(args.task)
    if dataset is None:
        dataset = load_task_dataset(args.task, args.data_dir, args.split, skip_bad_rows=args.skip_bad_rows)
    dataset = first_rows(dataset, args.limit)
    require_unique_ids(f"{args.task} {args.split} rows", dataset["id"])
    output = Path(args.output_file)
    done = {(record["task"], record["id"]) for record in read_records(output)}
    todo = [i for i, sample_id in enumerate(dataset["id"]) if (task.name, sample_id) not in done]
    counts = SynthesisCounts(skipped=len(dataset) - len(todo))
    if todo:
        teacher = build_teacher(args)
        output.parent.mkdir(parents=True, exist_ok=True)
        with (
            open(output, "a", encoding="utf-8") as handle,
            tqdm(total=len(dataset), initial=counts.skipped, desc=f"synthesize {task.name}") as bar,
            ThreadPoolExecutor(args.teacher_concurrency) as pool,
        ):
            tries, tolerance = args.teacher_max_tries, args.teacher_tolerance
            futures = {pool.submit(synthesize_sample, dataset[i], task, teacher, tries, tolerance): i for i in todo}
            try:
                for future in as_completed(futures):
                    try:
                        record = future.result()
                    except TeacherRequestError as error:
                        counts.failed += 1
                        logger.warning("sample %s left for a rerun: %s", dataset[futures[future]]["id"], error)
                    else:
                        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                        handle.flush()
                        counts.add(record)
                    bar.update()
                    bar.set_postfix(
                        accepted=counts.accepted, rejected=counts.rejected, failed=counts.failed, refresh=False
                    )
            except BaseException:
                # Stop at once (an error, Ctrl-C): drop the queued samples, let the running ones finish.
                pool.shutdown(cancel_futures=True)
                raise
        counts.errors.update(teacher.request_errors)
    logger.info(
        "%s: %d accepted, %d rejected, %d needed retries, %d failed (rerun to retry), %d already written; "
        "errors by kind: %s",
        output,
        counts.accepted,
        counts.rejected,
        counts.retried,
        counts.failed,
        counts.skipped,
        dict(counts.errors) or "none",
    )
    return counts.as_dict()
