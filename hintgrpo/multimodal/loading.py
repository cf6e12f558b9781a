"""Multimodal checkpoints for training and evaluation: a text LLM with its MSE-Adapter, or a native Qwen2-VL /
Qwen2.5-VL / Qwen2.5-Omni model with its processor, each with the prompt encoder its trainers and generation use."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoImageProcessor,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    Qwen2_5OmniThinkerForConditionalGeneration,
    TrainingArguments,
    set_seed,
)
from transformers.utils import is_torchvision_available
from trl.trainer.utils import create_model_from_path

from hintgrpo.configs import MediaArguments, MultimodalArguments
from hintgrpo.models.loading import ADAPTER_CONFIG
from hintgrpo.multimodal.adapter import MSEAdapterConfig, attach_mse_adapter, load_mse_adapter
from hintgrpo.multimodal.features import FeaturePromptEncoder
from hintgrpo.multimodal.inputs import PromptEncoder
from hintgrpo.multimodal.processor import ProcessorPromptEncoder
from hintgrpo.multimodal.video import (
    Qwen2_5_VLProcessorNumpyVideo,
    Qwen2_5OmniProcessorNumpyVideo,
    Qwen2VLProcessorNumpyVideo,
    Qwen2VLVideoProcessorNumpy,
)

logger = logging.getLogger(__name__)

NUMPY_VIDEO_PROCESSORS = {
    "qwen2_vl": Qwen2VLProcessorNumpyVideo,
    "qwen2_5_vl": Qwen2_5_VLProcessorNumpyVideo,
    "qwen2_5_omni": Qwen2_5OmniProcessorNumpyVideo,
    "qwen2_5_omni_thinker": Qwen2_5OmniProcessorNumpyVideo,
}


@dataclass
class MultimodalModel:
    model: object
    processing_class: object  # the tokenizer (MSE-Adapter) or the processor (native)
    prompt_encoder: PromptEncoder


def load_processor(path: str):
    """`AutoProcessor`; without torchvision, the same Qwen processor with the NumPy video processor."""
    model_type = AutoConfig.from_pretrained(path).model_type
    if is_torchvision_available() or model_type not in NUMPY_VIDEO_PROCESSORS:
        return AutoProcessor.from_pretrained(path)
    processor_class = NUMPY_VIDEO_PROCESSORS[model_type]
    parts = {
        "tokenizer": AutoTokenizer.from_pretrained(path),
        "image_processor": AutoImageProcessor.from_pretrained(path),
        "video_processor": Qwen2VLVideoProcessorNumpy.from_pretrained(path),
    }
    if "feature_extractor" in processor_class.get_attributes():
        parts["feature_extractor"] = AutoFeatureExtractor.from_pretrained(path)
    return processor_class(**parts, chat_template=parts["tokenizer"].chat_template)


def native_model_class(path: str):
    """A Qwen2.5-Omni checkpoint holds the thinker (text out) and the talker (speech out): only the thinker is used."""
    if AutoConfig.from_pretrained(path).model_type == "qwen2_5_omni":
        return Qwen2_5OmniThinkerForConditionalGeneration
    return AutoModelForImageTextToText


def new_adapter_config(args: MultimodalArguments, dataset: Dataset) -> MSEAdapterConfig:
    """An MSE-Adapter for the feature columns of `dataset` (their frame sizes read from its first row)."""
    dims = {name: int(np.asarray(dataset[0][name]).shape[-1]) for name in args.feature_columns}
    encoder_hidden = MSEAdapterConfig().encoder_hidden
    if args.feature_encoder_sizes is not None:
        encoder_hidden = dict(zip(args.feature_columns, args.feature_encoder_sizes, strict=True))
    return MSEAdapterConfig(
        feature_dims=dims,
        encoder_hidden=encoder_hidden,
        fusion_size=args.adapter_fusion_size,
        num_pseudo_tokens=args.num_pseudo_tokens,
    )


def load_multimodal_model(
    args: MediaArguments, path: str, model_kwargs: dict | None = None, new_adapter: MSEAdapterConfig | None = None
) -> MultimodalModel:
    """The model of `args.modality_route` (mse_adapter or native) at `path`, loaded as TRL loads a model from a path
    (`model_kwargs` go to `from_pretrained`).

    An MSE-Adapter saved with the checkpoint is loaded (and trained on); otherwise `new_adapter` is attached.
    """
    model_kwargs = model_kwargs or {}
    if args.modality_route == "mse_adapter":
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = create_model_from_path(path, AutoModelForCausalLM, **model_kwargs)
        if (Path(path) / ADAPTER_CONFIG).is_file():
            logger.info("loading the MSE-Adapter saved in %s", path)
            adapter = load_mse_adapter(model, tokenizer, path)
        elif new_adapter is not None:
            adapter = attach_mse_adapter(model, tokenizer, new_adapter)
        else:
            raise FileNotFoundError(
                f"{path} has no MSE-Adapter ({ADAPTER_CONFIG}): pass a model trained with --modality_route mse_adapter"
            )
        return MultimodalModel(model, tokenizer, FeaturePromptEncoder(tokenizer, adapter.config))
    processor = load_processor(path)
    model = create_model_from_path(path, native_model_class(path), **model_kwargs)
    return MultimodalModel(model, processor, ProcessorPromptEncoder(processor, tuple(args.media_columns)))


def multimodal_trainer_inputs(
    args: MultimodalArguments, path: str, training_args: TrainingArguments, train_dataset: Dataset
) -> dict:
    """`model`, `processing_class` and `prompt_encoder` of a multimodal trainer: the model at `path` (loaded with
    `training_args.model_init_kwargs`), given a new MSE-Adapter for `train_dataset`'s features unless it has one."""
    new_adapter = new_adapter_config(args, train_dataset) if args.modality_route == "mse_adapter" else None
    set_seed(training_args.seed)  # a new adapter's initial weights, as Trainer seeds a model it builds
    loaded = load_multimodal_model(args, path, training_args.model_init_kwargs, new_adapter)
    training_args.model_init_kwargs = None  # used: TRL would warn that they go unused with a loaded model
    return {"model": loaded.model, "processing_class": loaded.processing_class, "prompt_encoder": loaded.prompt_encoder}
