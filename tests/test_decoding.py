import logging
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

from hintgrpo.configs import EvaluateArguments
from hintgrpo.data import load_task_dataset
from hintgrpo.data.prompts import build_messages
from hintgrpo.evaluate import evaluate
from hintgrpo.models import generate_batch, load_for_generation, precision
from hintgrpo.models.decoding import (
    chat_prompt_ids,
    greedy_decode,
    shared_prefix_length,
    stream_greedy_decode,
    transformers_greedy_decode,
)
from hintgrpo.trainers import HintGRPOConfig, WeightedSFTConfig


def dev_conversations(data_dir, rows: int, prompt_style: str) -> list[list[dict]]:
    dev = load_task_dataset("emobank", data_dir, "dev")
    return [build_messages(sample, prompt_style=prompt_style) for sample in dev.select(range(rows))]


def test_greedy_decoding_writes_what_transformers_generate_writes(real_data_dir):
    model, tokenizer = load_for_generation("smollm2-135m-instruct", "float32")
    prompts = chat_prompt_ids(tokenizer, dev_conversations(real_data_dir, 4, "brief"))
    assert len({len(p) for p in prompts}) > 1  # rows of several lengths: padding between prefix and row is exercised
    assert 0 < shared_prefix_length(prompts) < min(len(p) for p in prompts)
    expected = transformers_greedy_decode(model, tokenizer, prompts, 16)
    assert greedy_decode(model, tokenizer, prompts, 16, stop_strings=()) == expected


class ScriptedModel(torch.nn.Module):
    """Writes `scripts[i]` after prompt i (prompts that share no first token, so none is computed once for all).

    Rows are admitted in prompt order; each row's index is written into the KV cache, so that it follows the row
    through the batch as others leave and join.
    """

    def __init__(self, tokenizer, scripts: list[list[int]]):
        super().__init__()
        self.vocab, self.scripts = len(tokenizer), scripts
        self.config = LlamaConfig(num_hidden_layers=1)
        self.generation_config = SimpleNamespace(eos_token_id=tokenizer.eos_token_id)
        self.written, self.admitted = [0] * len(scripts), 0
        self.batch_sizes: list[int] = []

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, input_ids, cache, **kwargs):
        batch, width = input_ids.shape
        if cache.get_seq_length() == 0:  # an admission
            rows = torch.arange(self.admitted, self.admitted + batch, dtype=torch.float)
            self.admitted += batch
        else:
            rows = cache.layers[0].keys[:, 0, -1, 0]
        index = rows[:, None, None, None].expand(batch, 1, width, 1)
        cache.update(index, index, 0)
        self.batch_sizes.append(batch)
        logits = torch.zeros(batch, 1, self.vocab)
        for slot, row in enumerate(rows.long().tolist()):
            script = self.scripts[row]  # a finished row still in the batch goes on at its last token
            logits[slot, 0, script[min(self.written[row], len(script) - 1)]] = 1.0
            self.written[row] += 1
        return SimpleNamespace(logits=logits)


