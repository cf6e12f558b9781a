"""Throughput of the base model on this machine: generation, SFT and a GRPO step, against its own matmul GFLOP/s.

    python benchmarks/throughput.py                                    # every part, 5-10 min on the shared 2-core CPU
    python benchmarks/throughput.py --parts matmul generation --generation_batches 1 16 64
    python benchmarks/throughput.py --generation_batches 1 16 --max_new_tokens 32 --sft_steps 2 --grpo_steps 1

Parts (`--parts`):

- matmul: fp32 `torch.mm` of square matrices (`--matmul_sizes`), best of `--matmul_reps`, on the threads torch uses,
  at the start of the run and again at its end; the higher figure is the baseline. It is measured in the run because
  the CPU is shared: the fractions below are of what the machine gave this run, not of a datasheet peak. The bf16
  rate is measured once, at the smallest size, as the reference of a bf16 model (and of what bf16 would buy here).
- generation: greedy decoding (the evaluation path) of the DC prompts of the first EmoBank dev rows, for each
  `--generation_batches` size `--generation_rounds` x size rows with `--max_new_tokens`, by each decoder of
  `--generation_paths` in turn: before (`transformers`: `model.generate`, a batch after another) and after
  (`hintgrpo`: `hintgrpo.models.decoding.greedy_decode`, that many rows in flight). Rows/s,
  generated tokens/s (a row's tokens up to and including its EOS or stop string; padding is not counted) and prompt
  tokens per row, with the prefix they share. `--generation_model` a fine-tuned model: it stops where it answers.
- sft: `WeightedSFTTrainer` with the options of `--sft_config`, on lexicon-teacher CoT of EmoBank train written into
  `--output_dir`: samples/s, tokens/s (the batches' non-pad tokens) and tokens per sample, over `--sft_steps`
  optimizer steps after one warm-up step.
- grpo: `HintGRPOTrainer` with the options of `--grpo_config`, its model replaced by `--model`: the seconds of a step
  spent in generation (`_generate_single_turn`, hinted regenerations included), scoring (`_calculate_rewards`), the
  rest of the batch preparation, the loss forward (`compute_loss`), the backward, and the optimizer step with the
  rest, over `--grpo_steps` steps after one warm-up step.

Achieved FLOP/s are estimated as 2·N·tokens for generation (forward only; generated tokens, and in "with prompt"
the prompt tokens run through the model too, a shared prefix once where it is computed once) and 6·N·tokens for
training (N: the model's parameters; activation checkpointing recomputes a forward the estimate leaves out), and
given as a fraction of the fp32 matmul GFLOP/s (and of the bf16 one). Where the path computes logits for the
completion only (the prefill of generation, TRL's GRPO loss), a prompt token counts N without the lm_head.
Results: `results.json` and `results.md` in `--output_dir`, rewritten after every part, so an interrupted run keeps
the parts it finished.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import time
from collections import defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path
from statistics import mean

import torch
from transformers import TrainerCallback
from trl import ModelConfig, SFTConfig, TrlParser, get_peft_config, get_quantization_config

from hintgrpo.configs import GRPOScriptArguments, SFTScriptArguments, SynthesizeArguments, dtype_field
from hintgrpo.data import load_task_dataset
from hintgrpo.data.prompts import build_messages
from hintgrpo.models import load_for_generation, trained_prompt_style
from hintgrpo.models.decoding import chat_prompt_ids, greedy_decode, shared_prefix_length, transformers_greedy_decode
from hintgrpo.rewards import get_reward_funcs
from hintgrpo.teachers.synthesize import synthesize
from hintgrpo.trainers import HintGRPOConfig, HintGRPOTrainer, WeightedSFTTrainer
from hintgrpo.training import model_init_kwargs, model_path, prompt_dataset, sft_datasets

PARTS = ("matmul", "generation", "sft", "grpo")
# The decoders the generation part times on the same prompts: transformers' `model.generate` (one left-padded batch,
# every row decoded until the longest is done) and hintgrpo's (shared prompt prefix; a row leaves at EOS or
# `</answer>`).
GENERATION_PATHS = ("transformers", "hintgrpo")
GRPO_PHASES = ("generation", "scoring", "other_preparation", "forward", "backward", "optimizer_and_rest")
# Options every training part sets whatever its YAML says: a CPU run of a few steps that saves and reports nothing.
TRAINING_OVERRIDES = ["--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--save_strategy", "no"]
TRAINING_OVERRIDES += ["--eval_strategy", "no", "--logging_steps", "1"]


@dataclass
class ThroughputArguments:
    output_dir: str = field(default="outputs/benchmarks/throughput", metadata={"help": "Where results are written."})
    data_dir: str = field(
        default_factory=lambda: os.environ.get("HINTGRPO_DATA_DIR") or "../shared/data",
        metadata={"help": "Folder with one subfolder per dataset (default: $HINTGRPO_DATA_DIR or ../shared/data)."},
    )
    model: str = field(default="smollm2-135m-instruct", metadata={"help": "Base model (shipped name, id or folder)."})
    threads: int | None = field(
        default=None, metadata={"help": "torch.set_num_threads for the whole run (default: torch's, one per core)."}
    )
    parts: list[str] = field(
        default_factory=lambda: list(PARTS), metadata={"help": "Parts to run.", "choices": list(PARTS)}
    )
    matmul_sizes: list[int] = field(default_factory=lambda: [1024, 2048], metadata={"help": "Square matrix sizes."})
    matmul_reps: int = field(default=5, metadata={"help": "Timed products per size; the fastest counts."})
    generation_batches: list[int] = field(
        default_factory=lambda: [1, 16, 64], metadata={"help": "Batch sizes of the generation part."}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "Generation budget per row of the generation part."})
    generation_model: str | None = field(
        default=None,
        metadata={"help": "Model of the generation part (default: --model); a fine-tuned one stops where it answers."},
    )
    generation_rounds: int = field(
        default=2,
        metadata={
            "help": "Rows decoded per batch size, in batches of that size: rounds x batch. transformers decodes them a "
            "batch after another; hintgrpo keeps that many rows in flight, a finished row's place going to the next."
        },
    )
    generation_paths: list[str] = field(
        default_factory=lambda: list(GENERATION_PATHS),
        metadata={"help": "Decoders timed on the same prompts: transformers (before), hintgrpo (after)."},
    )
    dtype: str = dtype_field("The generation part's model. ")
    sft_config: str = field(
        default="recipes/configs/demo/sft.yaml", metadata={"help": "recipes/sft.py config whose options SFT runs with."}
    )
    sft_steps: int = field(default=5, metadata={"help": "Timed SFT optimizer steps (after one warm-up step)."})
    grpo_config: str = field(
        default="recipes/configs/demo/hint_grpo.yaml",
        metadata={"help": "recipes/hint_grpo.py config whose options GRPO runs with (its model is --model)."},
    )
    grpo_steps: int = field(default=2, metadata={"help": "Timed GRPO optimizer steps (after one warm-up step)."})

    def __post_init__(self):
        for name, known in (("parts", PARTS), ("generation_paths", GENERATION_PATHS)):
            unknown = [value for value in getattr(self, name) if value not in known]
            if unknown:
                raise ValueError(f"--{name}: unknown {unknown}; choose from {list(known)}")
        for name in ("threads", "matmul_reps", "max_new_tokens", "generation_rounds", "sft_steps", "grpo_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        for name in ("matmul_sizes", "generation_batches"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise ValueError(f"--{name} must be positive integers, got {getattr(self, name)}")


def command_line(args: ThroughputArguments) -> str:
    """The command that reproduces this run, every option spelled out."""
    options = []
    for option in fields(args):
        value = getattr(args, option.name)
        options += [f"--{option.name}", *map(str, value if isinstance(value, list) else [value])]
    return shlex.join(["python", "benchmarks/throughput.py", *options])


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """All parameters (tied weights once: the lm_head matmul uses them once), and those without the lm_head."""
    total = sum(p.numel() for p in model.parameters())
    return total, total - model.get_output_embeddings().weight.numel()


def gflops(flops: float, seconds: float) -> float:
    return flops / seconds / 1e9


def add_fractions(results: dict) -> None:
    """Each `*gflops*` figure also as a `*matmul_fraction*` of the run's fp32 matmul GFLOP/s and a
    `*bf16_matmul_fraction*` of its bf16 one (None without the matmul part)."""
    matmul = results.get("matmul", {})
    references = {"matmul_fraction": matmul.get("gflops"), "bf16_matmul_fraction": matmul.get("bf16", {}).get("gflops")}
    figures = [results.get("sft"), results.get("grpo"), *results.get("generation", {}).get("batches", [])]
    for figure in filter(None, figures):
        for key in [key for key in figure if "gflops" in key]:
            for name, reference in references.items():
                figure[key.replace("gflops", name)] = figure[key] / reference if reference else None


def timed_matmul(n: int, reps: int, dtype: torch.dtype = torch.float32) -> dict:
    """`torch.mm` of two n x n matrices in `dtype`, best of `reps` after a warm-up (thread pool and caches)."""
    a, b, c = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype), torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=c)
    seconds = []
    for _ in range(reps):
        started = time.perf_counter()
        torch.mm(a, b, out=c)
        seconds.append(time.perf_counter() - started)
    return {"size": n, "seconds": min(seconds), "gflops": gflops(2 * n**3, min(seconds))}


def measure_matmul(args: ThroughputArguments) -> dict:
    sizes = [timed_matmul(n, args.matmul_reps) for n in args.matmul_sizes]
    best = max(sizes, key=lambda s: s["gflops"])
    return {"threads": torch.get_num_threads(), "reps": args.matmul_reps, "size": best["size"]} | {
        "gflops": best["gflops"],
        "measured_gflops": [best["gflops"]],
        "sizes": sizes,
        # Without native bf16 a product takes seconds: timed twice, at the smallest size only.
        "bf16": timed_matmul(min(args.matmul_sizes), reps=2, dtype=torch.bfloat16),
    }


def tuned_prompt_style(args: ThroughputArguments) -> str | None:
    """The prompt style of the models `--sft_config` fine-tunes: evaluation and GRPO prompt them in it."""
    (script_args,) = TrlParser((SFTScriptArguments,)).parse_yaml_file(args.sft_config, allow_extra_keys=True)
    return script_args.prompt_style


def decode_rows(path: str, model, tokenizer, prompts: list[list[int]], batch: int, max_new_tokens: int) -> list:
    """Greedy continuations of `prompts`, `batch` rows at a time, by the decoder `path`."""
    if path == "hintgrpo":
        return greedy_decode(model, tokenizer, prompts, max_new_tokens, batch_size=batch)
    return [
        continuation
        for start in range(0, len(prompts), batch)
        for continuation in transformers_greedy_decode(model, tokenizer, prompts[start : start + batch], max_new_tokens)
    ]


def measure_generation(args: ThroughputArguments) -> dict:
    dev = load_task_dataset("emobank", args.data_dir, "dev")
    rows = max(args.generation_batches) * args.generation_rounds
    if rows > len(dev):
        raise ValueError(f"--generation_batches x --generation_rounds: {rows} rows asked, EmoBank dev has {len(dev)}")
    model_name = args.generation_model or args.model
    style = trained_prompt_style(model_name) or tuned_prompt_style(args)
    conversations = [build_messages(sample, prompt_style=style) for sample in dev.select(range(rows))]
    model, tokenizer = load_for_generation(model_name, args.dtype)
    prompts = chat_prompt_ids(tokenizer, conversations)
    parameters, body = count_parameters(model)
    batches = []
    for batch in args.generation_batches:
        rows = prompts[: batch * args.generation_rounds]
        for path in args.generation_paths:
            decode_rows(path, model, tokenizer, rows[:1], 1, 2)  # warm-up
            started = time.perf_counter()
            continuations = decode_rows(path, model, tokenizer, rows, batch, args.max_new_tokens)
            seconds = time.perf_counter() - started
            generated, prompt = sum(len(c) for c in continuations), sum(len(p) for p in rows)
            shared = shared_prefix_length(rows)
            # Prompt tokens run through the model: hintgrpo computes the shared prefix once (padding is not counted).
            computed_prompt = prompt - (len(rows) - 1) * shared if path == "hintgrpo" else prompt
            batches.append(
                {
                    "batch": batch,
                    "rows": len(rows),
                    "path": path,
                    "seconds": seconds,
                    "rows_per_second": len(rows) / seconds,
                    "generated_tokens": generated,
                    "tokens_per_second": generated / seconds,
                    "generated_tokens_per_row": generated / len(rows),
                    "prompt_tokens_per_row": prompt / len(rows),
                    "shared_prefix_tokens": shared,
                    "gflops": gflops(2 * parameters * generated, seconds),
                    "gflops_with_prompt": gflops(2 * parameters * generated + 2 * body * computed_prompt, seconds),
                }
            )
            print(f"generation batch {batch}, {path}: {batches[-1]['tokens_per_second']:.1f} tokens/s", flush=True)
    return {
        "model": model_name,
        "dtype": str(model.dtype).removeprefix("torch."),
        "parameters": parameters,
        "max_new_tokens": args.max_new_tokens,
        "batches": batches,
    }


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (end to end), with the time and counts of the trainer methods wrapped."""

    def __init__(self, logged: tuple[str, ...] = ()):
        self.steps: list[dict] = []
        self.logged = logged
        self._current: defaultdict[str, float] = defaultdict(float)
        self._last = 0.0

    def wrap(self, trainer, method: str, count=None) -> None:
        """Time `trainer.<method>` under its name; `count(result, *args)` returns counts to add to the step."""
        original = getattr(trainer, method)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            result = original(*args, **kwargs)
            self._current[method] += time.perf_counter() - started
            for key, value in (count(result, *args, **kwargs) if count else {}).items():
                self._current[key] += value
            return result

        setattr(trainer, method, timed)  # an instance attribute: TRL's `self.<method>(...)` calls find it first

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.steps.append({"step": state.global_step, "seconds": now - self._last, **self._current})
        self._current, self._last = defaultdict(float), now

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.steps and logs:
            self.steps[-1].update({key: logs[key] for key in self.logged if key in logs})


