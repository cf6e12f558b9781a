"""Asking a teacher until its reply passes a check, each rejected reply answered with why it was rejected.

A teacher whose requests keep failing raises TeacherRequestError out of `ask_until_valid`: the caller decides
whether that sample waits for a rerun (synthesis) or the whole step stops (the preprocessing steps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from hintgrpo.teachers.base import Teacher

Item = TypeVar("Item")
Result = TypeVar("Result")
Problem = TypeVar("Problem")  # what a check returns for a bad reply; str() of it is the feedback

RETRY_REQUEST = "Write the whole reply again."


def feedback_message(problem: str, request: str = RETRY_REQUEST) -> dict:
    """The user turn that follows a rejected reply."""
    return {"role": "user", "content": f"That reply was rejected: {problem}. {request}"}


@dataclass
class Reply(Generic[Problem]):
    text: str  # the reply that passed, or the last one rejected
    valid: bool
    problems: list[Problem]  # why each rejected reply was rejected, in order

    @property
    def accepted(self) -> str | None:
        return self.text if self.valid else None

    @property
    def tries(self) -> int:
        return len(self.problems) + self.valid


def ask_until_valid(
    teacher: Teacher,
    conversation: list[dict],
    sample: dict,
    check: Callable[[str], Problem | None],
    max_tries: int,
    request: str = RETRY_REQUEST,
) -> Reply[Problem]:
    """Up to `max_tries` replies to `conversation`, until `check` finds no problem with one (leading and trailing
    blanks stripped); after each rejected reply the teacher is told its problem and `request`."""
    problems: list[Problem] = []
    for _ in range(max_tries):
        reply = teacher.complete(conversation, sample).strip()
        problem = check(reply)
        if problem is None:
            return Reply(reply, True, problems)
        problems.append(problem)
        conversation = [*conversation, {"role": "assistant", "content": reply}, feedback_message(str(problem), request)]
    return Reply(reply, False, problems)


def run_concurrently(function: Callable[[Item], Result], items: Iterable[Item], concurrency: int) -> list[Result]:
    """`[function(item) for item in items]`, up to `concurrency` at a time (teacher calls wait on the network)."""
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return list(pool.map(function, items))