def test_a_row_stops_at_its_answer_close_and_leaves_the_batch(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    answered = tokenizer.encode("<answer>-0.4</answer> and then it rambles on", add_special_tokens=False)
    ends = tokenizer.encode("positive", add_special_tokens=False) + [tokenizer.eos_token_id]
    model = ScriptedModel(tokenizer, [ends, answered])
    completions = greedy_decode(model, tokenizer, [[101, 102, 103], [201, 202]], max_new_tokens=40)
    assert tokenizer.decode(completions[1]).endswith("</answer>")
    assert "rambles" not in tokenizer.decode(completions[1])
    assert completions[0] == ends  # the EOS is kept, as transformers keeps it
    # Both rows decode together until the shorter one is done; then only the other is computed.
    steps_together = min(len(ends), len(completions[1]))
    assert model.batch_sizes == [2] * steps_together + [1] * (max(len(ends), len(completions[1])) - steps_together)


def test_a_finished_rows_place_goes_to_the_next_prompt(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    eos = tokenizer.eos_token_id
    scripts = [[11, 12, eos], [21, 22, 23, 24, 25, 26, eos], [31, 32, 33, eos]]
    model = ScriptedModel(tokenizer, scripts)
    finished = list(stream_greedy_decode(model, tokenizer, [[1, 2], [3, 4], [5, 6]], 40, batch_size=2))
    assert finished == [(0, scripts[0]), (2, scripts[2]), (1, scripts[1])]
    # Rows 0 and 1 together; row 2 is admitted (a one-row prefill) once row 0 is done, then decoded beside row 1.
    assert model.batch_sizes == [2, 2, 2, 1, 2, 2, 2, 1]


def test_refilled_batches_write_what_transformers_generate_writes(real_data_dir):
    model, tokenizer = load_for_generation("smollm2-135m-instruct", "float32")
    prompts = chat_prompt_ids(tokenizer, dev_conversations(real_data_dir, 8, "brief"))
    # A full stop stands in for the EOS, so that rows end within a few tokens, each at its own step.
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(".")
    expected = transformers_greedy_decode(model, tokenizer, prompts, 24)
    assert len({len(row) for row in expected}) > 2  # places free up at different steps and are refilled
    assert greedy_decode(model, tokenizer, prompts, 24, stop_strings=(), batch_size=3) == expected


def test_a_sliding_window_model_decodes_a_batch_after_another(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    eos = tokenizer.eos_token_id
    scripts = [[11, 12, eos], [21, 22, 23, 24, 25, 26, eos], [31, 32, 33, eos]]
    model = ScriptedModel(tokenizer, scripts)
    model.config = LlamaConfig(num_hidden_layers=1, sliding_window=8, layer_types=["sliding_attention"])
    finished = list(stream_greedy_decode(model, tokenizer, [[1, 2], [3, 4], [5, 6]], 40, batch_size=2))
    assert finished == [(0, scripts[0]), (1, scripts[1]), (2, scripts[2])]
    # A sliding-window cache keeps a window, so it cannot be padded to join: row 2 waits until rows 0 and 1 are done.
    assert model.batch_sizes == [2] * 7 + [1] * 4


def test_the_token_budget_ends_a_row_that_never_stops(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rambling = tokenizer.encode("and then it rambles on and on", add_special_tokens=False)
    model = ScriptedModel(tokenizer, [rambling, rambling[::-1]])
    assert greedy_decode(model, tokenizer, [[5, 7], [6, 8]], max_new_tokens=3) == [rambling[:3], rambling[::-1][:3]]


@pytest.fixture
def cpu_flags(monkeypatch):
    """Sets the CPU feature flags precision reads (None: not readable)."""

    def set_flags(flags: set[str] | None):
        monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    return set_flags


def test_auto_is_fp32_on_a_cpu_without_native_bf16_and_says_why(cpu_flags, caplog):
    cpu_flags({"avx", "avx2", "fma"})
    with caplog.at_level(logging.INFO, logger="hintgrpo"):
        assert precision.resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert "float32 (--dtype auto: the CPU has none of amx_bf16, avx512_bf16" in caplog.text


def test_auto_is_bf16_on_a_cpu_with_native_bf16(cpu_flags, caplog):
    cpu_flags({"avx2", "avx512f", "avx512_bf16"})
    with caplog.at_level(logging.INFO, logger="hintgrpo"):
        assert precision.resolve_dtype("auto", torch.device("cpu")) == torch.bfloat16
    assert "bfloat16 (--dtype auto: the CPU has avx512_bf16)" in caplog.text


def test_auto_is_fp32_where_the_cpu_flags_cannot_be_read(cpu_flags):
    cpu_flags(None)
    assert precision.resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_an_explicit_dtype_is_kept_whatever_the_cpu(cpu_flags):
    cpu_flags({"avx2"})
    assert precision.resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="--dtype must be one of auto, float32, bfloat16"):
        precision.resolve_dtype("half", torch.device("cpu"))


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") is None


@pytest.mark.parametrize("config_class", [WeightedSFTConfig, HintGRPOConfig])
@pytest.mark.parametrize("bf16", [True, None])
def test_bf16_training_falls_back_to_fp32_on_a_cpu_that_would_emulate_it(config_class, bf16, cpu_flags, tmp_path):
    cpu_flags({"avx2"})
    assert config_class(output_dir=str(tmp_path), use_cpu=True, bf16=bf16).bf16 is False


@pytest.mark.parametrize("config_class", [WeightedSFTConfig, HintGRPOConfig])
def test_bf16_training_is_kept_on_a_cpu_with_native_bf16(config_class, cpu_flags, tmp_path):
    cpu_flags({"avx512_bf16"})
    assert config_class(output_dir=str(tmp_path), use_cpu=True, bf16=True).bf16 is True
    assert config_class(output_dir=str(tmp_path), use_cpu=True, bf16=False).bf16 is False


def test_evaluate_records_the_dtype_it_chose_and_refuses_to_extend_it_with_another(
    tiny_model_dir, real_data_dir, tmp_path, cpu_flags
):
    cpu_flags({"avx2"})
    options = dict(model=str(tiny_model_dir), task="emobank", data_dir=str(real_data_dir), split="dev")
    options |= dict(output_dir=str(tmp_path), limit=2, max_new_tokens=4)
    evaluate(EvaluateArguments(**options, dtype="auto"))
    run = (tmp_path / "run.json").read_text()
    assert '"dtype": "float32"' in run
    evaluate(EvaluateArguments(**options, dtype="float32"))  # what auto chose: the same run
    with pytest.raises(ValueError, match="'dtype': \\('float32', 'bfloat16'\\)"):
        evaluate(EvaluateArguments(**options, dtype="bfloat16"))


def test_a_bf16_model_generates_in_bf16(tiny_model_dir):
    model, tokenizer = load_for_generation(str(tiny_model_dir), "bfloat16")
    assert model.dtype == torch.bfloat16
    assert AutoModelForCausalLM.from_pretrained(tiny_model_dir).dtype == torch.float32  # the folder is fp32
    assert len(generate_batch(model, tokenizer, [[{"role": "user", "content": "hi"}]], 3)) == 1
