"""Greedy batched decoding of chat prompts, for evaluation and local teachers.

`model.generate` pays on a CPU for two things that carry no information here, measured in benchmarks/README.md:

- the chat template's opening (system prompt and the user turn's first words) is the same for every row, yet each row
  computes it: here its keys and values are computed once and shared by the batch;
- a row that has answered keeps being decoded until the batch's longest row is done: here it leaves the batch as soon
  as it writes an end-of-sequence token or a stop string (`</answer>`), so each step costs only the rows still writing.

transformers' continuous batching does both but runs slower than `model.generate` on a CPU (its paged attention),
as does a static cache with `torch.compile`, which still decodes every row to the end.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

# Where a DC completion ends: what follows the answer is never read.
STOP_STRINGS = ("</answer>",)


def chat_prompt_ids(tokenizer, conversations: list[list[dict]]) -> list[list[int]]:
    """Token ids of each conversation's chat prompt, ready for the assistant's turn."""
    texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def shared_prefix_length(rows: list[list[int]]) -> int:
    """Tokens every row starts with, keeping at least one token of each row to decode from."""
    shortest = min(len(row) for row in rows)
    length = 0
    while length < shortest - 1 and all(row[length] == rows[0][length] for row in rows):
        length += 1
    return length


def eos_token_ids(model, tokenizer) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return ids | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


class StopStrings:
    """Whether a row's generated tokens end in a stop string (which may end inside a token)."""

    def __init__(self, tokenizer, stop_strings: tuple[str, ...]):
        self.tokenizer, self.stop_strings = tokenizer, stop_strings
        # A stop string ends within its last len(stop) tokens, and a token is at least one character long.
        self.window = max((len(stop) for stop in stop_strings), default=0)

    def __call__(self, tokens: list[int]) -> bool:
        if not self.stop_strings:
            return False
        tail = self.tokenizer.decode(tokens[-self.window :], skip_special_tokens=True)
        return any(stop in tail for stop in self.stop_strings)


@torch.inference_mode()
def greedy_decode(
    model, tokenizer, prompts: list[list[int]], max_new_tokens: int, stop_strings: tuple[str, ...] = STOP_STRINGS
) -> list[list[int]]:
    """Greedy continuations of token-id prompts: each ends at its first EOS (kept) or stop string, or at the budget."""
    device, pad = model.device, tokenizer.pad_token_id
    eos, stops = eos_token_ids(model, tokenizer), StopStrings(tokenizer, stop_strings)
    outputs: list[list[int]] = [[] for _ in prompts]
    if max_new_tokens < 1 or not prompts:
        return outputs
    prefix = shared_prefix_length(prompts)
    cache = DynamicCache(config=model.config)
    if prefix:
        shared = torch.tensor([prompts[0][:prefix]], device=device)
        model(input_ids=shared, cache=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(len(prompts))
    # Each row's own tokens, left-padded between the shared prefix and themselves: positions count real tokens only.
    suffixes = [row[prefix:] for row in prompts]
    width = max(len(s) for s in suffixes)
    input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in suffixes], device=device)
    own = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=device)
    attention_mask = torch.cat([torch.ones(len(prompts), prefix, dtype=own.dtype, device=device), own], dim=1)
    position_ids = (prefix + own.cumsum(dim=1) - 1).clamp(min=0)
    active = torch.arange(len(prompts), device=device)
    for _ in range(max_new_tokens):
        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1]
        next_tokens = logits.argmax(dim=-1)
        keep = []
        for slot, (row, token) in enumerate(zip(active.tolist(), next_tokens.tolist(), strict=True)):
            outputs[row].append(token)
            if token not in eos and not stops(outputs[row]):
                keep.append(slot)
        if not keep:
            break
        if len(keep) < len(active):
            kept = torch.tensor(keep, device=device)
            cache.batch_select_indices(kept)
            active, next_tokens = active[kept], next_tokens[kept]
            attention_mask, position_ids = attention_mask[kept], position_ids[kept]
        input_ids = next_tokens[:, None]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(active), 1)], dim=1)
        position_ids = position_ids[:, -1:] + 1
    return outputs


@torch.inference_mode()
def transformers_greedy_decode(model, tokenizer, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """`model.generate` on the same prompts, left-padded into one batch: the path `greedy_decode` replaces, kept as
    the reference that the tests and benchmarks/throughput.py hold it to. Each row ends after its first EOS."""
    width, pad, eos = max(len(p) for p in prompts), tokenizer.pad_token_id, eos_token_ids(model, tokenizer)
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=model.device)
    attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=model.device)
    output = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=pad,
    )
    rows = output[:, width:].tolist()
    return [row[: next((i + 1 for i, token in enumerate(row) if token in eos), len(row))] for row in rows]


def generate_batch(
    model, tokenizer, conversations: list[list[dict]], max_new_tokens: int, stop_strings: tuple[str, ...] = STOP_STRINGS
) -> list[str]:
    """Greedy completions of chat prompts, each ending at EOS, a stop string or the budget."""
    prompts = chat_prompt_ids(tokenizer, conversations)
    continuations = greedy_decode(model, tokenizer, prompts, max_new_tokens, stop_strings)
    return tokenizer.batch_decode(continuations, skip_special_tokens=True)
