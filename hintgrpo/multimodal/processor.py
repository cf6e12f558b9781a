"""Prompts for native multimodal models (Qwen2-VL, Qwen2.5-VL, Qwen2.5-Omni thinker) through their processors.

A row's `image`, `video` and `audio` columns become content blocks of its user turn (TRL's convention for
images, extended to every modality); the processor's chat template expands each into its placeholder tokens
and returns the model inputs (pixel_values / image_grid_thw, pixel_values_videos / video_grid_thw /
video_second_per_grid, input_features / feature_attention_mask). Audio files are decoded when the row is
attached, so a file that does not decode is reported with its row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from transformers.audio_utils import load_audio

from hintgrpo.multimodal.inputs import Encoded, MediaError, has_media, with_blocks

MEDIA_COLUMNS = ("image", "video", "audio")
TEXT_INPUTS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")


def load_row_audio(row: dict, sampling_rate: int) -> np.ndarray:
    """The row's `audio` (a file path or a waveform at `sampling_rate`) as a float32 mono waveform."""
    value = row["audio"]
    if isinstance(value, str):
        try:
            waveform = load_audio(value, sampling_rate=sampling_rate)
        except Exception as error:  # soundfile, soxr and the backends raise many types; report them all the same
            raise MediaError(row, "audio", f"cannot decode {value!r}: {error}") from error
    else:
        waveform = np.asarray(value, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise MediaError(row, "audio", f"expected a mono waveform, got an array of shape {waveform.shape}")
    return waveform.astype(np.float32)


def load_row_video(row: dict) -> np.ndarray | str:
    """The row's `video`: frames [T, H, W, 3] as an array (a file path is left for the processor to decode)."""
    value = row["video"]
    if isinstance(value, str):
        return value
    frames = np.asarray(value)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise MediaError(
            row, "video", f"expected frames [frames, height, width, 3], got an array of shape {frames.shape}"
        )
    return frames.astype(np.uint8)


def load_row_image(row: dict):
    value = row["image"]
    if isinstance(value, (str, Image.Image)):
        return value
    image = np.asarray(value)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise MediaError(row, "image", f"expected an image [height, width, 3], got an array of shape {image.shape}")
    return image.astype(np.uint8)


@dataclass
class ProcessorPromptEncoder:
    """Rows with `modalities` columns, encoded by a multimodal `processor` (e.g. `AutoProcessor.from_pretrained`)."""

    processor: object
    modalities: tuple[str, ...] = ("audio", "video")
    chat_template_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.modalities = tuple(self.modalities)
        unknown = sorted(set(self.modalities) - set(MEDIA_COLUMNS))
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; a processor takes {list(MEDIA_COLUMNS)}")
        if "audio" in self.modalities and getattr(self.processor, "feature_extractor", None) is None:
            raise ValueError(f"{type(self.processor).__name__} has no audio feature extractor")

    def attach(self, row: dict) -> dict:
        if has_media(row["prompt"], MEDIA_COLUMNS):
            return row
        blocks = []
        for name in self.modalities:
            if row.get(name) is None:
                raise MediaError(row, name, f"no {name}; every row needs {list(self.modalities)}")
            if name == "audio":
                value = load_row_audio(row, self.processor.feature_extractor.sampling_rate)
            else:
                value = load_row_video(row) if name == "video" else load_row_image(row)
            blocks.append({"type": name, name: value})
        rest = {k: v for k, v in row.items() if k not in self.modalities}
        return rest | {"prompt": with_blocks(row["prompt"], blocks)}

    def encode(self, conversation: list[dict], add_generation_prompt: bool = True) -> Encoded:
        # The processor rewrites message contents in place: give it its own copies.
        conversation = [dict(message) for message in conversation]
        out = self.processor.apply_chat_template(
            [conversation],
            add_generation_prompt=add_generation_prompt,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            **self.chat_template_kwargs,
        )
        media = {name: torch.as_tensor(value) for name, value in out.items() if name not in TEXT_INPUTS}
        return Encoded(out["input_ids"][0].tolist(), media)

    def token_fields(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Qwen2-VL's M-RoPE needs mm_token_type_ids (1 on image tokens, 2 on video tokens) beside any ids."""
        if not getattr(self.processor, "return_mm_token_type_ids", False):
            return {}
        types = torch.zeros_like(input_ids)
        types[input_ids == self.processor.image_token_id] = 1
        types[input_ids == self.processor.video_token_id] = 2
        return {"mm_token_type_ids": types}
