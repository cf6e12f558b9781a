"""train_and_save: the model card links no local path as a Hub dataset; --push_to_hub uploads the finished folder."""

from types import SimpleNamespace

import transformers.trainer
from datasets import Dataset
from trl import SFTConfig

from hintgrpo.trainers import WeightedSFTTrainer
from hintgrpo.training import train_and_save


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
