"""Greedy batched decoding of chat prompts, for evaluation and local teachers.

`model.generate` pays on a CPU for three things that carry no information here (benchmarks/README.md § Throughput):

- the chat template's opening (system prompt and the user turn's first words) is the same for every row, yet each row
  computes it: here its keys and values are computed once and copied to every row;
- a row that has answered is decoded on until the batch's longest row is done: here it leaves the batch as soon as it
  writes an end-of-sequence token or a stop string (`</answer>`);
- the batch then shrinks to its longest rows, where a small batch wastes most of a step: here waiting rows take the
  free places (continuous batching), so the batch stays full until the prompts run out.

transformers' own continuous batching ran at 40 tokens/s against `model.generate`'s 106 on a 2-core CPU (its paged
attention), so this keeps transformers' dynamic cache, whose layers grow in place here, and pads admitted rows on the
left instead.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

# Where a DC completion ends: what follows the answer is never read.
STOP_STRINGS = ("</answer>",)
# New rows are admitted once this share of the batch is free: each admission is one prefill, and a merge of caches.
ADMIT_WHEN_FREE = 0.25


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


class GrowingLayer(DynamicLayer):
    """A dynamic cache layer that keeps room to grow: a decoding step writes its one column in place.

    transformers' `DynamicLayer` concatenates, copying the layer's whole cache every step, which costs at large
    batches (benchmarks/README.md § Throughput). `keys`/`values` stay the layer's contents (views of the buffer);
    whatever replaces them (a batch selection, a merge) is copied into a new buffer at the next update.
    """

    room = 64  # columns added at each reallocation

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.buffers = None
        length, new = self.get_seq_length(), key_states.shape[-2]
        if not self._in_buffer(length + new):
            shape = [*key_states.shape[:2], length + new + self.room, key_states.shape[-1]]
            self.buffers = tuple(key_states.new_empty(shape) for _ in range(2))
            if length:
                self.buffers[0][..., :length, :] = self.keys
                self.buffers[1][..., :length, :] = self.values
        keys, values = self.buffers
        keys[..., length : length + new, :] = key_states
        values[..., length : length + new, :] = value_states
        self.keys, self.values = keys[..., : length + new, :], values[..., : length + new, :]
        return self.keys, self.values

    def _in_buffer(self, length: int) -> bool:
        """Whether `keys` is still the start of the buffer, with room for `length` columns."""
        if self.buffers is None or length > self.buffers[0].shape[-2]:
            return False
        if self.keys.numel() == 0:
            return False
        return self.keys.data_ptr() == self.buffers[0].data_ptr() and self.keys.shape[0] == self.buffers[0].shape[0]


def growing_cache(config) -> DynamicCache:
    """transformers' dynamic cache, its full-attention layers growing in place (sliding-window ones as they are)."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


