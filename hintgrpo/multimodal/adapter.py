"""MSE-Adapter (arXiv 2502.12478): pseudo tokens from audio/visual features for a frozen text LLM.

Each modality's frames go through a small LSTM encoder; the Text-Guide-Mixer multiplies every non-text
representation elementwise with a projection of the pooled text embedding and sums them; multi-scale
fusion turns the mix into one LLM-width vector and then into P pseudo tokens, which replace the P
placeholder tokens of the prompt (`<|mm_start|><|mm_pad|>…<|mm_end|>`) in the LLM's input embeddings.

`attach_mse_adapter(model, tokenizer, config)` freezes the LLM, adds the adapter as `model.mse_adapter`
and routes `<modality>_features` / `<modality>_feature_mask` arguments of `model(...)` and
`model.generate(...)` into it, so the forward pass (SFT, GRPO log-probabilities) and generation build
their pseudo tokens with the same code from the same features.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from hintgrpo.data.mmsa import MMSA_FEATURE_DIMS
from hintgrpo.models.loading import ADAPTER_CONFIG

ADAPTER_WEIGHTS = "mse_adapter.safetensors"
ADAPTER_PREFIX = "mse_adapter."  # the adapter's parameters in the model's state dict (`model.mse_adapter`)


@dataclass
class MSEAdapterConfig:
    """Sizes of the adapter; the defaults are the paper's MOSEI setting (audio 74, vision 35 features per frame)."""

    feature_dims: dict[str, int] = field(default_factory=lambda: {"audio": 74, "vision": 35})
    encoder_hidden: dict[str, int] = field(default_factory=lambda: {"audio": 64, "vision": 32})
    fusion_size: int = 256
    num_pseudo_tokens: int = 4
    scales: tuple[int, ...] = (8, 16, 32)  # the fusion branches are LLM width // scale wide
    start_token: str = "<|mm_start|>"
    placeholder_token: str = "<|mm_pad|>"
    end_token: str = "<|mm_end|>"

    def __post_init__(self):
        self.scales = tuple(self.scales)
        missing = sorted(set(self.feature_dims) - set(self.encoder_hidden))
        if missing:
            raise ValueError(f"encoder_hidden has no size for modalities {missing} (feature_encoder_sizes)")
        if self.num_pseudo_tokens < 1:
            raise ValueError(f"num_pseudo_tokens={self.num_pseudo_tokens} must be at least 1")

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> MSEAdapterConfig:
        """The feature sizes of MMSA's released MOSI / MOSEI / SIMS features."""
        if dataset not in MMSA_FEATURE_DIMS:
            raise ValueError(f"unknown MMSA dataset {dataset!r}; choose from {sorted(MMSA_FEATURE_DIMS)}")
        dims = {name: size for name, size in MMSA_FEATURE_DIMS[dataset].items() if name != "text"}
        return cls(feature_dims=dims, **overrides)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.feature_dims)

    def span(self) -> str:
        """The prompt text the pseudo tokens replace."""
        return self.start_token + self.placeholder_token * self.num_pseudo_tokens + self.end_token


def feature_keys(modality: str) -> tuple[str, str]:
    """Model-input names of a modality's frames [B, T, D] and their mask [B, T]."""
    return f"{modality}_features", f"{modality}_feature_mask"


