"""Steps the training recipes share: logging, their datasets, model loading, checkpoint resumption and saving."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path

import datasets
import transformers
from datasets import Dataset
from transformers import TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import ModelConfig

from hintgrpo.configs import GRPOScriptArguments, SFTScriptArguments
from hintgrpo.data import first_rows, load_task_dataset
from hintgrpo.data.prompts import add_prompt
from hintgrpo.models import resolve_model, trained_prompt_style
from hintgrpo.models.loading import PROMPT_STYLE_KEY
from hintgrpo.multimodal.data import with_media
from hintgrpo.preprocess.pipeline import preprocessed_sft_dataset
from hintgrpo.preprocess.records import load_cot_dataset
from hintgrpo.trainers.weighted_sft import SAMPLING_WEIGHT_COLUMN

logger = logging.getLogger(__name__)


def set_up_logging(training_args: TrainingArguments) -> None:
    """Log as TRL's and open-r1's scripts do: each process at its --log_level (--log_level_replica), transformers and
    datasets included. Left at the default ("passive"), hintgrpo's own progress is logged at INFO by the main process.

    transformers' progress bars (loading weights, writing checkpoint shards) are off: they would break into the
    training's progress bar.
    """
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    transformers.utils.logging.disable_progress_bar()
    if training_args.log_level == "passive" and training_args.should_log:
        log_level = logging.INFO
    logging.getLogger("hintgrpo").setLevel(log_level)


def sft_datasets(script_args: SFTScriptArguments, training_args: TrainingArguments) -> tuple[Dataset, Dataset | None]:
    """The accepted teacher CoT records to train on, and those to evaluate on when the run evaluates."""
    if script_args.cot_file is None:
        raise ValueError("no training data: pass --cot_file (the JSONL written by `hintgrpo synthesize`)")
    # Feature pickles are split like the data: teacher CoT is written for train samples, the eval CoT for dev ones.
    if script_args.preprocess:  # media join the records first: augmenters and scores read them
        train = preprocessed_sft_dataset(script_args, training_args)
    else:
        cot = load_cot_dataset(script_args.cot_file, script_args.task, script_args.prompt_style)
        train = with_media(cot, script_args, "train")
    if script_args.balance_polarities:
        train = with_polarity_balance(train)
    if training_args.eval_strategy == "no":
        return train, None
    if script_args.eval_cot_file is None:
        raise ValueError(f"eval_strategy={training_args.eval_strategy!r} needs --eval_cot_file")
    eval_cot = load_cot_dataset(script_args.eval_cot_file, script_args.task, script_args.prompt_style)
    return train, with_media(eval_cot, script_args, "dev")


def with_polarity_balance(dataset: Dataset) -> Dataset:
    """`dataset` with a `sampling_weight` column that makes each gold polarity equally likely to be drawn."""
    counts = Counter(dataset["polarity"])
    logger.info("balancing polarities by sampling weight: %s", dict(counts))
    return dataset.map(
        lambda polarity: {SAMPLING_WEIGHT_COLUMN: 1.0 / counts[polarity]}, input_columns="polarity", desc="balance"
    )


def prompt_dataset(script_args: GRPOScriptArguments) -> Dataset:
    """The task's samples with TRL's conversational `prompt` column (and their media, by modality_route), for GRPO."""
    dataset = load_task_dataset(script_args.task, script_args.data_dir, script_args.split, script_args.skip_bad_rows)
    dataset = first_rows(dataset, script_args.limit)
    prompts = dataset.map(add_prompt, fn_kwargs={"prompt_style": script_args.prompt_style}, desc="prompts")
    return with_media(prompts, script_args, script_args.split)


def rows_with_ids(dataset: Dataset, ids_file: str) -> Dataset:
    """The rows of `dataset` whose id is listed in `ids_file` (one per line), in the dataset's order."""
    with open(ids_file, encoding="utf-8") as file:
        wanted = {line.strip() for line in file if line.strip()}
    missing = wanted - set(dataset["id"])
    if missing:
        raise ValueError(f"{ids_file}: {len(missing)} listed id(s) are not in the dataset, e.g. {sorted(missing)[0]!r}")
    return dataset.filter(lambda sample_id: sample_id in wanted, input_columns="id", desc="select ids")


def model_path(model_args: ModelConfig, training_args: TrainingArguments) -> str:
    """The model to load: a shipped model's name becomes its prepared folder (prepared by the main process only)."""
    with training_args.main_process_first(desc="model preparation"):
        return resolve_model(model_args.model_name_or_path)


def resolve_prompt_style(script_args, model: str) -> None:
    """Fill in `prompt_style`: as given, else the style `model` was fine-tuned with, else the full format prompt."""
    script_args.prompt_style = script_args.prompt_style or trained_prompt_style(model) or "full"


def model_init_kwargs(model_args: ModelConfig, training_args: TrainingArguments) -> dict:
    """`from_pretrained` arguments from ModelConfig, with any `model_init_kwargs` of the config taking precedence."""
    return {
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {}),
    }


def checkpoint_to_resume(training_args: TrainingArguments) -> str | None:
    """`--resume_from_checkpoint` if given, else the newest complete checkpoint in output_dir, so a relaunched job
    continues; a checkpoint that a kill cut short is skipped with a warning saying why."""
    if training_args.resume_from_checkpoint is not None:
        return training_args.resume_from_checkpoint
    if not os.path.isdir(training_args.output_dir):
        return None
    found = []
    for entry in Path(training_args.output_dir).iterdir():
        step = entry.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        if entry.is_dir() and step != entry.name and step.isdigit():
            found.append((int(step), entry))
    for _, checkpoint in sorted(found, reverse=True):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            logger.info("resuming from %s", checkpoint)
            return str(checkpoint)
        logger.warning("skipping %s: %s (a save cut short?)", checkpoint, problem)
    return None


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None. transformers writes trainer_state.json last, so a checkpoint
    is complete when that file parses and every weight file it holds is whole (safetensors headers checked)."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    except (OSError, ValueError, KeyError):
        return "no readable trainer_state.json"
    weights = sorted(checkpoint.glob("*.safetensors"))
    if not weights and not any(checkpoint.glob("pytorch_model*.bin")) and not any(checkpoint.glob("global_step*")):
        return "no model weights"
    for path in weights:
        with open(path, "rb") as file:
            header_size = int.from_bytes(file.read(8), "little")
            try:
                header = json.loads(file.read(header_size))
            except ValueError:
                return f"{path.name} has a damaged header"
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
        if path.stat().st_size < 8 + header_size + max(ends, default=0):
            return f"{path.name} is truncated"
    return None


def train_and_save(trainer, training_args: TrainingArguments, prompt_style: str) -> None:
    """Train (resuming when there is a checkpoint), then save the model, tokenizer, metrics, state and model card, and
    push them all with `--push_to_hub`.

    The prompt style goes into the model's config, so every checkpoint is evaluated and trained on as it was prompted.
    The card names no dataset: the recipes read local files, and TRL's card would link any dataset name to the Hub.
    """
    setattr(trainer.model.config, PROMPT_STYLE_KEY, prompt_style)
    result = trainer.train(resume_from_checkpoint=checkpoint_to_resume(training_args))
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    # Trainer switches the KV cache off for training (TrainingArguments.use_cache); the saved model generates with it.
    trainer.model.config.use_cache = True
    if training_args.push_to_hub:
        trainer.push_to_hub()  # saves the model and writes its card before it uploads the folder
    else:
        trainer.save_model(training_args.output_dir)
        trainer.create_model_card(model_name=Path(training_args.output_dir).name)
