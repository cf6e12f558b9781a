"""A teacher behind any OpenAI-compatible chat endpoint: vLLM, SGLang, Ollama, llama.cpp server, OpenAI."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request

from hintgrpo.teachers.base import Teacher, TeacherRequestError, TeacherSetupError

# Read in this order; the key is only ever put in the Authorization header.
API_KEY_ENV = ("HINTGRPO_TEACHER_API_KEY", "OPENAI_API_KEY")
RETRIED_STATUS = frozenset({408, 429})  # and every 5xx
# How much of a reply is redacted before it is cut to print length (so a key the cut would split is still found).
ERROR_BODY_BYTES = 64 * 1024
BEARER_TOKEN = re.compile(r"Bearer\s+[^\s\"',;}\]]+", re.IGNORECASE)


def api_key_from_env() -> str | None:
    return next((os.environ[name] for name in API_KEY_ENV if os.environ.get(name)), None)


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
