import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hintgrpo.models.loading import SHIPPED_MODELS, prepare_shipped_model, resolve_model
from hintgrpo.models.tiny import build_tiny_model
from hintgrpo.reasoning import render


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_tiny_model_is_a_working_chat_model(tmp_path, arch):
    folder = build_tiny_model(tmp_path, arch=arch)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == arch and model.num_parameters() < 100_000
    completion = render("negative", "complaint", "mild", -1.4)
    assert tokenizer.decode(tokenizer(completion).input_ids) == completion
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    inputs = tokenizer(prompt, return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert output.shape[1] > inputs.input_ids.shape[1]


def test_unknown_names_pass_through_as_paths():
    assert resolve_model("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    with pytest.raises(KeyError, match="smollm2-135m-instruct"):
        prepare_shipped_model("gpt-5")


def test_prepared_smollm2_matches_the_gguf_weights(tmp_path):
    """The cached folder is a plain float checkpoint with the same logits as loading the GGUF directly."""
    folder = prepare_shipped_model("smollm2-135m-instruct", tmp_path / "smollm2")
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    shipped = SHIPPED_MODELS["smollm2-135m-instruct"]
    reference = AutoModelForCausalLM.from_pretrained(shipped.gguf_folder(), gguf_file=shipped.filename)
    prepared = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer("The movie was surprisingly good.", return_tensors="pt")
    with torch.inference_mode():
        assert torch.equal(reference(**inputs).logits, prepared(**inputs).logits)
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    # A second call reuses the folder instead of converting again.
    assert prepare_shipped_model("smollm2-135m-instruct", folder) == folder