def parse_recipe_config(types: tuple, config: str, options: list[str]) -> tuple:
    """A recipe's arguments as its own parser reads `--config config` followed by `options`."""
    return TrlParser(types).parse_args_and_config(["--config", config, *options])


def sft_batch_counts(result, model, inputs, *args, **kwargs) -> dict:
    """Samples and non-pad tokens of a collated SFT batch (padding-free batches hold no padding)."""
    if "attention_mask" in inputs:
        return {"samples": inputs["input_ids"].shape[0], "tokens": int(inputs["attention_mask"].sum())}
    return {"samples": int((inputs["position_ids"] == 0).sum()), "tokens": inputs["input_ids"].numel()}


def measure_sft(args: ThroughputArguments, output: Path) -> dict:
    cot_file = output / "cot_emobank_train.jsonl"
    script_args, training_args, model_args = parse_recipe_config(
        (SFTScriptArguments, SFTConfig, ModelConfig),
        args.sft_config,
        ["--model_name_or_path", args.model, "--output_dir", str(output / "sft"), "--cot_file", str(cot_file)]
        + ["--max_steps", str(args.sft_steps + 1), *TRAINING_OVERRIDES],
    )
    if script_args.modality_route != "text":
        raise ValueError(f"{args.sft_config}: modality_route {script_args.modality_route!r}; this benchmark is text")
    task = script_args.task or "emobank"
    samples = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    synthesize(
        SynthesizeArguments(
            task=task,
            data_dir=args.data_dir,
            split="train",
            limit=samples * (args.sft_steps + 1),
            teacher_backend="lexicon",
            output_file=script_args.cot_file,
            teacher_concurrency=1,
        )
    )
    train_dataset, _ = sft_datasets(script_args, training_args)
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
    timer = StepTimer()
    trainer = WeightedSFTTrainer(
        model=model_path(model_args, training_args),
        quantization_config=get_quantization_config(model_args),
        args=training_args,
        train_dataset=train_dataset,
        peft_config=get_peft_config(model_args),
        callbacks=[timer],
    )
    timer.wrap(trainer, "training_step", count=sft_batch_counts)
    timer.wrap(trainer, "compute_loss")
    trainer.train()
    parameters, _ = count_parameters(trainer.model)  # SFT computes logits at every position
    timed = timer.steps[1:]
    seconds, tokens = sum(s["seconds"] for s in timed), sum(s["tokens"] for s in timed)
    return {
        "parameters": parameters,
        "steps": len(timed),
        "samples_per_step": samples,
        "activation_checkpointing": training_args.activation_checkpointing,
        "step_seconds": seconds / len(timed),
        "forward_seconds_per_step": mean(s["compute_loss"] for s in timed),
        "samples_per_second": sum(s["samples"] for s in timed) / seconds,
        "tokens_per_second": tokens / seconds,
        "tokens_per_sample": tokens / sum(s["samples"] for s in timed),
        "gflops": gflops(6 * parameters * tokens, seconds),
        "step_times": [s["seconds"] for s in timer.steps],
    }


