"""Teachers: write DC-format reasoning for a sample given its gold answer.

Backends: `OpenAITeacher` (any OpenAI-compatible chat endpoint: vLLM, SGLang, Ollama, llama.cpp server,
OpenAI), `TransformersTeacher` (a local model, batched) and `LexiconTeacher` (offline, for demos and CI).
A teacher is called from several threads at once, one call per attempt at a sample; the conversation it
gets is `teacher_messages(...)`, plus its rejected replies and the feedback on them.
"""

from __future__ import annotations

import http.client
import itertools
import json
import queue
import random
import re
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections import Counter
from concurrent.futures import Future

from hintgrpo.data.lexicon import lexicon_rationale
from hintgrpo.data.prompts import describe_modalities, format_example, user_prompt
from hintgrpo.models import generate_batch, load_for_generation
from hintgrpo.reasoning import format_score
from hintgrpo.tasks import TaskSpec, get_task

# Read in this order; the key is only ever put in the Authorization header.
API_KEY_ENV = ("HINTGRPO_TEACHER_API_KEY", "OPENAI_API_KEY")
RETRIED_STATUS = frozenset({408, 429})  # and every 5xx
# How much of a reply is redacted before it is cut to print length (so a key the cut would split is still found).
ERROR_BODY_BYTES = 64 * 1024
BEARER_TOKEN = re.compile(r"Bearer\s+[^\s\"',;}\]]+", re.IGNORECASE)


def teacher_messages(sample: dict, task: TaskSpec) -> list[dict]:
    """What a teacher is asked: the sample, its gold answer, and the DC format to explain it in."""
    gold = format_score(sample["label"]) if task.is_regression else sample["label"]
    system = (
        "You write reference reasoning for training a sentiment-analysis model. "
        f"The task: {task.instruction}\n"
        "You are given a sample and its gold answer. Write the reasoning an expert annotator would give for "
        "that answer, grounded in the sample (quote its words), in exactly this format:\n"
        f"{format_example(task)}\n\n"
        f"1. Discrimination: state the gold coarse result ({task.coarse_format()}) and one or two sentences "
        "of coarse evidence.\n"
        "2. Calibration: fine-grained analysis: intensity, negation, context and the available modalities.\n"
        f"3. Answer: the gold answer, {task.answer_format()}.\n"
        "Do not mention that you were given the answer. Reply with the formatted reasoning only."
    )
    modalities = describe_modalities(sample)
    if modalities:
        available = "Other modalities (described, not shown to you):\n" + "\n".join(f"- {m}" for m in modalities)
    else:
        available = "Only the text is available."
    user = (
        f"{user_prompt(sample['text'], sample.get('context') or '')}\n\n{available}\n\n"
        f"Gold coarse result: {sample['polarity']}\nGold answer: {gold}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def feedback_message(problem: str) -> dict:
    """The user turn that follows a rejected reply."""
    return {
        "role": "user",
        "content": f"That reply was rejected: {problem}. Write the whole reply again, in exactly the required "
        "format, reaching the gold answer.",
    }


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


class LexiconTeacher(Teacher):
    name = "lexicon"

    def complete(self, conversation: list[dict], sample: dict) -> str:
        return lexicon_rationale(sample, get_task(sample["task"]))


class OpenAITeacher(Teacher):
    """Chat completions over HTTP, retried with exponential backoff and jitter on transient failures."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_new_tokens: int = 512,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
    ):
        super().__init__()
        self.name = f"openai:{model}"
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.max_new_tokens = model, timeout, max_new_tokens
        self.max_retries, self.backoff_base, self.backoff_max = max_retries, backoff_base, backoff_max
        self._headers = {"Content-Type": "application/json"}
        self._api_key = api_key
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._counting = threading.Lock()

    def complete(self, conversation: list[dict], sample: dict) -> str:
        body = json.dumps({"model": self.model, "messages": conversation, "max_tokens": self.max_new_tokens})
        for attempt in itertools.count():
            try:
                return self.post(body.encode())
            except TeacherRequestError as error:
                with self._counting:
                    self.request_errors[error.kind] += 1
                if attempt == self.max_retries:
                    raise
                time.sleep(self.backoff_delay(attempt))

    def backoff_delay(self, attempt: int) -> float:
        """base · 2^attempt seconds, capped, then jittered down by up to half so clients spread out."""
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        return delay * random.uniform(0.5, 1.0)

    def post(self, body: bytes) -> str:
        """One request; transient failures raise TeacherRequestError, a refused request TeacherSetupError."""
        request = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = self.redact(error.read(ERROR_BODY_BYTES).decode("utf-8", errors="replace"))[:300]
            message = f"{self.url} answered HTTP {error.code}: {detail}"
            if error.code in RETRIED_STATUS or error.code >= 500:
                raise TeacherRequestError(f"http_{error.code}", message) from None
            raise TeacherSetupError(message) from None
        except TimeoutError:
            raise TeacherRequestError("timeout", f"{self.url}: no answer within {self.timeout:g} s") from None
        except urllib.error.URLError as error:
            kind = "timeout" if isinstance(error.reason, TimeoutError) else "connection"
            raise TeacherRequestError(kind, f"{self.url}: {error.reason}") from None
        except (ConnectionError, http.client.HTTPException) as error:
            raise TeacherRequestError("connection", f"{self.url}: {error!r}") from None
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            shown = self.redact(payload[:ERROR_BODY_BYTES].decode("utf-8", errors="replace"))[:200]
            raise TeacherRequestError("malformed_response", f"{self.url}: not a chat completion: {shown!r}")
        return content

    def redact(self, body: str) -> str:
        """A server's reply, safe to print: a server may echo the request, key included."""
        if self._api_key:
            body = body.replace(self._api_key, "[redacted]")
        return BEARER_TOKEN.sub("Bearer [redacted]", body)


class TransformersTeacher(Teacher):
    """A local chat model (shipped name, HF id or folder), greedy.

    Calls that arrive together are generated as one batch: each call queues its conversation, and whichever
    thread holds the model generates everything queued (up to `batch_size`) while the others wait.
    """

    def __init__(self, model: str, batch_size: int = 8, max_new_tokens: int = 512):
        super().__init__()
        self.name = f"transformers:{model}"
        self.model, self.tokenizer = load_for_generation(model)
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
