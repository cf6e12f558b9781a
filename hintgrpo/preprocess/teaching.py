"""Asking the teacher for a reply that passes a check, with the problem fed back, as synthesis does.

A teacher whose requests keep failing (TeacherRequestError) stops the step: nothing is cached, and a rerun
starts it again once the endpoint is back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from hintgrpo.configs import SynthesizeArguments
from hintgrpo.data.synthesize import build_teacher
from hintgrpo.data.teacher import Teacher
from hintgrpo.preprocess.arguments import TeacherArguments

Item = TypeVar("Item")
Result = TypeVar("Result")


def make_teacher(args: TeacherArguments) -> Teacher:
    return build_teacher(
        SynthesizeArguments(
            backend=args.teacher_backend,
            teacher_model=args.teacher_model,
            base_url=args.teacher_base_url,
            concurrency=args.teacher_concurrency,
            timeout=args.teacher_timeout,
            max_new_tokens=args.teacher_max_new_tokens,
        )
    )


def retry_message(problem: str) -> dict:
    return {"role": "user", "content": f"That reply was rejected: {problem}. Write the whole reply again."}


def ask_until_valid(
    teacher: Teacher,
    conversation: list[dict],
    sample: dict,
    check: Callable[[str], str | None],
    max_tries: int,
) -> tuple[str | None, list[str]]:
    """The first reply that `check` finds no problem with (None after `max_tries`), and the problems found."""
    problems = []
    for _ in range(max_tries):
        reply = teacher.complete(conversation, sample).strip()
        problem = check(reply)
        if problem is None:
            return reply, problems
        problems.append(problem)
        conversation = [*conversation, {"role": "assistant", "content": reply}, retry_message(problem)]
    return None, problems


def run_concurrently(function: Callable[[Item], Result], items: Iterable[Item], concurrency: int) -> list[Result]:
    """`[function(item) for item in items]`, up to `concurrency` at a time (teacher calls wait on the network)."""
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return list(pool.map(function, items))