def generation_counts(result, prompt_ids, *args, **kwargs) -> dict:
    completion_ids, _ = result
    return {
        "completions": len(completion_ids),
        "prompt_tokens": sum(len(ids) for ids in prompt_ids),
        "generated_tokens": sum(len(ids) for ids in completion_ids),
    }


def training_counts(result, *args, **kwargs) -> dict:
    """Tokens of the loss forward: the prompt and completion tokens the model attends to."""
    prompt, completion = int(result["prompt_mask"].sum()), int(result["completion_mask"].sum())
    return {"train_tokens": prompt + completion, "train_prompt_tokens": prompt}


def grpo_phases(step: dict) -> dict:
    """A step's seconds split so that the phases add up to the step."""
    seconds = defaultdict(float, step)
    generation, scoring, forward = (
        seconds["_generate_single_turn"],
        seconds["_calculate_rewards"],
        seconds["compute_loss"],
    )
    prepare, training = seconds["_prepare_inputs"], seconds["training_step"]
    return {
        "generation": generation,
        "scoring": scoring,
        "other_preparation": prepare - generation - scoring,
        "forward": forward,
        "backward": training - prepare - forward,
        "optimizer_and_rest": step["seconds"] - training,
    }


def measure_grpo(args: ThroughputArguments, output: Path) -> dict:
    script_args, training_args, model_args = parse_recipe_config(
        (GRPOScriptArguments, HintGRPOConfig, ModelConfig),
        args.grpo_config,
        ["--model_name_or_path", args.model, "--output_dir", str(output / "grpo"), "--data_dir", args.data_dir]
        + ["--max_steps", str(args.grpo_steps + 1), *TRAINING_OVERRIDES],
    )
    if script_args.modality_route != "text":
        raise ValueError(f"{args.grpo_config}: modality_route {script_args.modality_route!r}; this benchmark is text")
    # As the demo runs GRPO: on its SFT model, prompted as that was trained.
    script_args.prompt_style = script_args.prompt_style or tuned_prompt_style(args)
    reward_funcs = get_reward_funcs(script_args.reward_funcs, script_args.regression_tau)
    training_args.reward_weights = script_args.resolve_reward_weights(training_args.reward_weights)
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
    timer = StepTimer(logged=("hint/hard_group_frac", "completions/mean_length", "completions/clipped_ratio"))
    trainer = HintGRPOTrainer(
        model=model_path(model_args, training_args),
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=prompt_dataset(script_args),
        peft_config=get_peft_config(model_args),
        callbacks=[timer],
    )
    timer.wrap(trainer, "training_step")
    timer.wrap(trainer, "_prepare_inputs", count=training_counts)
    timer.wrap(trainer, "_generate_single_turn", count=generation_counts)
    timer.wrap(trainer, "_calculate_rewards")
    timer.wrap(trainer, "compute_loss")
    trainer.train()
    parameters, body = count_parameters(trainer.model)
    timed = timer.steps[1:]
    phases = {phase: mean(grpo_phases(s)[phase] for s in timed) for phase in GRPO_PHASES}
    step_seconds = mean(s["seconds"] for s in timed)
    generated, train_tokens = mean(s["generated_tokens"] for s in timed), mean(s["train_tokens"] for s in timed)
    prompt, train_prompt = mean(s["prompt_tokens"] for s in timed), mean(s["train_prompt_tokens"] for s in timed)
    generation_flops = 2 * parameters * generated
    training_flops = 6 * parameters * (train_tokens - train_prompt) + 6 * body * train_prompt
    return {
        "parameters": parameters,
        "steps": len(timed),
        "activation_checkpointing": training_args.activation_checkpointing,
        "hint_mode": training_args.hint_mode,
        "batch": training_args.per_device_train_batch_size,
        "num_generations": training_args.num_generations,
        "max_completion_length": training_args.max_completion_length,
        "step_seconds": step_seconds,
        "phase_seconds": phases,
        "phase_fractions": {phase: seconds / step_seconds for phase, seconds in phases.items()},
        "completions_per_step": mean(s["completions"] for s in timed),
        "generated_tokens_per_step": generated,
        "prompt_tokens_per_step": prompt,
        "train_tokens_per_step": train_tokens,
        "generation_tokens_per_second": generated / phases["generation"],
        "training_tokens_per_second": train_tokens / (phases["forward"] + phases["backward"]),
        "generation_gflops": gflops(generation_flops, phases["generation"]),
        "generation_gflops_with_prompt": gflops(generation_flops + 2 * body * prompt, phases["generation"]),
        "training_gflops": gflops(training_flops, phases["forward"] + phases["backward"]),
        "step_gflops": gflops(generation_flops + training_flops, step_seconds),
        "hard_group_frac": mean(s.get("hint/hard_group_frac", 0.0) for s in timed),
        "steps_detail": timer.steps,
    }


def fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(results: dict) -> str:
    setup = results["setup"]
    lines = [
        f"Throughput of {setup['model']} on this machine: torch {setup['torch']}, {setup['threads']} threads, "
        f"{setup['cpus']} CPUs, load average {setup['load_average']:.2f} at the start. Baseline: fp32 matmul "
        "measured in the same run; FLOP/s estimated as 2·N·tokens (generation) and 6·N·tokens (training).",
        "",
        f"    {setup['command']}",
        "",
        "| part | setting | s | rows/s | tokens/s | tokens per row | est. GFLOP/s | of matmul |",
        "|---|---|---|---|---|---|---|---|",
    ]
    matmul = results.get("matmul")
    if matmul:
        bf16 = matmul["bf16"]
        lines += [
            f"| matmul | fp32 mm n={matmul['size']}, best of {matmul['reps']}, {matmul['threads']} threads; GFLOP/s "
            f"{' then '.join(f'{g:.1f}' for g in matmul['measured_gflops'])} (start, end) | | | | "
            f"| {matmul['gflops']:.1f} | 1 |",
            f"| matmul | bf16 mm n={bf16['size']}, best of 2 | {bf16['seconds']:.2f} | | | | {bf16['gflops']:.1f} "
            f"| {bf16['gflops'] / matmul['gflops']:.3f} |",
        ]
    generation = results.get("generation", {})
    for b in generation.get("batches", []):
        lines.append(
            f"| generation | batch {b['batch']} ({b['rows']} rows), {b['path']}, greedy {generation['dtype']}, "
            f"≤{generation['max_new_tokens']} new tokens | {b['seconds']:.1f} | {b['rows_per_second']:.2f} "
            f"| {b['tokens_per_second']:.1f} | {b['prompt_tokens_per_row']:.0f} prompt "
            f"({b['shared_prefix_tokens']} shared) + {b['generated_tokens_per_row']:.1f} generated "
            f"| {b['gflops']:.3g} | {fraction(b['matmul_fraction'])} "
            f"({fraction(b['matmul_fraction_with_prompt'])} with prompt; of bf16: "
            f"{fraction(b['bf16_matmul_fraction_with_prompt'])}) |"
        )
    sft = results.get("sft")
    if sft:
        lines.append(
            f"| sft | {sft['samples_per_step']} samples/step, steps: {sft['steps']}, checkpointing "
            f"{'on' if sft['activation_checkpointing'] else 'off'} | {sft['step_seconds']:.1f}/step "
            f"| {sft['samples_per_second']:.3f} | {sft['tokens_per_second']:.1f} | {sft['tokens_per_sample']:.0f} "
            f"| {sft['gflops']:.3g} | {fraction(sft['matmul_fraction'])} |"
        )
    grpo = results.get("grpo")
    if grpo:
        checkpointing = "on" if grpo["activation_checkpointing"] else "off"
        setting = (
            f"{grpo['batch']} completions ({grpo['num_generations']}/prompt), hint {grpo['hint_mode']}, "
            f"≤{grpo['max_completion_length']} tokens, checkpointing {checkpointing}"
        )
        phases = grpo["phase_seconds"]
        lines += [
            f"| grpo generation | {setting}; {grpo['completions_per_step']:.0f} generated/step "
            f"| {phases['generation']:.1f}/step | {grpo['completions_per_step'] / phases['generation']:.2f} "
            f"| {grpo['generation_tokens_per_second']:.1f} "
            f"| {grpo['generated_tokens_per_step'] / grpo['completions_per_step']:.1f} generated "
            f"| {grpo['generation_gflops']:.3g} | {fraction(grpo['generation_matmul_fraction'])} "
            f"({fraction(grpo['generation_matmul_fraction_with_prompt'])} with prompt) |",
            f"| grpo forward+backward | {grpo['train_tokens_per_step']:.0f} tokens/step "
            f"| {phases['forward'] + phases['backward']:.1f}/step | | {grpo['training_tokens_per_second']:.1f} "
            f"| {grpo['train_tokens_per_step'] / grpo['batch']:.0f} prompt + completion "
            f"| {grpo['training_gflops']:.3g} | {fraction(grpo['training_matmul_fraction'])} |",
            f"| grpo step | steps: {grpo['steps']}, hard groups {grpo['hard_group_frac']:.2f} "
            f"| {grpo['step_seconds']:.1f}/step | | | | {grpo['step_gflops']:.3g} "
            f"| {fraction(grpo['step_matmul_fraction'])} |",
            "",
            "| GRPO phase | s/step | share of step |",
            "|---|---|---|",
        ]
        lines += [f"| {phase} | {phases[phase]:.2f} | {grpo['phase_fractions'][phase]:.3f} |" for phase in GRPO_PHASES]
        lines.append(f"| total | {grpo['step_seconds']:.2f} | 1 |")
    return "\n".join(lines) + "\n"


