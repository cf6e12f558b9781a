"""Multimodal inputs: the MSE-Adapter for text LLMs and prompt encoders for native multimodal processors."""

from hintgrpo.multimodal.adapter import (
    MSEAdapter,
    MSEAdapterConfig,
    attach_mse_adapter,
    load_mse_adapter,
    save_mse_adapter,
    trainable_parameters,
)
from hintgrpo.multimodal.features import FeaturePromptEncoder
from hintgrpo.multimodal.inputs import MediaError, collate_media
from hintgrpo.multimodal.processor import ProcessorPromptEncoder

__all__ = [
    "FeaturePromptEncoder",
    "MSEAdapter",
    "MSEAdapterConfig",
    "MediaError",
    "ProcessorPromptEncoder",
    "attach_mse_adapter",
    "collate_media",
    "load_mse_adapter",
    "save_mse_adapter",
    "trainable_parameters",
]
