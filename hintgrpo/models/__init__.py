"""Model loading and offline materialisation."""

from hintgrpo.models.loading import (
    generate_batch,
    load_for_generation,
    prepare_shipped_model,
    resolve_model,
    trained_prompt_style,
)

__all__ = ["generate_batch", "load_for_generation", "prepare_shipped_model", "resolve_model", "trained_prompt_style"]
