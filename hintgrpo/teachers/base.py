"""What every teacher backend is: a chat model that replies to a conversation about a sample."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter


class TeacherRequestError(RuntimeError):
    """A request that kept failing through all its retries; `kind` is e.g. timeout, connection, http_503."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class TeacherSetupError(RuntimeError):
    """The teacher cannot work as configured (missing model, bad key, unknown model): retrying cannot help."""


class Teacher(ABC):
    name: str

    def __init__(self):
        # Failed requests by kind, including those that a retry recovered.
        self.request_errors: Counter[str] = Counter()

    @abstractmethod
    def complete(self, conversation: list[dict], sample: dict) -> str:
        """The teacher's reply to `conversation` about `sample`. Safe to call from several threads."""