class SequenceEncoder(nn.Module):
    """Frames [B, T, D] → the LSTM's last hidden state over the unpadded frames → [B, out_size]."""

    def __init__(self, in_size: int, hidden_size: int, out_size: int):
        super().__init__()
        self.lstm = nn.LSTM(in_size, hidden_size, batch_first=True)
        self.proj = nn.Linear(hidden_size, out_size)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(frames, lengths, batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        return self.proj(hidden[-1])


class TextGuideMixer(nn.Module):
    """Σ_m r_m ⊙ W·mean(text embeddings): the text decides which feature channels of each modality count."""

    def __init__(self, text_size: int, fusion_size: int):
        super().__init__()
        self.text_proj = nn.Linear(text_size, fusion_size)

    def forward(self, representations: list[torch.Tensor], text: torch.Tensor, text_mask: torch.Tensor):
        weights = text_mask.unsqueeze(-1).to(text.dtype)
        pooled = (text * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
        guide = self.text_proj(pooled)
        return torch.stack([r * guide for r in representations]).sum(dim=0)


class MultiScaleFusion(nn.Module):
    """[B, F] → branches of several widths, combined by learned weights → [B, P, H] pseudo tokens."""

    def __init__(self, fusion_size: int, output_size: int, num_tokens: int, scales: tuple[int, ...]):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Linear(fusion_size, output_size // s), nn.GELU(), nn.Linear(output_size // s, fusion_size))
            for s in scales
        )
        self.integrate = nn.Linear(len(scales), 1)  # the paper's 1×S convolution over the stacked branches
        self.project = nn.Linear(fusion_size, output_size)
        self.to_tokens = nn.Linear(1, num_tokens)

    def forward(self, mixed: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack([branch(mixed) for branch in self.branches], dim=-1)
        fused = self.project(self.integrate(stacked).squeeze(-1))
        return self.to_tokens(fused.unsqueeze(-1)).transpose(1, 2)


class MSEAdapter(nn.Module):
    def __init__(self, config: MSEAdapterConfig, hidden_size: int, placeholder_id: int):
        super().__init__()
        self.config = config
        self.placeholder_id = placeholder_id
        self.encoders = nn.ModuleDict(
            {
                name: SequenceEncoder(size, config.encoder_hidden[name], config.fusion_size)
                for name, size in config.feature_dims.items()
            }
        )
        self.mixer = TextGuideMixer(hidden_size, config.fusion_size)
        self.fusion = MultiScaleFusion(config.fusion_size, hidden_size, config.num_pseudo_tokens, config.scales)

    def forward(self, features: dict[str, tuple[torch.Tensor, torch.Tensor]], text, text_mask) -> torch.Tensor:
        # The adapter runs in its own dtype: under mixed precision, CPU LSTMs have no bf16 kernel.
        dtype = self.mixer.text_proj.weight.dtype
        with torch.autocast(text.device.type, enabled=False):
            representations = [self.encoders[name](x.to(dtype), mask) for name, (x, mask) in features.items()]
            return self.fusion(self.mixer(representations, text.to(dtype), text_mask))

    def pop_features(self, kwargs: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Take every modality's features and mask out of model-call `kwargs` (all modalities, or none)."""
        found = {}
        for name in self.config.modalities:
            frames_key, mask_key = feature_keys(name)
            frames, mask = kwargs.pop(frames_key, None), kwargs.pop(mask_key, None)
            if frames is not None:
                found[name] = (
                    frames,
                    mask if mask is not None else frames.new_ones(frames.shape[:2], dtype=torch.long),
                )
        if found and len(found) != len(self.config.modalities):
            missing = sorted(set(self.config.modalities) - set(found))
            raise ValueError(f"MSE-Adapter got features for {sorted(found)} but not for {missing}")
        return found

    def embed(self, embedding: nn.Module, input_ids, attention_mask, features) -> torch.Tensor:
        """Input embeddings of `input_ids` whose first P placeholders per row hold the pseudo tokens.

        The text that guides the mixer is every attended token before the first placeholder: the prompt only,
        so a completion appended after it (GRPO's log-probabilities) does not change the pseudo tokens.
        """
        embeds = embedding(input_ids)
        is_placeholder = input_ids == self.placeholder_id
        count = self.config.num_pseudo_tokens
        if (is_placeholder.sum(dim=1) < count).any():
            raise ValueError(
                f"every row needs {count} {self.config.placeholder_token} tokens for the pseudo tokens; found "
                f"{is_placeholder.sum(dim=1).tolist()} (was the prompt truncated, or built without the span?)"
            )
        rank = is_placeholder.long().cumsum(dim=1)
        slots = is_placeholder & (rank <= count)  # later placeholders (e.g. sampled in a completion) stay tokens
        text_mask = rank == 0
        if attention_mask is not None:
            text_mask = text_mask & attention_mask.bool()
        pseudo = self(features, embeds, text_mask)
        return embeds.masked_scatter(slots.unsqueeze(-1), pseudo.to(embeds.dtype))

    def _inject(self, backbone: nn.Module, args: tuple, kwargs: dict):
        """Forward pre-hook on the LLM's backbone: features + input_ids → inputs_embeds with pseudo tokens."""
        features = self.pop_features(kwargs)
        if not features:
            return args, kwargs
        if kwargs.get("input_ids") is None:
            raise ValueError("MSE-Adapter features need input_ids (the prompt with the pseudo-token span)")
        input_ids = kwargs.pop("input_ids")
        kwargs["inputs_embeds"] = self.embed(
            backbone.get_input_embeddings(), input_ids, kwargs.get("attention_mask"), features
        )
        return args, kwargs


def add_span_tokens(tokenizer, config: MSEAdapterConfig) -> int:
    """Add the marker and placeholder tokens to `tokenizer` (once); the placeholder's id."""
    tokens = [config.start_token, config.placeholder_token, config.end_token]
    tokenizer.add_tokens([t for t in tokens if t not in tokenizer.get_vocab()], special_tokens=True)
    return tokenizer.convert_tokens_to_ids(config.placeholder_token)


def attach_mse_adapter(model, tokenizer, config: MSEAdapterConfig) -> MSEAdapter:
    """Freeze `model`, give it an MSE-Adapter (`model.mse_adapter`) and make its forward and generate take features.

    The marker tokens are added to `tokenizer`; when the vocabulary grows past the embedding matrix, the
    embeddings are resized (the new rows are frozen like the rest of the LLM).
    """
    placeholder_id = add_span_tokens(tokenizer, config)
    known = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > known:
        # New rows at the mean of the old ones (not random draws), so reloading the LLM reproduces the markers.
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            for matrix in {model.get_input_embeddings().weight, model.get_output_embeddings().weight}:
                matrix[known:] = matrix[:known].mean(dim=0)
    model.requires_grad_(False)
    hidden_size = model.config.get_text_config().hidden_size
    embedding_weight = model.get_input_embeddings().weight
    adapter = MSEAdapter(config, hidden_size, placeholder_id).to(embedding_weight.device)
    model.add_module("mse_adapter", adapter)
    # The LLM's checkpoint stays a plain LLM (it loads without unexpected keys); save_mse_adapter writes the adapter.
    model._keys_to_ignore_on_save = set(model._keys_to_ignore_on_save or ()) | {
        ADAPTER_PREFIX + name for name in adapter.state_dict()
    }
    model.config.mse_adapter = asdict(config)
    model.get_decoder().register_forward_pre_hook(adapter._inject, with_kwargs=True)

    generate = model.generate

    @functools.wraps(generate)
    def generate_with_features(*args, **kwargs):
        features = adapter.pop_features(kwargs)
        if features:
            input_ids = kwargs["input_ids"]
            embedding = model.get_input_embeddings()
            kwargs["inputs_embeds"] = adapter.embed(embedding, input_ids, kwargs.get("attention_mask"), features)
        return generate(*args, **kwargs)

    model.generate = generate_with_features
    return adapter


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_mse_adapter(model, output_dir: str | Path, state_dict: dict | None = None) -> None:
    """Write the adapter's weights and config beside a saved model (the LLM itself is unchanged).

    `state_dict`: the whole model's, when a trainer gathered it (DeepSpeed ZeRO-3 shards the adapter's own).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    adapter = model.mse_adapter
    if state_dict:
        weights = {k.removeprefix(ADAPTER_PREFIX): v for k, v in state_dict.items() if k.startswith(ADAPTER_PREFIX)}
    else:
        weights = adapter.state_dict()
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, output_dir / ADAPTER_WEIGHTS)
    (output_dir / ADAPTER_CONFIG).write_text(json.dumps(asdict(adapter.config), indent=2))


class MSEAdapterCheckpoints:
    """Trainer mixin: every saved model (checkpoints included) has its MSE-Adapter beside it, and a resumed run
    restores the adapter from there (the saved LLM leaves it out, see `attach_mse_adapter`)."""

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        model = self.accelerator.unwrap_model(self.model)
        if self.args.should_save and hasattr(model, "mse_adapter"):  # first: saving the LLM drops the adapter's keys
            save_mse_adapter(model, output_dir or self.args.output_dir, state_dict)
        super()._save(output_dir, state_dict)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        model = self.accelerator.unwrap_model(model or self.model)
        if hasattr(model, "mse_adapter") and not self.is_fsdp_enabled:  # FSDP's own checkpoint holds every weight
            model.mse_adapter.load_state_dict(load_file(Path(resume_from_checkpoint) / ADAPTER_WEIGHTS))

    def _issue_warnings_after_load(self, load_result) -> None:
        missing = [name for name in load_result.missing_keys if not name.startswith(ADAPTER_PREFIX)]
        super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))


def check_adapter_training(model, args, peft_config) -> None:
    """Refuse options under which an MSE-Adapter would not be what trains."""
    if not hasattr(model, "mse_adapter"):
        return
    if peft_config is not None:
        raise ValueError("the MSE-Adapter trains on a frozen LLM: drop --use_peft (PEFT would freeze the adapter too)")
    if getattr(args, "beta", 0.0) != 0.0:
        raise ValueError(
            f"beta={args.beta} needs a reference model, which TRL reloads from the checkpoint without the MSE-Adapter: "
            "use beta=0"
        )


def load_mse_adapter(model, tokenizer, adapter_dir: str | Path) -> MSEAdapter:
    """Attach the adapter saved by `save_mse_adapter` to `model`."""
    adapter_dir = Path(adapter_dir)
    config = MSEAdapterConfig(**json.loads((adapter_dir / ADAPTER_CONFIG).read_text()))
    adapter = attach_mse_adapter(model, tokenizer, config)
    adapter.load_state_dict(load_file(adapter_dir / ADAPTER_WEIGHTS))
    return adapter
