"""Hint-GRPO on a sentiment task: GRPO whose hard groups are re-sampled with the gold discrimination hint.

    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/hint_grpo.py \
        --config recipes/configs/demo/hint_grpo.yaml

`--hint_mode none` is plain TRL GRPO on the same code path. Any option of the YAML can be overridden on the
command line. A run resumes from the last checkpoint in `--output_dir` (or `--resume_from_checkpoint DIR`).
"""

from dataclasses import replace

from trl import ModelConfig, get_peft_config

from hintgrpo.cli import Parser, report_user_errors
from hintgrpo.configs import GRPOScriptArguments
from hintgrpo.multimodal.loading import multimodal_trainer_inputs
from hintgrpo.rewards import fit_reward_scales, get_reward_funcs
from hintgrpo.trainers import HintGRPOConfig, HintGRPOTrainer
from hintgrpo.trainers.multimodal_grpo import MultimodalHintGRPOTrainer
from hintgrpo.training import (
    model_init_kwargs,
    model_path,
    prompt_dataset,
    resolve_prompt_style,
    rows_with_ids,
    set_up_logging,
    train_and_save,
)


def main(script_args: GRPOScriptArguments, training_args: HintGRPOConfig, model_args: ModelConfig) -> None:
    set_up_logging(training_args)
    reward_funcs = get_reward_funcs(
        script_args.reward_funcs, script_args.regression_tau, script_args.regression_tau_std
    )
    training_args.reward_weights = script_args.resolve_reward_weights(training_args.reward_weights)
    model = model_path(model_args, training_args)
    resolve_prompt_style(script_args, model)
    train_dataset = prompt_dataset(script_args)
    fit_reward_scales(reward_funcs, train_dataset)
    eval_dataset = None
    if training_args.eval_strategy != "no":
        eval_dataset = prompt_dataset(replace(script_args, split=script_args.eval_split))
        if script_args.eval_ids_file is not None:
            eval_dataset = rows_with_ids(eval_dataset, script_args.eval_ids_file)
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
    if script_args.modality_route == "text":
        trainer_class, inputs = HintGRPOTrainer, {"model": model}
    else:
        trainer_class = MultimodalHintGRPOTrainer
        inputs = multimodal_trainer_inputs(script_args, model, training_args, train_dataset)
    trainer = trainer_class(
        **inputs,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        peft_config=get_peft_config(model_args),
    )
    train_and_save(trainer, training_args, prompt_style=script_args.prompt_style)
    trainer.end()


def make_parser() -> Parser:
    return Parser((GRPOScriptArguments, HintGRPOConfig, ModelConfig))


if __name__ == "__main__":
    report_user_errors(lambda: main(*make_parser().parse_args_and_config()))
