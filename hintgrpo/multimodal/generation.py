"""Greedy generation for evaluation, each prompt with its row's features or media (the trainers' prompt encoders)."""

from __future__ import annotations

import torch
from datasets import Dataset
from trl.trainer.utils import pad

from hintgrpo.configs import EvaluateArguments
from hintgrpo.models import resolve_model
from hintgrpo.multimodal.data import with_media
from hintgrpo.multimodal.inputs import collate_media
from hintgrpo.multimodal.loading import MultimodalModel, load_multimodal_model


def load_for_media_generation(args: EvaluateArguments, dataset: Dataset) -> tuple[Dataset, MultimodalModel]:
    """`dataset` with each row's features or media (joined by id), and the checkpoint `args.model` in eval mode."""
    dataset = with_media(dataset, args, args.split)
    loaded = load_multimodal_model(args, resolve_model(args.model))
    loaded.model.eval()
    return dataset, loaded


@torch.inference_mode()
def generate_with_media(
    loaded: MultimodalModel, samples: list[dict], conversations: list[list[dict]], max_new_tokens: int
) -> list[str]:
    """Completions of chat prompts, each given its sample's media as the trainers give them (left-padded batch)."""
    encoder, model = loaded.prompt_encoder, loaded.model
    tokenizer = getattr(loaded.processing_class, "tokenizer", loaded.processing_class)
    encoded = [
        encoder.encode(encoder.attach(sample | {"prompt": conversation})["prompt"])
        for sample, conversation in zip(samples, conversations, strict=True)
    ]
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = pad([torch.tensor(e.ids) for e in encoded], pad_token_id, "left")
    attention_mask = pad([torch.ones(len(e.ids), dtype=torch.long) for e in encoded], 0, "left")
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    inputs |= collate_media([e.media for e in encoded]) | encoder.token_fields(input_ids)
    outputs = model.generate(
        **{name: value.to(model.device) for name, value in inputs.items()},
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=pad_token_id,
    )
    return tokenizer.batch_decode(outputs[:, input_ids.shape[1] :], skip_special_tokens=True)
