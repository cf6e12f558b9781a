"""Dataclass arguments for the scripts and CLI steps, parsed by `trl.TrlParser` (YAML via --config, and CLI).

It imports nothing from hintgrpo, so every layer (data, teachers, multimodal, preprocess, the trainers) can take
its options from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

DTYPE_CHOICES = ("auto", "float32", "bfloat16")


def dtype_field(about: str = "", aliases: tuple[str, ...] = ()):
    """A `--dtype` option (`about` says whose model): the precision of a local model's weights."""
    help_text = (
        f"{about}Precision of the local model's weights: auto is bfloat16 where the device computes it natively (a "
        "CUDA GPU with bf16, a CPU with avx512_bf16 or AMX), else float32; the log says which and why."
    )
    metadata = {"help": help_text, "choices": list(DTYPE_CHOICES)} | ({"aliases": list(aliases)} if aliases else {})
    return field(default="auto", metadata=metadata)


@dataclass
class DataArguments:
    task: str = field(
        default="emobank", metadata={"help": "Task name from hintgrpo.tasks (e.g. emobank, meld_sentiment)."}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with one subfolder per dataset; defaults to $HINTGRPO_DATA_DIR or $DATA_DIR."},
    )
    skip_bad_rows: bool = field(
        default=False, metadata={"help": "Skip and count malformed rows instead of stopping at the first one."}
    )


@dataclass
class PromptArguments:
    prompt_style: str | None = field(
        default=None,
        metadata={
            "help": "full: the task, the format and a worked example (zero-shot models); brief: the task only, for a "
            "model fine-tuned on the format. Default: the style the model was fine-tuned with, else full.",
            "choices": ["full", "brief"],
        },
    )


MODALITY_ROUTES = ("text", "mse_adapter", "native")


@dataclass
class MediaArguments:
    """What the model sees besides the text, and where each row's features or media files come from (by `id`)."""

    modality_route: str = field(
        default="text",
        metadata={
            "help": "text: the utterance only. mse_adapter: a frozen text LLM reads pre-extracted features through an "
            "MSE-Adapter's pseudo tokens. native: a multimodal model (Qwen2-VL, Qwen2.5-VL, Qwen2.5-Omni) reads the "
            "media through its processor.",
            "choices": list(MODALITY_ROUTES),
        },
    )
    features_file: str | None = field(
        default=None,
        metadata={"help": "MMSA feature pickle (mse_adapter): the split's features join the rows by id."},
    )
    trust_pickle: bool = field(default=False, metadata={"help": "Unpickle --features_file without the allow-list."})
    feature_columns: list[str] = field(
        default_factory=lambda: ["audio", "vision"],
        metadata={"help": "Feature arrays [frames, size] the MSE-Adapter reads, by their key in the pickle."},
    )
    feature_dims: list[int] | None = field(
        default=None,
        metadata={"help": "Size of each feature column's frames (default: MMSA's sizes for MOSI / MOSEI / SIMS)."},
    )
    media_file: str | None = field(
        default=None,
        metadata={
            "help": "JSONL or CSV manifest (native): an `id` and one field per media column holding a file path "
            "(relative to the manifest's folder); it joins the rows by id."
        },
    )
    media_columns: list[str] = field(
        default_factory=lambda: ["audio", "video"],
        metadata={"help": "Media the native processor reads: audio, video, image."},
    )

    def __post_init__(self):
        if self.modality_route not in MODALITY_ROUTES:
            raise ValueError(f"modality_route={self.modality_route!r} is not one of {list(MODALITY_ROUTES)}")
        if self.feature_dims is not None and len(self.feature_dims) != len(self.feature_columns):
            raise ValueError(f"{len(self.feature_dims)} feature_dims for feature_columns {self.feature_columns}")
        if self.modality_route == "text" and (self.features_file or self.media_file):
            raise ValueError("features_file and media_file need modality_route mse_adapter or native")
        # SFTScriptArguments also inherits the preprocessing options, whose checks run next.
        if hasattr(super(), "__post_init__"):
            super().__post_init__()


