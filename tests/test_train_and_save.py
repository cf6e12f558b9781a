"""train_and_save: resumes the newest complete checkpoint; the model card links no local path as a Hub dataset;
--push_to_hub uploads the finished folder."""

import json
import logging
from types import SimpleNamespace

import torch
import transformers.trainer
from datasets import Dataset
from safetensors.torch import save_file
from trl import SFTConfig

from hintgrpo.trainers import WeightedSFTTrainer
from hintgrpo.training import checkpoint_to_resume, train_and_save


def trained_and_saved(model_dir, output_dir, **config) -> WeightedSFTTrainer:
    args = SFTConfig(
        output_dir=str(output_dir),
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        report_to="none",
        save_strategy="no",
        max_steps=1,
        disable_tqdm=True,
        **config,
    )
    dataset = Dataset.from_dict({"text": ["The film was wonderful.", "The film was dull."]})
    trainer = WeightedSFTTrainer(model=str(model_dir), args=args, train_dataset=dataset)
    train_and_save(trainer, args, prompt_style="brief")
    return trainer


def test_model_card_links_no_local_dataset(tiny_model_dir, tmp_path):
    trained_and_saved(tiny_model_dir, tmp_path / "sft")
    card = (tmp_path / "sft" / "README.md").read_text()
    assert "huggingface.co/datasets" not in card and "datasets:" not in card
    assert "This model was trained with Weighted SFT." in card and "- weighted-sft" in card


def test_push_uploads_the_model_and_its_finished_card(tiny_model_dir, tmp_path, monkeypatch):
    uploads = []

    def upload_folder(folder_path, **kwargs):
        uploads.append({path.name: path.read_bytes() for path in (tmp_path / "sft").iterdir() if path.is_file()})
        return SimpleNamespace(commit_url="https://huggingface.co/user/sft/commit/0")

    hub = SimpleNamespace(
        create_repo=lambda repo_id, **kwargs: SimpleNamespace(repo_id=repo_id), upload_folder=upload_folder
    )
    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: hub)
    trained_and_saved(tiny_model_dir, tmp_path / "sft", push_to_hub=True, hub_model_id="user/sft", hub_strategy="end")
    assert len(uploads) == 1
    (uploaded,) = uploads
    assert "model.safetensors" in uploaded and "config.json" in uploaded
    assert uploaded["README.md"] == (tmp_path / "sft" / "README.md").read_bytes()
    assert b"hintgrpo_prompt_style" in uploaded["config.json"]


def write_checkpoint(folder, step, state=True):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    save_file({"weight": torch.ones(64, 64)}, folder / "model.safetensors")
    if state:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def test_resume_skips_the_checkpoints_a_kill_cut_short(tmp_path, caplog):
    complete = write_checkpoint(tmp_path / "checkpoint-1", 1)
    # What a kill mid-save left: config.json and a temp file, no trainer state (the probe's case).
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "config.json").write_text("{}")
    (tmp_path / "checkpoint-3" / ".tmpk2f9").write_bytes(b"\0" * 1024)
    # A trainer state beside weights cut off mid-file.
    truncated = write_checkpoint(tmp_path / "checkpoint-2", 2)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    args = SimpleNamespace(resume_from_checkpoint=None, output_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="hintgrpo.training"):
        assert checkpoint_to_resume(args) == str(complete)
    assert "skipping" in caplog.text and "checkpoint-3: no readable trainer_state.json" in caplog.text
    assert "checkpoint-2: model.safetensors is truncated" in caplog.text
    assert checkpoint_to_resume(SimpleNamespace(resume_from_checkpoint=None, output_dir=str(tmp_path / "no"))) is None
