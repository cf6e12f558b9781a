"""Tiny random chat models with a tokenizer trained offline: for smoke runs and fast tests."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

from hintgrpo.data.prompts import format_example, system_prompt
from hintgrpo.tasks import TASKS

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CONFIGS = {"llama": LlamaConfig, "qwen2": Qwen2Config}


def tokenizer_corpus() -> list[str]:
    """Prompt and DC-format text of every task, so the tiny vocabulary covers what tests feed it."""
    corpus = []
    for task in TASKS.values():
        corpus += [system_prompt(task), format_example(task), *task.labels, *task.polarities]
    corpus += [f"{score / 10:.1f}" for score in range(-30, 31)]
    return corpus


def train_tokenizer(vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_model(output_dir: str | os.PathLike, arch: str = "qwen2", hidden_size: int = 32, seed: int = 0) -> Path:
    """Write a randomly initialised `arch` model (2 layers) and its offline-trained tokenizer to `output_dir`."""
    if arch not in CONFIGS:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose from {list(CONFIGS)}")
    tokenizer = train_tokenizer()
    config = CONFIGS[arch](
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
