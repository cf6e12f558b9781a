"""Model loading, offline materialisation, precision and batched greedy decoding."""

from hintgrpo.models.decoding import generate_batch
from hintgrpo.models.loading import load_for_generation, prepare_shipped_model, resolve_model, trained_prompt_style

__all__ = ["generate_batch", "load_for_generation", "prepare_shipped_model", "resolve_model", "trained_prompt_style"]
