"""Both multimodal routes through recipes/sft.py, recipes/hint_grpo.py and `hintgrpo evaluate`, on a tiny MOSI."""

from __future__ import annotations

import csv
import importlib.util
import json
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from datasets import load_from_disk
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig

from hintgrpo.cli import main
from hintgrpo.configs import EvaluateArguments, MediaArguments, MultimodalArguments, SFTScriptArguments
from hintgrpo.data import DataError, load_task_dataset
from hintgrpo.data.prompts import build_messages
from hintgrpo.evaluate import evaluate
from hintgrpo.multimodal import MediaError, MSEAdapterConfig, attach_mse_adapter
from hintgrpo.multimodal.adapter import ADAPTER_CONFIG, ADAPTER_PREFIX, ADAPTER_WEIGHTS
from hintgrpo.multimodal.data import with_media
from hintgrpo.multimodal.generation import load_for_media_generation
from hintgrpo.multimodal.tiny import tiny_qwen2_5_omni_thinker
from hintgrpo.reasoning import render
from hintgrpo.trainers import HintGRPOConfig
from hintgrpo.trainers.multimodal_grpo import MultimodalHintGRPOTrainer
from hintgrpo.training import sft_datasets

ROOT = Path(__file__).parents[1]
TEXTS = ["i love this film", "the acting was awful", "a wonderful day", "so boring", "great fun", "dull plot"]
MODES = ["train", "train", "train", "train", "test", "test"]
ONE_STEP = ["--max_steps", "1", "--save_strategy", "no", "--report_to", "none", "--learning_rate", "0.01"]
GRPO_STEP = ["--per_device_train_batch_size", "4", "--num_generations", "2", "--max_completion_length", "16"]