def write(results: dict, output: Path) -> None:
    add_fractions(results)
    (output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (output / "results.md").write_text(markdown(results))


def main(args: ThroughputArguments) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    output = Path(args.output_dir).resolve()
    output.mkdir(parents=True, exist_ok=True)
    results = {
        "setup": {
            "command": command_line(args),
            "model": args.model,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0],
        }
    }
    write(results, output)
    for part in PARTS:
        if part not in args.parts:
            continue
        print(f"== {part}", flush=True)
        started, load_average = time.perf_counter(), os.getloadavg()[0]
        if part == "matmul":
            results[part] = measure_matmul(args)
        elif part == "generation":
            results[part] = measure_generation(args)
        elif part == "sft":
            results[part] = measure_sft(args, output)
        else:
            results[part] = measure_grpo(args, output)
        results[part] |= {"wall_seconds": time.perf_counter() - started, "load_average": load_average}
        write(results, output)
    if "matmul" in results and len(args.parts) > 1:
        # Measured again at the end: on a shared CPU one moment's figure can sit well below what the run got.
        end = measure_matmul(args)
        matmul = results["matmul"]
        matmul["measured_gflops"].append(end["gflops"])
        if end["gflops"] > matmul["gflops"]:
            matmul |= {key: end[key] for key in ("size", "gflops", "sizes")}
        write(results, output)
    print(markdown(results))
    return results


if __name__ == "__main__":
    (arguments,) = TrlParser((ThroughputArguments,)).parse_args_and_config()
    main(arguments)
