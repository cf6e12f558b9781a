"""A teacher that is a local chat model (shipped name, HF id or folder), loaded with transformers."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from hintgrpo.models import generate_batch, load_for_generation
from hintgrpo.teachers.base import Teacher


class TransformersTeacher(Teacher):
    """A local chat model (shipped name, HF id or folder), greedy.

    Calls that arrive together are generated as one batch: each call queues its conversation, and whichever
    thread holds the model generates everything queued (up to `batch_size`) while the others wait.
    """

    def __init__(self, model: str, batch_size: int = 8, max_new_tokens: int = 512, dtype: str = "auto"):
        super().__init__()
        self.name = f"transformers:{model}"
        self.model, self.tokenizer = load_for_generation(model, dtype)
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.queued: queue.SimpleQueue[tuple[list[dict], Future]] = queue.SimpleQueue()
        self.generating = threading.Lock()

    def complete(self, conversation: list[dict], sample: dict) -> str:
        reply: Future[str] = Future()
        self.queued.put((conversation, reply))
        while not reply.done():
            with self.generating:
                self.generate_queued()
        return reply.result()

    def generate_queued(self) -> None:
        batch = []
        while len(batch) < self.batch_size and not self.queued.empty():
            batch.append(self.queued.get())
        if not batch:
            return
        try:
            completions = generate_batch(self.model, self.tokenizer, [c for c, _ in batch], self.max_new_tokens)
        except Exception as error:
            for _, reply in batch:
                reply.set_exception(error)
            return
        for (_, reply), completion in zip(batch, completions, strict=True):
            reply.set_result(completion)
