"""MSE-Adapter: size on a 4096-wide LLM, pseudo-token placement, frozen LLM, feature validation, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

from hintgrpo.data.prompts import build_messages
from hintgrpo.models.tiny import train_tokenizer
from hintgrpo.multimodal import (
    FeaturePromptEncoder,
    MediaError,
    MSEAdapterConfig,
    attach_mse_adapter,
    collate_media,
    load_mse_adapter,
    save_mse_adapter,
    trainable_parameters,
)

SMALL = MSEAdapterConfig(
    feature_dims={"audio": 5, "vision": 20}, encoder_hidden={"audio": 8, "vision": 8}, fusion_size=16
)


@pytest.mark.parametrize("dataset", ["mosi", "mosei", "sims"])
def test_adapter_has_the_papers_size_on_a_4096_wide_llm(dataset):
    tokenizer = train_tokenizer()
    config = LlamaConfig(
        vocab_size=2048, hidden_size=4096, intermediate_size=11008, num_hidden_layers=2, num_attention_heads=32
    )
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
        llm_size = model.num_parameters()
        attach_mse_adapter(model, tokenizer, MSEAdapterConfig.for_dataset(dataset))
    trainable = trainable_parameters(model)
    print(f"MSE-Adapter ({dataset} features) on a 4096-wide LLM: {trainable:,} trainable parameters")
    assert 2_600_000 <= trainable <= 2_800_000
    assert trainable == sum(p.numel() for p in model.mse_adapter.parameters())
    assert model.num_parameters() == llm_size + trainable
    assert not any(p.requires_grad for name, p in model.named_parameters() if not name.startswith("mse_adapter."))


def sample(i: int, frames: int = 4) -> dict:
    rng = np.random.default_rng(i)
    row = {"id": str(i), "text": f"sample {i}", "task": "emobank", "context": ""}
    return row | {
        "prompt": build_messages(row),
        "audio": rng.normal(size=(frames + i, 5)).astype(np.float32),
        "vision": rng.normal(size=(frames, 20)).astype(np.float32),
    }


@pytest.fixture
def mse(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    attach_mse_adapter(model, tokenizer, SMALL)
    return model, tokenizer, FeaturePromptEncoder(tokenizer, SMALL)


def batch_of(encoder, rows, completion_ids=()):
    encoded = [encoder.encode(encoder.attach(row)["prompt"]) for row in rows]
    ids = torch.tensor([e.ids + list(completion_ids) for e in encoded])  # same-length prompts: no padding
    return ids, collate_media([e.media for e in encoded])


def test_pseudo_tokens_replace_exactly_the_placeholders(mse):
    model, tokenizer, encoder = mse
    ids, media = batch_of(encoder, [sample(0), sample(1)])
    placeholder = tokenizer.convert_tokens_to_ids(SMALL.placeholder_token)
    assert (ids == placeholder).sum(dim=1).tolist() == [SMALL.num_pseudo_tokens] * 2
    text = tokenizer.decode(ids[0])
    assert SMALL.span() in text and text.index("sample 0") < text.index(SMALL.span())  # the span follows the text

    embedding = model.get_input_embeddings()
    features = model.mse_adapter.pop_features(dict(media))
    with torch.no_grad():
        embeds = model.mse_adapter.embed(embedding, ids, None, features)
        plain = embedding(ids)
    slots = ids == placeholder
    assert torch.equal(embeds[~slots], plain[~slots])
    assert not torch.allclose(embeds[slots], plain[slots])
    rows = embeds[slots].view(2, SMALL.num_pseudo_tokens, -1)
    assert not torch.allclose(rows[0], rows[1])  # each row's own features

    # A completion after the prompt (GRPO's log-probability pass) leaves the pseudo tokens as they were.
    longer = torch.cat([ids, torch.tensor([[5, placeholder, 7]] * 2)], dim=1)
    with torch.no_grad():
        extended = model.mse_adapter.embed(embedding, longer, None, features)
        sampled_placeholder = embedding(longer)[:, -2]
    assert torch.equal(extended[:, : ids.size(1)], embeds)
    assert torch.equal(extended[:, -2], sampled_placeholder)

    # The model's forward takes the features by name.
    with torch.no_grad():
        logits = model(input_ids=ids, **media).logits
        without = model(input_ids=ids).logits
    assert not torch.allclose(logits, without)


def test_only_the_adapter_learns(mse):
    model, _, encoder = mse
    ids, media = batch_of(encoder, [sample(0), sample(1)])
    model(input_ids=ids, labels=ids, **media).loss.backward()
    for name, parameter in model.named_parameters():
        if name.startswith("mse_adapter."):
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        else:
            assert parameter.grad is None, name


def test_generation_takes_the_features(mse):
    model, tokenizer, encoder = mse
    ids, media = batch_of(encoder, [sample(0)])
    common = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False)
    with torch.no_grad():
        out = model.generate(**common, **media, output_logits=True, return_dict_in_generate=True)
        first_logits = model(input_ids=ids, **media).logits[:, -1]
    assert torch.equal(out.sequences[:, : ids.size(1)], ids)
    torch.testing.assert_close(out.logits[0], first_logits)


def test_malformed_features_are_reported_with_their_row():
    encoder = FeaturePromptEncoder(train_tokenizer(), SMALL)
    with pytest.raises(
        MediaError, match=r"row '3', column 'vision': features of shape \(4, 7\); expected \[frames, 20\]"
    ):
        encoder.attach(sample(3) | {"vision": np.zeros((4, 7), np.float32)})
    with pytest.raises(MediaError, match=r"row '3', column 'audio': no audio features"):
        encoder.attach({k: v for k, v in sample(3).items() if k != "audio"})
    with pytest.raises(MediaError, match="no frames"):
        encoder.attach(sample(3) | {"audio": np.zeros((0, 5), np.float32)})
    with pytest.raises(MediaError, match="NaN"):
        encoder.attach(sample(3) | {"audio": np.full((2, 5), np.nan, np.float32)})
    with pytest.raises(ValueError, match="no features block"):
        encoder.encode(sample(3)["prompt"])


def test_the_adapter_refuses_incomplete_inputs(mse):
    model, _, encoder = mse
    ids, media = batch_of(encoder, [sample(0)])
    with pytest.raises(ValueError, match=r"got features for \['audio'\] but not for \['vision'\]"):
        model(input_ids=ids, audio_features=media["audio_features"])
    text_only = ids[:, :10]
    with pytest.raises(ValueError, match="needs 4 <\\|mm_pad\\|> tokens"):
        model(input_ids=text_only, **media)


def test_saved_adapter_loads_into_a_fresh_llm(mse, tiny_model_dir, tmp_path):
    model, _, encoder = mse
    ids, media = batch_of(encoder, [sample(0)])
    save_mse_adapter(model, tmp_path)
    fresh = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    load_mse_adapter(fresh, AutoTokenizer.from_pretrained(tiny_model_dir), tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(fresh(input_ids=ids, **media).logits, model(input_ids=ids, **media).logits)


def test_collate_pads_sequences_and_concatenates_flat_inputs():
    rows = [
        {"x_features": torch.ones(1, 2, 3), "x_feature_mask": torch.ones(1, 2), "grid": torch.tensor([[1, 2, 2]])},
        {"x_features": torch.ones(1, 4, 3), "x_feature_mask": torch.ones(1, 4), "grid": torch.tensor([[1, 4, 4]])},
    ]
    batch = collate_media(rows)
    assert batch["x_features"].shape == (2, 4, 3) and batch["x_features"][0, 2:].abs().sum() == 0
    assert batch["x_feature_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert batch["grid"].tolist() == [[1, 2, 2], [1, 4, 4]]
    with pytest.raises(ValueError, match="different media inputs"):
        collate_media([rows[0], {"grid": torch.tensor([[1, 2, 2]])}])


def test_mmsa_feature_columns_feed_the_encoder():
    """Rows from `attach_features` (Array2D columns, as the MMSA loader gives them) encode; other sizes are refused."""
    from datasets import Dataset

    from hintgrpo.data.mmsa import attach_features

    rows = [{k: v for k, v in sample(i).items() if k not in ("audio", "vision", "prompt")} for i in range(2)]
    features = {row["id"]: {"audio": sample(i)["audio"], "vision": sample(i)["vision"]} for i, row in enumerate(rows)}
    dataset = attach_features(Dataset.from_list(rows), features).map(lambda row: {"prompt": build_messages(row)})
    encoder = FeaturePromptEncoder(train_tokenizer(), SMALL)
    encoded = encoder.encode(encoder.attach(dataset[1])["prompt"])
    np.testing.assert_array_equal(encoded.media["audio_features"][0].numpy(), sample(1)["audio"])
    mosei = FeaturePromptEncoder(train_tokenizer(), MSEAdapterConfig.for_dataset("mosei"))
    with pytest.raises(MediaError, match=r"expected \[frames, 74\]"):
        mosei.attach(dataset[0])
