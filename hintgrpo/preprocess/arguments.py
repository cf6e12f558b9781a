"""Options of the preprocessing steps, as dataclasses for `trl.TrlParser`.

Names carry a prefix where a bare name would be ambiguous beside SFTConfig's, since `SFTScriptArguments`
inherits `PreprocessArguments` and the recipe parses both into one command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STEPS = ("augment", "score", "rewrite")
TEACHER_BACKENDS = ("openai", "transformers", "lexicon")


def check_options(args) -> None:
    """Raise on an out-of-range option of whichever of the dataclasses below `args` inherits."""
    if not 0.0 < getattr(args, "diffusion_strength", 1.0) <= 1.0:
        raise ValueError(f"diffusion_strength must be in (0, 1], got {args.diffusion_strength}")
    for name in ("paraphrases", "feature_samples", "max_edits", "teacher_max_tries"):
        if getattr(args, name, 1) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(args, name)}")
    if not 0.0 <= getattr(args, "min_weight", 0.0) <= 1.0:
        raise ValueError(f"min_weight must be in [0, 1], got {args.min_weight}")
    for name in ("fidelity_exponent", "consistency_exponent", "reliability_exponent"):
        if getattr(args, name, 0.0) < 0:
            raise ValueError(f"{name} must be non-negative, got {getattr(args, name)}")
    steps = getattr(args, "preprocess", [])
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        raise ValueError(f"unknown preprocessing step(s) {unknown}; expected some of {list(STEPS)}")
    if "rewrite" in steps and "score" not in steps[: steps.index("rewrite")]:
        raise ValueError("the rewrite step rewrites rows by their scores: put score before rewrite")


@dataclass
class CheckedArguments:
    def __post_init__(self):
        check_options(self)


@dataclass
class TeacherArguments(CheckedArguments):
    """The teacher that paraphrases, rewrites and writes rationales (see `hintgrpo synthesize` for the backends)."""

    teacher_backend: str = field(
        default="lexicon",
        metadata={
            "help": "lexicon: offline, deterministic (VADER-grounded edits and rationales); openai: an "
            "OpenAI-compatible chat endpoint; transformers: a local model.",
            "choices": list(TEACHER_BACKENDS),
        },
    )
    teacher_model: str | None = field(
        default=None, metadata={"help": "Model served at --teacher_base_url (openai), or a name/folder (transformers)."}
    )
    teacher_base_url: str = field(
        default="http://localhost:8000/v1",
        metadata={"help": "Endpoint base URL; the API key is read from $HINTGRPO_TEACHER_API_KEY or $OPENAI_API_KEY."},
    )
    teacher_max_tries: int = field(default=3, metadata={"help": "Teacher attempts per request, with feedback."})
    teacher_tolerance: float = field(
        default=0.25, metadata={"help": "Largest accepted |score - gold| of a new rationale's answer (regression)."}
    )
    teacher_concurrency: int = field(default=8, metadata={"help": "Teacher requests in flight at once."})
    teacher_timeout: float = field(default=60.0, metadata={"help": "Seconds to wait for one HTTP request."})
    teacher_max_new_tokens: int = field(default=512, metadata={"help": "Generation budget per teacher reply."})


@dataclass
class AugmentArguments(CheckedArguments):
    augmenters: list[str] = field(
        default_factory=lambda: ["paraphrase"],
        metadata={
            "help": "Augmenters by name (hintgrpo.preprocess.augment.AUGMENTERS): paraphrase (teacher paraphrase of "
            "the text), diffusion (class-conditional diffusion of audio/vision feature columns), self_question "
            "(a question about the affective cues and its answer, as an extra SFT example)."
        },
    )
    paraphrases: int = field(default=1, metadata={"help": "Paraphrases per row (paraphrase)."})
    max_edits: int = field(default=2, metadata={"help": "Word edits per paraphrase of the offline lexicon teacher."})
    feature_samples: int = field(default=1, metadata={"help": "Generated feature variants per row (diffusion)."})
    diffusion_strength: float = field(
        default=0.5,
        metadata={
            "help": "How far a variant departs from its source: the fraction of the noise schedule the source is "
            "noised to before denoising (1.0: a fresh sample of the row's label bin)."
        },
    )
    diffusion_train_steps: int = field(default=1000, metadata={"help": "Optimiser steps of the denoiser."})
    diffusion_inference_steps: int = field(default=50, metadata={"help": "DDIM steps of a full denoising."})
    diffusion_hidden_size: int = field(default=256, metadata={"help": "Width of the denoiser MLP."})
    preprocess_seed: int = field(default=0, metadata={"help": "Seed of the augmenters (results are reproducible)."})


@dataclass
class QualityArguments(CheckedArguments):
    """weight = min_weight + (1 - min_weight) * prod_k score_k ** exponent_k, in [min_weight, 1]."""

    min_weight: float = field(default=0.1, metadata={"help": "Weight of a row whose combined quality is 0."})
    fidelity_exponent: float = field(default=1.0, metadata={"help": "Exponent of each fidelity_<modality> score."})
    consistency_exponent: float = field(default=1.0, metadata={"help": "Exponent of the consistency score."})
    reliability_exponent: float = field(default=1.0, metadata={"help": "Exponent of the reliability score."})


@dataclass
class RewriteArguments(CheckedArguments):
    rewrite_threshold: float = field(
        default=0.5, metadata={"help": "Rows whose weight is below this go back to the teacher for a rewrite."}
    )


@dataclass
class PreprocessArguments(TeacherArguments, AugmentArguments, QualityArguments, RewriteArguments):
    """Steps run on the teacher CoT records before SFT, in order; none by default."""

    preprocess: list[str] = field(
        default_factory=list,
        metadata={"help": f"Steps to run before training, in order, from {list(STEPS)}; rewrite needs score first."},
    )
    preprocess_cache_dir: str | None = field(
        default=None, metadata={"help": "Where step results are cached (default: $HINTGRPO_CACHE/preprocess)."}
    )
