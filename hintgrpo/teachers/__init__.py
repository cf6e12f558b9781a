"""Teachers: chat models that write what the student learns from, told the gold answer.

- `base`: the `Teacher` interface and its errors;
- backends: `openai_api.OpenAITeacher` (any OpenAI-compatible endpoint), `local.TransformersTeacher` (a local
  model, batched) and `lexicon.LexiconTeacher` (offline, deterministic, for demos and CI);
- `asking`: the retry-with-feedback loop every request goes through, and running requests concurrently;
- `rationale`: the DC rationale request and the validation of its replies;
- `synthesize`: `hintgrpo synthesize`, a resumable JSONL of validated rationales.

The preprocessing steps (paraphrase, self-questioning, rewrite) ask their own questions through `asking`.
"""

from __future__ import annotations

from hintgrpo.configs import TEACHER_BACKENDS, TeacherArguments
from hintgrpo.teachers.base import Teacher, TeacherRequestError, TeacherSetupError
from hintgrpo.teachers.lexicon import LexiconTeacher
from hintgrpo.teachers.local import TransformersTeacher
from hintgrpo.teachers.openai_api import OpenAITeacher, api_key_from_env


def build_teacher(args: TeacherArguments) -> Teacher:
    if args.teacher_backend == "lexicon":
        return LexiconTeacher()
    if args.teacher_model is None:
        raise TeacherSetupError(f"the {args.teacher_backend} backend needs --teacher_model")
    if args.teacher_backend == "transformers":
        return TransformersTeacher(
            args.teacher_model,
            batch_size=args.teacher_concurrency,
            max_new_tokens=args.teacher_max_new_tokens,
            dtype=args.teacher_dtype,
        )
    if args.teacher_backend == "openai":
        return OpenAITeacher(
            args.teacher_base_url,
            args.teacher_model,
            api_key=api_key_from_env(),
            timeout=args.teacher_timeout,
            max_new_tokens=args.teacher_max_new_tokens,
            max_retries=args.teacher_max_request_retries,
            backoff_base=args.teacher_backoff_base,
            backoff_max=args.teacher_backoff_max,
        )
    raise TeacherSetupError(f"unknown backend {args.teacher_backend!r}; expected one of {', '.join(TEACHER_BACKENDS)}")


__all__ = [
    "LexiconTeacher",
    "OpenAITeacher",
    "Teacher",
    "TeacherRequestError",
    "TeacherSetupError",
    "TransformersTeacher",
    "build_teacher",
]
