"""Tiny random Qwen2-VL, Qwen2.5-VL and Qwen2.5-Omni thinker models with offline-built processors (tests, smoke runs).

The tokenizer is hintgrpo's offline-trained one plus each family's media tokens; images go through the PIL
image processor, videos through `Qwen2VLVideoProcessorNumpy`, audio through a Whisper feature extractor
with a short (2 s) window. Nothing is downloaded.
"""

from __future__ import annotations

import torch
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5OmniThinkerConfig,
    Qwen2_5OmniThinkerForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    WhisperFeatureExtractor,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from hintgrpo.models.tiny import train_tokenizer
from hintgrpo.multimodal.video import (
    Qwen2_5_VLProcessorNumpyVideo,
    Qwen2_5OmniProcessorNumpyVideo,
    Qwen2VLProcessorNumpyVideo,
    Qwen2VLVideoProcessorNumpy,
)

HIDDEN, HEADS = 32, 4
# Small frames: a 56×56 picture is 4×4 patches of 14 pixels, i.e. 4 tokens after the 2×2 merge.
PIXELS = {"shortest_edge": 56 * 56, "longest_edge": 56 * 56}

VL_TOKENS = {"vision_start": "<|vision_start|>", "vision_end": "<|vision_end|>"}
VL_TOKENS |= {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}
OMNI_TOKENS = {"image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>", "audio_token": "<|AUDIO|>"}
OMNI_TOKENS |= {"vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>"}
OMNI_TOKENS |= {"audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>"}


def chat_template(image: str, video: str, audio: str) -> str:
    """ChatML whose content blocks render as each family's media placeholders (expanded by the processor)."""
    return (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for block in message['content'] %}"
        f"{{% if block['type'] == 'image' %}}{{{{ '{image}' }}}}"
        f"{{% elif block['type'] == 'video' %}}{{{{ '{video}' }}}}"
        f"{{% elif block['type'] == 'audio' %}}{{{{ '{audio}' }}}}"
        "{% else %}{{ block['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )


def media_tokenizer(tokens: dict[str, str]):
    """The offline tokenizer plus the family's media tokens; the named ones (`image_token`, …), which the processors
    read from the tokenizer, are saved with it."""
    base = train_tokenizer()
    named = {name: token for name, token in tokens.items() if name.endswith("_token")}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=base.backend_tokenizer, **base.init_kwargs, extra_special_tokens=named
    )
    tokenizer.add_tokens(list(tokens.values()), special_tokens=True)
    return tokenizer


def text_config(tokenizer) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": HEADS,
        "num_key_value_heads": 2,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
    }


def finish(model, tokenizer):
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model


def tiny_vl(config_class, model_class, processor_class, vision_config: dict, seed: int):
    tokenizer = media_tokenizer(VL_TOKENS)
    processor = processor_class(
        image_processor=Qwen2VLImageProcessorPil(size=PIXELS),
        video_processor=Qwen2VLVideoProcessorNumpy(size=PIXELS),
        tokenizer=tokenizer,
        chat_template=chat_template(
            "<|vision_start|><|image_pad|><|vision_end|>", "<|vision_start|><|video_pad|><|vision_end|>", ""
        ),
    )
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in VL_TOKENS.items()}
    config = config_class(
        text_config=text_config(tokenizer),
        vision_config=vision_config,
        image_token_id=ids["image_token"],
        video_token_id=ids["video_token"],
        vision_start_token_id=ids["vision_start"],
        vision_end_token_id=ids["vision_end"],
    )
    torch.manual_seed(seed)
    return finish(model_class(config), tokenizer), processor


def tiny_qwen2_vl(seed: int = 0):
    vision = {"depth": 1, "embed_dim": HIDDEN, "hidden_size": HIDDEN, "num_heads": HEADS, "mlp_ratio": 2}
    return tiny_vl(Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessorNumpyVideo, vision, seed)


def tiny_qwen2_5_vl(seed: int = 0):
    vision = {"depth": 1, "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_heads": HEADS}
    vision |= {"out_hidden_size": HIDDEN, "fullatt_block_indexes": [0]}
    return tiny_vl(Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessorNumpyVideo, vision, seed)


def tiny_qwen2_5_omni_thinker(seed: int = 0):
    tokenizer = media_tokenizer(OMNI_TOKENS)
    processor = Qwen2_5OmniProcessorNumpyVideo(
        image_processor=Qwen2VLImageProcessorPil(size=PIXELS),
        video_processor=Qwen2VLVideoProcessorNumpy(size=PIXELS),
        feature_extractor=WhisperFeatureExtractor(feature_size=128, chunk_length=2),
        tokenizer=tokenizer,
        chat_template=chat_template(
            "<|vision_bos|><|IMAGE|><|vision_eos|>",
            "<|vision_bos|><|VIDEO|><|vision_eos|>",
            "<|audio_bos|><|AUDIO|><|audio_eos|>",
        ),
    )
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in OMNI_TOKENS.items()}
    config = Qwen2_5OmniThinkerConfig(
        text_config=text_config(tokenizer),
        audio_config={
            "num_mel_bins": 128,
            "encoder_layers": 1,
            "encoder_attention_heads": HEADS,
            "encoder_ffn_dim": 2 * HIDDEN,
            "d_model": HIDDEN,
            "output_dim": HIDDEN,
            "n_window": 50,
        },
        vision_config={
            "depth": 1,
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_heads": HEADS,
            "out_hidden_size": HIDDEN,
            "fullatt_block_indexes": [0],
        },
        audio_token_index=ids["audio_token"],
        image_token_index=ids["image_token"],
        video_token_index=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"],
    )
    torch.manual_seed(seed)
    return finish(Qwen2_5OmniThinkerForConditionalGeneration(config), tokenizer), processor
