import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hintgrpo.models.loading import PREPARED_MARKER, SHIPPED_MODELS, prepare_shipped_model, resolve_model
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


@pytest.mark.parametrize("force", [False, True])
def test_prepare_never_replaces_a_folder_it_did_not_make(tmp_path, force):
    project = tmp_path / "myproject"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    (project / "config.json").write_text("{}")  # even a folder that looks like a checkpoint is not replaced
    if not force:
        (project / "config.json").unlink()
    with pytest.raises(FileExistsError, match="was not made by `hintgrpo models prepare`"):
        prepare_shipped_model("smollm2-135m-instruct", project, force=force)
    assert (project / "src" / "main.py").read_text() == "print('mine')\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myproject"]  # nothing written beside it either


def test_the_cli_refuses_a_parent_folder_in_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    result = subprocess.run(
        [sys.executable, "-m", "hintgrpo.cli", "models", "prepare", "smollm2-135m-instruct", "--output_dir",
         str(tmp_path / "sub" / "..")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"


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
    # A second call reuses the folder instead of converting again; the folder is marked as made here.
    assert prepare_shipped_model("smollm2-135m-instruct", folder) == folder
    assert (folder / PREPARED_MARKER).is_file()