@pytest.fixture(scope="module")
def mosi(tmp_path_factory) -> Path:
    """A MOSI folder in the MMSA layout (label.csv, a feature pickle with MOSI's frame sizes), teacher CoT for its
    train rows, and each clip's wav and png with a manifest."""
    root = tmp_path_factory.mktemp("data")
    rows = [
        {"video_id": f"v{i}", "clip_id": "1", "text": text, "label": [2.0, -2.0][i % 2], "mode": mode}
        for i, (text, mode) in enumerate(zip(TEXTS, MODES, strict=True))
    ]
    (root / "mosi" / "Processed").mkdir(parents=True)
    with open(root / "mosi" / "label.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    rng = np.random.default_rng(0)
    features = {}
    for mode in ("train", "valid", "test"):
        ids = [f"{row['video_id']}$_$1" for row in rows if row["mode"] == mode]
        features[mode] = {
            "id": ids,
            "audio": rng.normal(size=(len(ids), 6, 5)).astype(np.float32),
            "vision": rng.normal(size=(len(ids), 6, 20)).astype(np.float32),
            "audio_lengths": [6 - i for i in range(len(ids))],
        }
    (root / "mosi" / "Processed" / "unaligned.pkl").write_bytes(pickle.dumps(features))
    with open(root / "cot.jsonl", "w") as cot, open(root / "media.jsonl", "w") as manifest:
        for i, row in enumerate(rows):
            sample_id, polarity = f"{row['video_id']}$_$1", "positive" if row["label"] > 0 else "negative"
            if row["mode"] == "train":
                record = {"status": "accepted", "id": sample_id, "task": "mosi", "label": row["label"]}
                record |= {"polarity": polarity, "weight": 1.0, "text": row["text"], "context": ""}
                record["cot"] = render(polarity, "Clear words.", "Strongly put.", row["label"])
                cot.write(json.dumps(record) + "\n")
            (root / "clips").mkdir(exist_ok=True)
            soundfile.write(root / "clips" / f"{i}.wav", 0.1 * rng.normal(size=4000 + 1000 * i), 16000)
            Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(root / "clips" / f"{i}.png")
            manifest.write(json.dumps({"id": sample_id, "audio": f"clips/{i}.wav", "image": f"clips/{i}.png"}) + "\n")
    return root


def launch(recipe: str, *options) -> None:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "accelerate_configs/cpu.yaml"]
    command += [f"recipes/{recipe}.py", "--config", f"recipes/configs/demo/{recipe}.yaml", *map(str, options)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def recipe_module(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_recipe", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def next_token_logits(loaded, row: dict) -> torch.Tensor:
    """The model's logits after the row's prompt, with the row's media encoded as the trainers encode them."""
    encoder = loaded.prompt_encoder
    encoded = encoder.encode(encoder.attach(row | {"prompt": build_messages(row)})["prompt"])
    ids = torch.tensor([encoded.ids])
    with torch.no_grad():
        return loaded.model(input_ids=ids, **encoded.media, **encoder.token_fields(ids)).logits[0, -1]


@pytest.mark.parametrize(
    "config", sorted(ROOT.glob("recipes/configs/multimodal-*/sft.yaml")), ids=lambda p: p.parent.name
)
def test_multimodal_sft_configs_parse(config):
    script_args, _, model_args = (
        recipe_module("sft").make_parser().parse_args_and_config(["--config", str(config), "--bf16", "false"])
    )
    assert script_args.modality_route in ("mse_adapter", "native") and script_args.task == "mosei"
    assert script_args.features_file or script_args.media_file
    assert model_args.model_name_or_path


def test_mse_adapter_through_sft_hint_grpo_and_evaluation(tiny_model_dir, mosi, tmp_path):
    features_file = mosi / "mosi" / "Processed" / "unaligned.pkl"
    route = ["--modality_route", "mse_adapter", "--features_file", features_file]
    sft, grpo = tmp_path / "sft", tmp_path / "grpo"
    launch(
        "sft",
        *route,
        *["--model_name_or_path", tiny_model_dir, "--cot_file", mosi / "cot.jsonl", "--task", "mosi"],
        *["--num_pseudo_tokens", "3", "--adapter_fusion_size", "16", "--output_dir", sft, *ONE_STEP],
        *["--per_device_train_batch_size", "2", "--warmup_steps", "0"],
    )
    adapter = json.loads((sft / ADAPTER_CONFIG).read_text())
    assert adapter["num_pseudo_tokens"] == 3 and adapter["feature_dims"] == {"audio": 5, "vision": 20}
    assert json.loads((sft / "trainer_state.json").read_text())["log_history"][0]["grad_norm"] > 0
    llm, tiny = load_file(sft / "model.safetensors"), load_file(tiny_model_dir / "model.safetensors")
    assert not any(name.startswith(ADAPTER_PREFIX) for name in llm)  # the adapter is saved beside the LLM
    frozen = [name for name in tiny if "embed" not in name]  # the embeddings grew by the span's marker tokens
    assert all(torch.equal(llm[name], tiny[name]) for name in frozen)

    # Hint-GRPO continues the SFT adapter (3 pseudo tokens, not a new adapter with the default 4).
    launch(
        "hint_grpo",
        *route,
        *["--model_name_or_path", sft, "--data_dir", mosi, "--task", "mosi", "--output_dir", grpo],
        *ONE_STEP,
        *GRPO_STEP,
    )
    assert json.loads((grpo / ADAPTER_CONFIG).read_text()) == adapter

    args = EvaluateArguments(
        model=str(grpo),
        task="mosi",
        data_dir=str(mosi),
        split="test",
        output_dir=str(tmp_path / "eval"),
        max_new_tokens=8,
        modality_route="mse_adapter",
        features_file=str(features_file),
    )
    metrics = evaluate(args)
    assert metrics["n"] == 2 and 0 <= metrics["parse_rate"] <= 1 and "MAE" in metrics
    assert len((tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()) == 2

    # What was evaluated is the trained adapter, and its answer follows each row's features.
    dataset, loaded = load_for_media_generation(args, load_task_dataset("mosi", mosi, "test"))
    trained = load_file(grpo / ADAPTER_WEIGHTS)
    assert all(torch.equal(value, trained[name]) for name, value in loaded.model.mse_adapter.state_dict().items())
    row = dataset[0]
    other = row | {"audio": np.ones((4, 5), np.float32), "vision": -np.ones((4, 20), np.float32)}
    assert not torch.allclose(next_token_logits(loaded, row), next_token_logits(loaded, other))

    # Without its features the LLM would answer from the text alone: the text route refuses the checkpoint.
    with pytest.raises(ValueError, match="has an MSE-Adapter: evaluate it with its features"):
        evaluate(replace(args, modality_route="text", features_file=None, output_dir=str(tmp_path / "text")))


def test_native_omni_through_sft_hint_grpo_and_evaluation(mosi, tmp_path):
    model, processor = tiny_qwen2_5_omni_thinker()
    model.save_pretrained(tmp_path / "omni")
    processor.save_pretrained(tmp_path / "omni")
    route = ["--modality_route", "native", "--media_columns", "audio", "image", "--media_file", mosi / "media.jsonl"]
    sft, grpo = tmp_path / "sft", tmp_path / "grpo"
    sft_recipe = recipe_module("sft")  # in this process, to save a launch: the recipe's code path is the same
    sft_recipe.main(
        *sft_recipe.make_parser().parse_args_and_config(
            [
                *["--config", str(ROOT / "recipes/configs/demo/sft.yaml"), *map(str, route)],
                *["--model_name_or_path", str(tmp_path / "omni"), "--cot_file", str(mosi / "cot.jsonl")],
                *["--task", "mosi", "--output_dir", str(sft), *ONE_STEP, "--per_device_train_batch_size", "2"],
            ]
        )
    )
    assert (sft / "processor_config.json").is_file()
    launch(
        "hint_grpo",
        *route,
        *["--model_name_or_path", sft, "--data_dir", mosi, "--task", "mosi", "--output_dir", grpo],
        *ONE_STEP,
        *GRPO_STEP,
    )

    args = EvaluateArguments(
        model=str(grpo),
        task="mosi",
        data_dir=str(mosi),
        split="test",
        output_dir=str(tmp_path / "eval"),
        max_new_tokens=8,
        modality_route="native",
        media_columns=["audio", "image"],
        media_file=str(mosi / "media.jsonl"),
    )
    metrics = evaluate(args)
    assert metrics["n"] == 2 and "parse_rate" in metrics

    dataset, loaded = load_for_media_generation(args, load_task_dataset("mosi", mosi, "test"))
    row = dataset[0]
    assert not torch.allclose(
        next_token_logits(loaded, row), next_token_logits(loaded, row | {"audio": dataset[1]["audio"]})
    )

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt not audio")
    manifest = tmp_path / "media.jsonl"
    lines = (mosi / "media.jsonl").read_text().splitlines()
    manifest.write_text("\n".join(line.replace("clips/4.wav", str(broken)) for line in lines) + "\n")
    with pytest.raises(MediaError, match=r"row 'v4\$_\$1', column 'audio': cannot decode .*broken.wav"):
        evaluate(replace(args, media_file=str(manifest), output_dir=str(tmp_path / "broken")))


def test_malformed_media_files_name_the_file_row_and_column(mosi, tmp_path):
    dataset = load_task_dataset("mosi", mosi, "train")
    features = mosi / "mosi" / "Processed" / "unaligned.pkl"
    narrow = pickle.loads(features.read_bytes())
    narrow["train"]["vision"] = np.zeros((4, 6, 7), np.float32)
    (tmp_path / "narrow.pkl").write_bytes(pickle.dumps(narrow))
    mse = MediaArguments(modality_route="mse_adapter", features_file=str(tmp_path / "narrow.pkl"))
    with pytest.raises(DataError, match=r"narrow.pkl, row v0\$_\$1, field 'vision': .*expected \[frames, 20\]"):
        with_media(dataset, mse, "train")
    with pytest.raises(
        ValueError, match="reads columns \\['audio', 'vision'\\], which the rows lack: pass --features_file"
    ):
        with_media(dataset, MediaArguments(modality_route="mse_adapter"), "train")

    manifest = tmp_path / "media.jsonl"
    lines = (mosi / "media.jsonl").read_text().splitlines()
    manifest.write_text(lines[0] + "\n" + lines[1].replace('"audio": "clips/1.wav", ', "") + "\n")
    native = MediaArguments(modality_route="native", media_file=str(manifest), media_columns=["audio", "image"])
    with pytest.raises(DataError, match=r"media.jsonl, row 2, field 'audio': id 'v1\$_\$1': no audio file"):
        with_media(dataset, native, "train")
    manifest.write_text(lines[0] + "\n")
    with pytest.raises(DataError, match=r"media.jsonl, field 'id': no entry for id 'v1\$_\$1'"):
        with_media(dataset, native, "train")

    with pytest.raises(ValueError, match="modality_route='mse' is not one of"):
        MultimodalArguments(modality_route="mse")
    with pytest.raises(ValueError, match="1 feature_encoder_sizes for feature_columns"):
        MultimodalArguments(modality_route="mse_adapter", feature_encoder_sizes=[8])


def test_options_that_would_not_train_the_adapter_are_refused(tiny_model_dir, tmp_path):
    from peft import LoraConfig

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    attach_mse_adapter(model, AutoTokenizer.from_pretrained(tiny_model_dir), MSEAdapterConfig())
    args = HintGRPOConfig(output_dir=str(tmp_path), use_cpu=True, beta=0.04, report_to=[])
    with pytest.raises(ValueError, match="beta=0.04 needs a reference model"):
        MultimodalHintGRPOTrainer(model=model, args=args, reward_funcs=[], prompt_encoder=None)
    with pytest.raises(ValueError, match="drop --use_peft"):
        MultimodalHintGRPOTrainer(
            model=model, args=args, reward_funcs=[], prompt_encoder=None, peft_config=LoraConfig()
        )


def test_sft_preprocessing_reads_and_keeps_each_rows_features(mosi, tmp_path):
    script_args = SFTScriptArguments(
        cot_file=str(mosi / "cot.jsonl"),
        task="mosi",
        modality_route="mse_adapter",
        features_file=str(mosi / "mosi" / "Processed" / "unaligned.pkl"),
        preprocess=["augment", "score"],
        augmenters=["paraphrase", "diffusion"],
        diffusion_train_steps=20,
        diffusion_inference_steps=5,
        diffusion_hidden_size=16,
        preprocess_cache_dir=str(tmp_path),
    )
    training_args = SFTConfig(output_dir=str(tmp_path / "sft"), use_cpu=True, bf16=False, report_to="none")
    train, _ = sft_datasets(script_args, training_args)
    rows = {row["id"]: row for row in train}
    source = {sample_id: rows[sample_id.split("#")[0]] for sample_id in rows}
    paraphrased = [i for i in rows if "#paraphrase" in i]
    diffused = [i for i in rows if "#diffusion" in i]
    assert len(diffused) == 4 and paraphrased  # every train row diffused; paraphrases where the lexicon has synonyms
    # A paraphrase keeps its source's features, a diffusion row gets new ones of the same frame size.
    assert all(rows[i]["audio"] == source[i]["audio"] for i in paraphrased)
    assert all(np.asarray(rows[i]["vision"]).shape[1] == 20 for i in diffused)
    assert all(not np.allclose(rows[i]["vision"], source[i]["vision"]) for i in diffused)
    # Scored with the features: a diffusion row's weight falls with its feature fidelity.
    assert all(rows[i]["weight"] < 1.0 for i in diffused)


def test_preprocess_commands_join_features_to_teacher_cot(mosi, tmp_path):
    pickle_file = str(mosi / "mosi" / "Processed" / "unaligned.pkl")
    options = ["--features_file", pickle_file, "--cache_dir", str(tmp_path / "cache")]
    main(["score", "--input", str(mosi / "cot.jsonl"), "--output_dir", str(tmp_path / "scored"), *options])
    scored = load_from_disk(str(tmp_path / "scored"))
    assert {"audio", "vision", "weight"} <= set(scored.column_names) and len(scored) == 4
    with pytest.raises(SystemExit, match="^error: .*keeps its rows' features: drop --features_file"):
        main(["score", "--input", str(tmp_path / "scored"), "--output_dir", str(tmp_path / "again"), *options])