class Batch:
    """The rows being decoded (None: a finished row not yet dropped), their cache, mask, positions, last tokens."""

    def __init__(self, rows: list[int], cache: DynamicCache, mask: torch.Tensor, positions: torch.Tensor, last):
        self.rows, self.cache, self.mask, self.positions, self.last = rows, cache, mask, positions, last

    def keep(self, slots: list[int]) -> None:
        if len(slots) == len(self.rows):
            return
        kept = torch.tensor(slots, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(kept)
        self.rows = [self.rows[slot] for slot in slots]
        self.mask, self.positions, self.last = self.mask[kept], self.positions[kept], self.last[kept]

    def alive(self) -> list[int]:
        return [slot for slot, row in enumerate(self.rows) if row is not None]

    def drop_finished(self) -> None:
        self.keep(self.alive())

    def join(self, other: Batch) -> None:
        """Take `other`'s rows, padding whichever cache is shorter on the left (masked out)."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([left_pad(mine.keys, width, dim=2), left_pad(theirs.keys, width, dim=2)])
            mine.values = torch.cat([left_pad(mine.values, width, dim=2), left_pad(theirs.values, width, dim=2)])
        self.mask = torch.cat([left_pad(self.mask, width, dim=1), left_pad(other.mask, width, dim=1)])
        self.rows += other.rows
        self.positions, self.last = torch.cat([self.positions, other.positions]), torch.cat([self.last, other.last])
        self.trim()

    def trim(self) -> None:
        """Drop the leading cache columns that no row attends to (left by rows that have left)."""
        unused = int(self.mask.any(dim=0).int().argmax())
        if unused:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, unused:], layer.values[:, :, unused:]
            self.mask = self.mask[:, unused:]


def left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if not missing:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


class GreedyDecoder:
    """Greedy decoding of token-id prompts, a full batch at a time, the shared prefix computed once."""

    def __init__(self, model, tokenizer, prompts: list[list[int]], stop_strings: tuple[str, ...]):
        self.model, self.device, self.pad = model, model.device, tokenizer.pad_token_id
        self.eos, self.stops = eos_token_ids(model, tokenizer), StopStrings(tokenizer, stop_strings)
        self.prefix = shared_prefix_length(prompts)
        self.prefix_cache = growing_cache(model.config)
        self.can_join = all(isinstance(layer, GrowingLayer) for layer in self.prefix_cache.layers)
        if self.prefix:
            shared = torch.tensor([prompts[0][: self.prefix]], device=self.device)
            model(input_ids=shared, cache=self.prefix_cache, use_cache=True, logits_to_keep=1)

    def finished(self, tokens: list[int], budget: int) -> bool:
        return tokens[-1] in self.eos or len(tokens) >= budget or self.stops(tokens)

    def forward(self, batch: Batch, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        logits = self.model(
            input_ids=input_ids,
            attention_mask=batch.mask,
            position_ids=positions,
            cache=batch.cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1]
        return logits.argmax(dim=-1)

    def admit(self, rows: list[int], prompts: list[list[int]]) -> tuple[Batch, torch.Tensor]:
        """A batch of `rows` with their prompts in its cache, and the first token of each."""
        cache = copy.deepcopy(self.prefix_cache)
        cache.batch_repeat_interleave(len(rows))
        # Each row's own tokens, left-padded between the shared prefix and themselves: positions count real tokens.
        suffixes = [prompts[row][self.prefix :] for row in rows]
        width = max(len(s) for s in suffixes)
        input_ids = torch.tensor([[self.pad] * (width - len(s)) + s for s in suffixes], device=self.device)
        own = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=self.device)
        mask = torch.cat([own.new_ones(len(rows), self.prefix), own], dim=1)
        positions = (self.prefix + own.cumsum(dim=1) - 1).clamp(min=0)
        batch = Batch(rows, cache, mask, positions[:, -1], None)
        return batch, self.forward(batch, input_ids, positions)

    def step(self, batch: Batch) -> torch.Tensor:
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(batch.rows), 1)], dim=1)
        batch.positions = batch.positions + 1
        return self.forward(batch, batch.last[:, None], batch.positions[:, None])


@torch.inference_mode()
def stream_greedy_decode(
    model,
    tokenizer,
    prompts: list[list[int]],
    max_new_tokens: int,
    stop_strings: tuple[str, ...] = STOP_STRINGS,
    batch_size: int | None = None,
) -> Iterator[tuple[int, list[int]]]:
    """(index, continuation) of each prompt as it finishes, greedy: at its first EOS (kept), stop string or the budget.

    At most `batch_size` rows (default: all) are decoded together; a finished row's place goes to the next prompt.
    """
    if not prompts:
        return
    if max_new_tokens < 1:
        yield from ((row, []) for row in range(len(prompts)))
        return
    decoder, size = GreedyDecoder(model, tokenizer, prompts, stop_strings), batch_size or len(prompts)
    # Compacting a batch copies its whole cache, so finished rows stay in place (None) until a share of it is free.
    # Rows join a running batch only where every cache layer can be padded (sliding-window layers keep a window):
    # elsewhere the next rows start once the batch is done.
    threshold = max(1, int(ADMIT_WHEN_FREE * size)) if decoder.can_join else size
    outputs: dict[int, list[int]] = {}
    waiting, batch = list(range(len(prompts))), None
    while waiting or batch is not None:
        alive = batch.alive() if batch else []
        if waiting and size - len(alive) >= (threshold if batch else 1):
            admitted, next_tokens = decoder.admit(waiting[: size - len(alive)], prompts)
            waiting = waiting[size - len(alive) :]
        else:
            admitted, next_tokens = batch, decoder.step(batch)
        for slot, (row, token) in enumerate(zip(admitted.rows, next_tokens.tolist(), strict=True)):
            if row is None:
                continue
            outputs.setdefault(row, []).append(token)
            if decoder.finished(outputs[row], max_new_tokens):
                yield row, outputs.pop(row)
                admitted.rows[slot] = None
        admitted.last = next_tokens
        if admitted is not batch:
            admitted.drop_finished()
            if not alive:
                batch = admitted
            else:
                batch.drop_finished()
                batch.join(admitted)
        finished = len(batch.rows) - len(batch.alive())
        if finished == len(batch.rows):
            batch = None
        elif finished >= threshold:
            batch.drop_finished()


def greedy_decode(
    model,
    tokenizer,
    prompts: list[list[int]],
    max_new_tokens: int,
    stop_strings: tuple[str, ...] = STOP_STRINGS,
    batch_size: int | None = None,
) -> list[list[int]]:
    """The continuation of every prompt, in order (see `stream_greedy_decode`)."""
    continuations: list[list[int]] = [[] for _ in prompts]
    for row, tokens in stream_greedy_decode(model, tokenizer, prompts, max_new_tokens, stop_strings, batch_size):
        continuations[row] = tokens
    return continuations


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


def stream_completions(
    model,
    tokenizer,
    conversations: list[list[dict]],
    max_new_tokens: int,
    batch_size: int | None = None,
    stop_strings: tuple[str, ...] = STOP_STRINGS,
) -> Iterator[tuple[int, str]]:
    """(index, completion) of each chat prompt as it finishes (see `stream_greedy_decode`)."""
    prompts = chat_prompt_ids(tokenizer, conversations)
    for row, tokens in stream_greedy_decode(model, tokenizer, prompts, max_new_tokens, stop_strings, batch_size):
        yield row, tokenizer.decode(tokens, skip_special_tokens=True)


def generate_batch(
    model, tokenizer, conversations: list[list[dict]], max_new_tokens: int, stop_strings: tuple[str, ...] = STOP_STRINGS
) -> list[str]:
    """Greedy completions of chat prompts, in order, each ending at EOS, a stop string or the budget."""
    prompts = chat_prompt_ids(tokenizer, conversations)
    continuations = greedy_decode(model, tokenizer, prompts, max_new_tokens, stop_strings)
    return tokenizer.batch_decode(continuations, skip_special_tokens=True)
