"""Media through the trainers: MSE-Adapter pseudo tokens in Hint-GRPO and SFT, native Qwen2-VL / Qwen2.5-Omni."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from datasets import Dataset
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import SFTConfig

from hintgrpo.data.prompts import add_prompt, build_messages
from hintgrpo.multimodal import FeaturePromptEncoder, MediaError, MSEAdapterConfig, ProcessorPromptEncoder
from hintgrpo.multimodal.adapter import ADAPTER_PREFIX, ADAPTER_WEIGHTS, attach_mse_adapter
from hintgrpo.multimodal.tiny import tiny_qwen2_5_omni_thinker, tiny_qwen2_5_vl, tiny_qwen2_vl
from hintgrpo.multimodal.video import Qwen2VLVideoProcessorNumpy
from hintgrpo.reasoning import render
from hintgrpo.rewards import completion_text, get_reward_funcs
from hintgrpo.trainers import HintGRPOConfig
from hintgrpo.trainers.multimodal_grpo import MEDIA, MultimodalHintGRPOTrainer
from hintgrpo.trainers.multimodal_sft import MultimodalSFTTrainer

GROUP = 2
SMALL = MSEAdapterConfig(
    feature_dims={"audio": 5, "vision": 20}, encoder_hidden={"audio": 8, "vision": 8}, fusion_size=16
)


def media_rows(n: int = 2, **media) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        row = {"id": str(i), "text": f"sample {i}", "label": [-2.0, 1.0][i % 2], "task": "emobank", "context": ""}
        row |= {"polarity": ["negative", "positive"][i % 2], "weight": 1.0}
        rows.append(row | {name: make(rng, i) for name, make in media.items()})
    return rows


FEATURES = {
    "audio": lambda rng, i: rng.normal(size=(3 + i, 5)).astype(np.float32),
    "vision": lambda rng, i: rng.normal(size=(4, 20)).astype(np.float32),
}
WAVEFORM = {"audio": lambda rng, i: (0.1 * rng.normal(size=4000 + 2000 * i)).astype(np.float32)}
FRAMES = {"video": lambda rng, i: rng.integers(0, 255, (2 + i, 56, 56, 3), dtype=np.uint8)}
IMAGE = {"image": lambda rng, i: rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)}


def length_reward(completions, **kwargs):
    return [len(completion_text(c)) / 10 for c in completions]


def grpo_trainer(model, processing_class, encoder, rows, tmp_path, **options):
    config = HintGRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        per_device_train_batch_size=2 * GROUP,
        num_generations=GROUP,
        max_completion_length=16,
        max_steps=1,
        learning_rate=1e-2,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
        **options,
    )
    set_seed(0)
    return MultimodalHintGRPOTrainer(
        model=model,
        processing_class=processing_class,
        args=config,
        train_dataset=Dataset.from_list(rows).map(add_prompt),
        reward_funcs=[length_reward, *get_reward_funcs(["polarity"])],
        prompt_encoder=encoder,
    )


@pytest.fixture
def mse_model(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    attach_mse_adapter(model, tokenizer, SMALL)
    return model, tokenizer


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(model, before) -> set[str]:
    return {name for name, p in model.named_parameters() if not torch.equal(before[name], p)}


def test_generation_and_loss_see_the_same_pseudo_tokens(mse_model, tmp_path):
    model, tokenizer = mse_model
    trainer = grpo_trainer(
        model, tokenizer, FeaturePromptEncoder(tokenizer, SMALL), media_rows(**FEATURES), tmp_path, hint_mode="none"
    )
    trainer.model.train()
    generated_logits = []
    generate = model.generate

    def generate_keeping_logits(*args, **kwargs):
        out = generate(*args, **kwargs, output_logits=True, return_dict_in_generate=True)
        generated_logits.append(torch.stack(out.logits, dim=1))
        return out.sequences

    model.generate = generate_keeping_logits
    inputs = [dict(row) for row in trainer.train_dataset for _ in range(GROUP)]
    batch = trainer._generate_and_score_completions(inputs)
    completion_ids, mask = batch["completion_ids"], batch["completion_mask"].bool()
    sampled = torch.log_softmax(generated_logits[0], dim=-1)[:, : completion_ids.size(1)]
    sampled = sampled.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)

    def loss_path_logps(media):
        trainer._media = media
        ids = torch.cat([batch["prompt_ids"], completion_ids], dim=1)
        attention = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        with torch.no_grad():
            logps, _, _ = trainer._get_per_token_logps_and_entropies(model, ids, attention, completion_ids.size(1))
        trainer._media = None
        return logps

    assert len(batch[MEDIA]) == 2 * GROUP
    torch.testing.assert_close(loss_path_logps(batch[MEDIA])[mask], sampled[mask], rtol=1e-3, atol=1e-4)
    # No control that swaps the rows' features: the tiny random LLM's log-probabilities are almost uniform, and a swap
    # moves them by 1e-6 in fp32. The control passed only while TRL's default ran this trainer in emulated bf16.


def test_hint_grpo_with_features_trains_only_the_adapter(mse_model, tmp_path):
    model, tokenizer = mse_model
    trainer = grpo_trainer(model, tokenizer, FeaturePromptEncoder(tokenizer, SMALL), media_rows(**FEATURES), tmp_path)
    before = snapshot(model)
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["hint/hinted_group_frac"] == 1.0  # the hinted rows were regenerated with their features
    adapter = {name for name in before if name.startswith("mse_adapter.")}
    assert changed(model, before) == adapter


def test_a_row_without_its_features_stops_training(mse_model, tmp_path):
    model, tokenizer = mse_model
    rows = media_rows(**FEATURES)
    rows[1]["vision"] = None
    trainer = grpo_trainer(model, tokenizer, FeaturePromptEncoder(tokenizer, SMALL), rows, tmp_path)
    with pytest.raises(MediaError, match=r"row '1', column 'vision': no vision features"):
        trainer.train()


def sft_rows(rows: list[dict]) -> Dataset:
    completion = render("positive", "Upbeat words.", "Mild.", 1.0)
    return Dataset.from_list(
        [
            row | {"prompt": build_messages(row), "completion": [{"role": "assistant", "content": completion}]}
            for row in rows
        ]
    )


def sft_trainer(model, processing_class, encoder, rows, tmp_path):
    args = SFTConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        max_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
    )
    return MultimodalSFTTrainer(
        model, args, train_dataset=sft_rows(rows), processing_class=processing_class, prompt_encoder=encoder
    )


def test_weighted_sft_with_features_trains_only_the_adapter(mse_model, tmp_path):
    model, tokenizer = mse_model
    rows = media_rows(**FEATURES)
    rows[0]["weight"] = 0.0
    trainer = sft_trainer(model, tokenizer, FeaturePromptEncoder(tokenizer, SMALL), rows, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["audio_features"].shape == (2, 4, 5) and batch["audio_feature_mask"].tolist()[0] == [1, 1, 1, 0]
    assert batch["token_weights"][0].abs().sum() == 0 and (batch["labels"] != -100).any()
    before = snapshot(model)
    trainer.train()
    assert changed(model, before) == {name for name in before if name.startswith("mse_adapter.")}


def test_a_resumed_run_restores_the_adapter_saved_beside_the_llm(tiny_model_dir, tmp_path):
    def trainer(seed: int) -> MultimodalSFTTrainer:
        tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        torch.manual_seed(seed)
        attach_mse_adapter(model, tokenizer, SMALL)
        args = SFTConfig(
            output_dir=str(tmp_path), use_cpu=True, bf16=False, max_steps=1, save_steps=1, report_to="none"
        )
        rows = sft_rows(media_rows(**FEATURES))
        encoder = FeaturePromptEncoder(tokenizer, SMALL)
        return MultimodalSFTTrainer(model, args, train_dataset=rows, processing_class=tokenizer, prompt_encoder=encoder)

    trainer(seed=0).train()
    checkpoint = tmp_path / "checkpoint-1"
    assert not any(name.startswith(ADAPTER_PREFIX) for name in load_file(checkpoint / "model.safetensors"))
    resumed = trainer(seed=1)  # another initial adapter, which the checkpoint's replaces
    resumed.train(resume_from_checkpoint=str(checkpoint))
    saved = load_file(checkpoint / ADAPTER_WEIGHTS)
    assert all(torch.equal(value, saved[name]) for name, value in resumed.model.mse_adapter.state_dict().items())


NATIVE = {
    "qwen2_vl": (tiny_qwen2_vl, ("image", "video"), IMAGE | FRAMES, ("model.visual.",)),
    "qwen2_5_vl": (tiny_qwen2_5_vl, ("video",), FRAMES, ("model.visual.",)),
    "qwen2_5_omni": (
        tiny_qwen2_5_omni_thinker,
        ("audio", "video"),
        WAVEFORM | FRAMES,
        ("model.audio_tower.", "model.visual."),
    ),
}


@pytest.mark.parametrize("family", NATIVE)
def test_native_models_train_through_their_media(family, tmp_path):
    build, modalities, media, towers = NATIVE[family]
    model, processor = build()
    encoder = ProcessorPromptEncoder(processor, modalities)
    trainer = grpo_trainer(model, processor, encoder, media_rows(**media), tmp_path / "grpo", hint_mode="prefix")
    before = snapshot(model)
    trainer.train()
    moved = changed(model, before)
    for tower in towers:  # the media reached the loss: their encoders got gradient
        assert any(name.startswith(tower) for name in moved), tower

    before = snapshot(model)
    sft_trainer(model, processor, encoder, media_rows(**media), tmp_path / "sft").train()
    moved = changed(model, before)
    assert all(any(name.startswith(tower) for name in moved) for tower in towers)


def test_media_errors_name_the_row(tmp_path):
    _, processor = tiny_qwen2_5_omni_thinker()
    encoder = ProcessorPromptEncoder(processor, ("audio", "video"))
    row = add_prompt(media_rows(1, **WAVEFORM | FRAMES)[0]) | media_rows(1, **WAVEFORM | FRAMES)[0]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt this is not audio")
    with pytest.raises(MediaError, match=r"row '0', column 'audio': cannot decode .*broken.wav"):
        encoder.attach(row | {"audio": str(broken)})
    with pytest.raises(MediaError, match=r"row '0', column 'video': no video"):
        encoder.attach(row | {"video": None})
    with pytest.raises(MediaError, match=r"column 'video': expected frames \[frames, height, width, 3\]"):
        encoder.attach(row | {"video": np.zeros((56, 56, 3), np.uint8)})
    with pytest.raises(MediaError, match="mono waveform"):
        encoder.attach(row | {"audio": np.zeros((2, 100), np.float32)})

    # A real file decodes (and is resampled to the feature extractor's rate).
    wave = tmp_path / "tone.wav"
    soundfile.write(wave, np.sin(np.linspace(0, 200, 8000)).astype(np.float32), 8000)
    attached = encoder.attach(row | {"audio": str(wave)})
    audio = next(b["audio"] for b in attached["prompt"][-1]["content"] if b["type"] == "audio")
    assert audio.shape == (16000,)
    assert "input_features" in encoder.encode(attached["prompt"]).media


def test_numpy_video_processor_lays_out_a_still_video_like_the_image_processor():
    _, processor = tiny_qwen2_vl()
    frame = np.random.default_rng(0).integers(0, 255, (60, 70, 3), dtype=np.uint8)
    video = processor.video_processor([np.stack([frame, frame])], return_tensors="pt")
    image = processor.image_processor([frame], return_tensors="pt")
    assert video["video_grid_thw"].tolist() == image["image_grid_thw"].tolist()
    torch.testing.assert_close(video["pixel_values_videos"], image["pixel_values"])
    # Three frames fill two temporal groups (the last frame repeated).
    three = processor.video_processor([np.stack([frame] * 3)], return_tensors="pt")
    assert three["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert isinstance(processor.video_processor, Qwen2VLVideoProcessorNumpy)
    with pytest.raises(ValueError, match="cannot decode the video file"):
        processor.video_processor(["clip.mp4"])
