"""Chat prompts that ask for a DC-format answer, as TRL's conversational `prompt` column."""

from __future__ import annotations

from hintgrpo.reasoning import render
from hintgrpo.tasks import TaskSpec, get_task


def format_example(task: TaskSpec) -> str:
    """A worked completion in the task's own answer space, shown to the model once."""
    if task.is_regression:
        low, high = task.score_range
        answer = round(low + 0.3 * (high - low), 2)
        polarity = task.polarity_of(answer)
    else:
        answer = task.labels[-1]
        polarity = task.polarity_of(answer)
    return render(
        polarity,
        "One or two sentences of coarse evidence for that polarity.",
        "Finer analysis: how strong the cues are, the context, and what pulls the score up or down.",
        answer,
    )


def system_prompt(task: TaskSpec) -> str:
    return (
        f"You are an expert in sentiment analysis. {task.instruction}\n"
        "Reason in two phases, then answer, using exactly this format:\n"
        f"1. Discrimination: state the coarse result ({task.coarse_format()}) and its evidence.\n"
        "2. Calibration: refine it with fine-grained analysis.\n"
        f"3. Answer: {task.answer_format()}.\n\n"
        f"Example of the format:\n{format_example(task)}"
    )


def brief_system_prompt(task: TaskSpec) -> str:
    return f"{task.instruction} Reason in the discrimination-calibration format, then answer."


# "full" teaches the format (zero-shot models, teachers); "brief" names the task only, for a model fine-tuned on the
# format: it saves ~150 prompt tokens on every SFT sample, GRPO completion and evaluated row.
PROMPT_STYLES = {"full": system_prompt, "brief": brief_system_prompt}


def user_prompt(text: str, context: str = "") -> str:
    if context:
        return f"Dialogue so far:\n{context}\n\nUtterance to judge:\n{text}"
    return f"Utterance to judge:\n{text}"


# Sample columns that hold another modality: a file path / URL, or a [frames, size] feature array.
MODALITY_COLUMNS = ("audio", "vision", "video", "image")


def describe_modalities(sample: dict) -> list[str]:
    """One line per non-text modality of the sample, e.g. "audio: pre-extracted features, 50 frames of 5 values"."""
    lines = []
    for name in MODALITY_COLUMNS:
        value = sample.get(name)
        if value is None or len(value) == 0:
            continue
        if isinstance(value, str):
            lines.append(f"{name}: {value}")
        else:
            lines.append(f"{name}: pre-extracted features, {len(value)} frames of {len(value[0])} values")
    return lines


def build_messages(sample: dict, task: TaskSpec | None = None, prompt_style: str | None = None) -> list[dict]:
    """The chat prompt of `sample` in `prompt_style` (default: full)."""
    task = task or get_task(sample["task"])
    prompt_style = prompt_style or "full"
    if prompt_style not in PROMPT_STYLES:
        raise ValueError(f"prompt_style={prompt_style!r} is not one of {list(PROMPT_STYLES)}")
    return [
        {"role": "system", "content": PROMPT_STYLES[prompt_style](task)},
        {"role": "user", "content": user_prompt(sample["text"], sample.get("context") or "")},
    ]


def add_prompt(sample: dict, prompt_style: str | None = None) -> dict:
    """`datasets.map` step: the conversational `prompt` column TRL's trainers read."""
    return {"prompt": build_messages(sample, prompt_style=prompt_style)}