@dataclass
class MultimodalArguments(MediaArguments):
    """The MSE-Adapter's sizes for a new adapter (one saved with the model being trained is continued as it is)."""

    feature_encoder_sizes: list[int] | None = field(
        default=None,
        metadata={"help": "LSTM width per feature column (default: 64 for audio, 32 for vision, as in the paper)."},
    )
    num_pseudo_tokens: int = field(default=4, metadata={"help": "Pseudo tokens P the adapter writes into the prompt."})
    adapter_fusion_size: int = field(
        default=256, metadata={"help": "Width of the Text-Guide-Mixer and the multi-scale fusion."}
    )

    def __post_init__(self):
        if self.feature_encoder_sizes is not None and len(self.feature_encoder_sizes) != len(self.feature_columns):
            raise ValueError(
                f"{len(self.feature_encoder_sizes)} feature_encoder_sizes for feature_columns {self.feature_columns}"
            )
        super().__post_init__()


@dataclass
class EvaluateArguments(MediaArguments, PromptArguments, DataArguments):
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "A shipped model's name (see `hintgrpo models prepare`), an HF id or a local folder."},
    )
    split: str = field(default="dev", metadata={"help": "Dataset split to evaluate."})
    output_dir: str = field(default="outputs/eval", metadata={"help": "Where metrics, predictions and plots go."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N rows."})
    batch_size: int = field(
        default=128,
        metadata={"help": "Rows decoded together; a finished row's place goes to the next (text route)."},
    )
    max_new_tokens: int = field(default=128, metadata={"help": "Generation budget per completion."})
    dtype: str = dtype_field()


TEACHER_BACKENDS = ("openai", "transformers", "lexicon")
PREPROCESS_STEPS = ("augment", "score", "rewrite")


def check_options(args) -> None:
    """Raise on an out-of-range option of whichever of the option classes below `args` inherits."""
    for name in ("teacher_max_tries", "teacher_concurrency", "paraphrases", "feature_samples", "max_edits"):
        if getattr(args, name, 1) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(args, name)}")
    if getattr(args, "teacher_max_request_retries", 0) < 0:
        raise ValueError(f"teacher_max_request_retries must be non-negative, got {args.teacher_max_request_retries}")
    if not 0.0 < getattr(args, "diffusion_strength", 1.0) <= 1.0:
        raise ValueError(f"diffusion_strength must be in (0, 1], got {args.diffusion_strength}")
    if not 0.0 <= getattr(args, "min_weight", 0.0) <= 1.0:
        raise ValueError(f"min_weight must be in [0, 1], got {args.min_weight}")
    for name in ("fidelity_exponent", "consistency_exponent", "reliability_exponent"):
        if getattr(args, name, 0.0) < 0:
            raise ValueError(f"{name} must be non-negative, got {getattr(args, name)}")
    steps = getattr(args, "preprocess", [])
    unknown = [step for step in steps if step not in PREPROCESS_STEPS]
    if unknown:
        raise ValueError(f"unknown preprocessing step(s) {unknown}; expected some of {list(PREPROCESS_STEPS)}")
    if "rewrite" in steps and "score" not in steps[: steps.index("rewrite")]:
        raise ValueError("the rewrite step rewrites rows by their scores: put score before rewrite")


@dataclass
class CheckedArguments:
    def __post_init__(self):
        check_options(self)


def teacher_backend_field(default: str):
    return field(
        default=default,
        metadata={
            "help": "openai: an OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, OpenAI); transformers: a local "
            "model; lexicon: offline, deterministic VADER-grounded rationales and edits (demos, CI).",
            "choices": list(TEACHER_BACKENDS),
            "aliases": ["--backend"],
        },
    )


@dataclass
class TeacherArguments(CheckedArguments):
    """The teacher that writes rationales (`hintgrpo synthesize`) and paraphrases and rewrites rows (preprocessing).

    `hintgrpo synthesize`, whose every option is the teacher's, also takes each of these without the `teacher_`
    prefix (`--backend`, `--base_url`, ...), in YAML too.
    """

    teacher_backend: str = teacher_backend_field("lexicon")
    teacher_model: str | None = field(
        default=None,
        metadata={
            "help": "Model served at --teacher_base_url (openai), or a shipped name / HF id / folder (transformers)."
        },
    )
    teacher_base_url: str = field(
        default="http://localhost:8000/v1",
        metadata={
            "help": "Endpoint base URL; the API key is read from $HINTGRPO_TEACHER_API_KEY or $OPENAI_API_KEY.",
            "aliases": ["--base_url"],
        },
    )
    teacher_max_tries: int = field(
        default=3,
        metadata={
            "help": "Teacher attempts per request; each retry is told why the last reply was rejected.",
            "aliases": ["--max_tries"],
        },
    )
    teacher_tolerance: float = field(
        default=0.25,
        metadata={
            "help": "Largest accepted |score - gold| of a rationale's answer (regression tasks).",
            "aliases": ["--tolerance"],
        },
    )
    teacher_concurrency: int = field(
        default=8,
        metadata={
            "help": "Requests in flight at once (openai), or the batch size of the local model (transformers).",
            "aliases": ["--concurrency"],
        },
    )
    teacher_timeout: float = field(
        default=60.0, metadata={"help": "Seconds to wait for one HTTP request.", "aliases": ["--timeout"]}
    )
    teacher_max_request_retries: int = field(
        default=5,
        metadata={
            "help": "Retries of a request failing with 5xx/408/429, a timeout, or malformed JSON.",
            "aliases": ["--max_request_retries"],
        },
    )
    teacher_backoff_base: float = field(
        default=1.0,
        metadata={
            "help": "First retry delay in seconds; it doubles per retry (with jitter).",
            "aliases": ["--backoff_base"],
        },
    )
    teacher_backoff_max: float = field(
        default=30.0, metadata={"help": "Longest retry delay in seconds.", "aliases": ["--backoff_max"]}
    )
    teacher_max_new_tokens: int = field(
        default=512, metadata={"help": "Generation budget per teacher reply.", "aliases": ["--max_new_tokens"]}
    )
    teacher_dtype: str = dtype_field("transformers backend: ")


@dataclass
class SynthesizeArguments(DataArguments, TeacherArguments):
    split: str = field(default="train", metadata={"help": "Dataset split to write teacher reasoning for."})
    output_file: str = field(
        default="outputs/cot/train.jsonl", metadata={"help": "Append-only JSONL of records; a rerun resumes it."}
    )
    limit: int | None = field(default=None, metadata={"help": "Only the first N rows."})
    # Synthesis is what a real teacher is for; the preprocessing steps default to the offline one.
    teacher_backend: str = teacher_backend_field("openai")
    # --dtype here only: the recipes, whose preprocessing steps take the teacher options, have ModelConfig's --dtype.
    teacher_dtype: str = dtype_field("transformers backend: ", aliases=("--dtype",))


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
    """Steps run on the teacher CoT records before SFT, in order; none by default (see hintgrpo.preprocess).

    Names carry a prefix where a bare name would be ambiguous beside SFTConfig's: `SFTScriptArguments` inherits
    these and the recipe parses both into one command line.
    """

    preprocess: list[str] = field(
        default_factory=list,
        metadata={
            "help": f"Steps to run before training, in order, from {list(PREPROCESS_STEPS)}; rewrite needs score first."
        },
    )
    preprocess_cache_dir: str | None = field(
        default=None, metadata={"help": "Where step results are cached (default: $HINTGRPO_CACHE/preprocess)."}
    )


@dataclass
class SFTScriptArguments(MultimodalArguments, PromptArguments, PreprocessArguments):
    """What `recipes/sft.py` trains on, and the preprocessing steps run on it first (`preprocess: [augment, score,
    rewrite]`, see hintgrpo.preprocess); training and model options come from trl's SFTConfig and ModelConfig."""

    cot_file: str | None = field(
        default=None,
        metadata={"help": "Teacher CoT JSONL written by `hintgrpo synthesize` (its accepted records are trained on)."},
    )
    eval_cot_file: str | None = field(
        default=None, metadata={"help": "Held-out CoT JSONL for the eval loss (used when eval_strategy is not 'no')."}
    )
    task: str | None = field(
        default=None, metadata={"help": "Train only on records of this task (a CoT file may mix several)."}
    )
    balance_polarities: bool = field(
        default=False,
        metadata={
            "help": "Draw training rows so that each gold polarity comes up equally often (rarer polarities' rows "
            "repeat). EmoBank train is three quarters neutral: a small SFT budget without it learns to answer neutral."
        },
    )


@dataclass
class GRPOScriptArguments(MultimodalArguments, PromptArguments, DataArguments):
    """What `recipes/hint_grpo.py` trains on and how it is rewarded (the rest: HintGRPOConfig, ModelConfig)."""

    split: str = field(default="train", metadata={"help": "Dataset split whose prompts are sampled."})
    eval_split: str = field(
        default="dev",
        metadata={"help": "Split whose prompts are scored, without hints, when eval_strategy is not 'no'."},
    )
    limit: int | None = field(default=None, metadata={"help": "Use only the first N rows (of each split)."})
    eval_ids_file: str | None = field(
        default=None,
        metadata={
            "help": "Score only the eval_split rows whose id is listed in this file (one per line), e.g. the "
            "training prompts that were hard at the start, to follow them over training."
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["format", "polarity", "regression", "consistency"],
        metadata={"help": "Reward names from hintgrpo.rewards (weights: --reward_weights, or --<name>_weight)."},
    )
    regression_tau: float | None = field(
        default=None,
        metadata={"help": "Error at which the regression reward reaches 0 (default: regression_tau_std label stds)."},
    )
    regression_tau_std: float = field(
        default=1.5,
        metadata={
            "help": "Without regression_tau, the regression reward reaches 0 at this many standard deviations of "
            "the task's training labels (1.5 on EmoBank: 0.79; always answering 0 then earns 0.60, not 0.76)."
        },
    )
    # One scalar per reward: W&B sweeps pass a list as the single argument "--reward_weights=[0.5, 1.0]", which no
    # argument parser reads, so sweeps tune these instead.
    format_weight: float | None = field(default=None, metadata={"help": "Weight of the format reward."})
    polarity_weight: float | None = field(default=None, metadata={"help": "Weight of the polarity reward."})
    regression_weight: float | None = field(default=None, metadata={"help": "Weight of the regression reward."})
    consistency_weight: float | None = field(default=None, metadata={"help": "Weight of the consistency reward."})
    accuracy_weight: float | None = field(default=None, metadata={"help": "Weight of the accuracy reward."})

    def resolve_reward_weights(self, reward_weights: list[float] | None) -> list[float] | None:
        """TRL's `reward_weights` (None: all 1) with every `--<name>_weight` given put in its reward's place."""
        if reward_weights is not None and len(reward_weights) != len(self.reward_funcs):
            raise ValueError(
                f"{len(reward_weights)} reward_weights {reward_weights} for {len(self.reward_funcs)} "
                f"reward_funcs {self.reward_funcs}"
            )
        overrides = {
            option.name.removesuffix("_weight"): getattr(self, option.name)
            for option in fields(self)
            if option.name.endswith("_weight") and getattr(self, option.name) is not None
        }
        unused = [name for name in overrides if name not in self.reward_funcs]
        if unused:
            raise ValueError(f"weights given for {unused}, which are not in reward_funcs {self.reward_funcs}")
        if not overrides:
            return reward_weights
        weights = reward_weights if reward_weights is not None else [1.0] * len(self.reward_funcs)
        return [overrides.get(name, weight) for name, weight in zip(self.reward_funcs, weights, strict=True)]


@dataclass
class BaselinesArguments(DataArguments):
    """What `hintgrpo baselines` fits (on all of `train_split`) and scores (on `split`); see hintgrpo.baselines."""

    split: str = field(default="dev", metadata={"help": "Dataset split the baselines are scored on."})
    limit: int | None = field(default=None, metadata={"help": "Score only the first N rows of the split."})
    train_split: str = field(
        default="train", metadata={"help": "Split the baselines are fit on (MUStARD: fold<k>_train)."}
    )
    output_dir: str = field(
        default="outputs/baselines", metadata={"help": "Where metrics and predictions_<baseline>.jsonl go."}
    )
    baselines: list[str] = field(
        default_factory=lambda: ["constant", "vader", "tfidf"],
        metadata={"help": "Baseline names from hintgrpo.baselines: constant, vader, tfidf, probe."},
    )
    probe_model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "Frozen model whose mean-pooled states the probe reads (shipped name, HF id or folder)."},
    )
    probe_max_train_rows: int | None = field(
        default=2000, metadata={"help": "The probe is fit on a seeded subset of this many train rows (None: all)."}
    )
    probe_batch_size: int = field(default=32, metadata={"help": "Texts encoded together by the probe's model."})
