"""Model loading and offline materialisation."""

from hintgrpo.models.loading import load_for_generation, prepare_shipped_model, resolve_model

__all__ = ["load_for_generation", "prepare_shipped_model", "resolve_model"]
