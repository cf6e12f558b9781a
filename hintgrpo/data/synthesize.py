"""Teacher CoT synthesis: validated DC-format reasoning per sample, appended to a resumable JSONL file.

Each sample gets up to `max_tries` teacher attempts; a rejected attempt is answered with the validation
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
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset
from tqdm.auto import tqdm

from hintgrpo.configs import SynthesizeArguments
from hintgrpo.data.errors import require_unique_ids
from hintgrpo.data.loaders import load_task_dataset
from hintgrpo.data.prompts import build_messages
from hintgrpo.data.teacher import (
    API_KEY_ENV,
    LexiconTeacher,
    OpenAITeacher,
    Teacher,
    TeacherRequestError,
    TeacherSetupError,
    TransformersTeacher,
    feedback_message,
    teacher_messages,
)
from hintgrpo.jsonl import read_records
from hintgrpo.preprocess.arguments import TEACHER_BACKENDS
from hintgrpo.reasoning import discrimination_opening, format_score, parse_completion
from hintgrpo.tasks import TaskSpec, get_task

logger = logging.getLogger(__name__)

COT_COLUMNS = ("id", "task", "label", "polarity", "weight")


@dataclass(frozen=True)
class Problem:
    kind: str  # format, polarity, answer or consistency
    message: str


def validate_cot(cot: str, sample: dict, task: TaskSpec, tolerance: float) -> Problem | None:
    """Why `cot` is not a usable rationale for `sample` (None when it is).

    It must be well-formed DC, state the gold polarity and reach the gold answer: the gold label, or a score
    within `tolerance` of the gold score whose own polarity agrees with the stated one.
    """
    parsed = parse_completion(cot, task)
    gold_polarity = sample["polarity"]
    if not parsed.well_formed:
        if parsed.polarity is None:
            opening = discrimination_opening(gold_polarity).replace("\n", "\\n")
            return Problem("format", f"no polarity from {task.coarse_format()} stated: begin with {opening}")
        if parsed.answer is None:
            return Problem("format", f"no valid answer: end with <answer>{task.answer_format()}</answer>")
        return Problem(
            "format",
            "the structure is wrong: write <think>, <discrimination>…</discrimination>, a non-empty "
            "<calibration>…</calibration>, </think>, then <answer>…</answer>, and nothing else",
        )
    if parsed.polarity != gold_polarity:
        return Problem("polarity", f"the discrimination says {parsed.polarity} but the gold result is {gold_polarity}")
    if not task.is_regression:
        if parsed.answer != sample["label"]:
            return Problem("answer", f"the answer {parsed.answer} is not the gold label {sample['label']}")
        return None
    gold, score = float(sample["label"]), parsed.answer
    if abs(score - gold) > tolerance:
        return Problem(
            "answer",
            f"the answer {format_score(score)} is {abs(score - gold):.2f} away from the gold score "
            f"{format_score(gold)} (at most {tolerance:g} allowed)",
        )
    if task.polarity_of(score) != parsed.polarity:
        return Problem(
            "consistency", f"the answer {format_score(score)} is {task.polarity_of(score)}, not {parsed.polarity}"
        )
    return None


def synthesize_sample(sample: dict, task: TaskSpec, teacher: Teacher, max_tries: int, tolerance: float) -> dict:
    """Ask `teacher` until a rationale validates or `max_tries` are spent; the record to write."""
    conversation = teacher_messages(sample, task)
    problems = []
    for _ in range(max_tries):
        cot = teacher.complete(conversation, sample)
        problem = validate_cot(cot, sample, task, tolerance)
        if problem is None:
            break
        problems.append(problem)
        conversation = [*conversation, {"role": "assistant", "content": cot}, feedback_message(problem.message)]
    return {
        "id": sample["id"],
        "task": task.name,
        "text": sample["text"],
        "context": sample.get("context") or "",
        "label": sample["label"],
        "polarity": sample["polarity"],
        "weight": sample.get("weight", 1.0),
        "teacher": teacher.name,
        "status": "rejected" if problem else "accepted",
        "cot": cot,
        "tries": len(problems) + (problem is None),
        "errors": [asdict(p) for p in problems],
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


def build_teacher(args: SynthesizeArguments) -> Teacher:
    if args.backend == "lexicon":
        return LexiconTeacher()
    if args.teacher_model is None:
        raise TeacherSetupError(f"the {args.backend} backend needs --teacher_model")
    if args.backend == "transformers":
        return TransformersTeacher(args.teacher_model, batch_size=args.concurrency, max_new_tokens=args.max_new_tokens)
    if args.backend == "openai":
        return OpenAITeacher(
            args.base_url,
            args.teacher_model,
            api_key=next((os.environ[name] for name in API_KEY_ENV if os.environ.get(name)), None),
            timeout=args.timeout,
            max_new_tokens=args.max_new_tokens,
            max_retries=args.max_request_retries,
            backoff_base=args.backoff_base,
            backoff_max=args.backoff_max,
        )
    raise TeacherSetupError(f"unknown backend {args.backend!r}; expected one of {', '.join(TEACHER_BACKENDS)}")


def synthesize(args: SynthesizeArguments, dataset: Dataset | None = None) -> dict:
    """Write a record for every sample of `args.task`/`args.split` not yet in `args.output_file`; the counts."""
    task = get_task(args.task)
    if args.max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {args.max_tries}")
    if dataset is None:
        dataset = load_task_dataset(args.task, args.data_dir, args.split, skip_bad_rows=args.skip_bad_rows)
    if args.limit is not None:
        dataset = dataset.select(range(min(args.limit, len(dataset))))
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
            ThreadPoolExecutor(args.concurrency) as pool,
        ):
            futures = {
                pool.submit(synthesize_sample, dataset[i], task, teacher, args.max_tries, args.tolerance): i
                for i in todo
            }
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


def load_cot_dataset(path: str | os.PathLike, task: str | None = None, prompt_style: str | None = None) -> Dataset:
    """The accepted records of a synthesis file as TRL conversational prompt–completion data.

    Columns: `prompt` (the student's chat prompt: `build_messages` in `prompt_style`), `completion`
    (`[{"role": "assistant", "content": cot}]`), and `id`, `task`, `label`, `polarity`, `weight`. With `task`, only
    that task's records. The file is only read, so it may still be being written.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: write it with `hintgrpo synthesize --output_file {path}`")
    records = [
        record
        for record in read_records(path, repair=False)
        if record["status"] == "accepted" and task in (None, record["task"])
    ]
    if not records:
        raise ValueError(f"{path} holds no accepted records" + (f" of task {task!r}" if task else ""))
    kinds = {get_task(record["task"]).kind for record in records}
    if len(kinds) > 1:
        raise ValueError(f"{path} mixes regression and classification tasks (their labels differ in type): pass task")
    return Dataset.from_list(
        [
            {key: record[key] for key in COT_COLUMNS}
            | {
                "prompt": build_messages(record, prompt_style=prompt_style),
                "completion": [{"role": "assistant", "content": record["cot"]}],
            }
            for record in records
        ]
    )
