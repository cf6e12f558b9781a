"""Cold-start SFT on teacher-synthesised DC reasoning, weighted by each record's `weight`.

    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/sft.py --config recipes/configs/demo/sft.yaml

Any option of the YAML can be overridden on the command line (e.g. `--max_steps 10 --use_peft`). A run
resumes from the last checkpoint in `--output_dir` (or from `--resume_from_checkpoint DIR`).
"""

from trl import ModelConfig, get_peft_config, get_quantization_config

from hintgrpo.cli import Parser, report_user_errors
from hintgrpo.configs import SFTScriptArguments
from hintgrpo.multimodal.loading import multimodal_trainer_inputs
from hintgrpo.trainers import WeightedSFTConfig, WeightedSFTTrainer
from hintgrpo.trainers.multimodal_sft import MultimodalSFTTrainer
from hintgrpo.training import (
    model_init_kwargs,
    model_path,
    resolve_prompt_style,
    set_up_logging,
    sft_datasets,
    train_and_save,
)


def main(script_args: SFTScriptArguments, training_args: WeightedSFTConfig, model_args: ModelConfig) -> None:
    set_up_logging(training_args)
    model = model_path(model_args, training_args)
    resolve_prompt_style(script_args, model)
    train_dataset, eval_dataset = sft_datasets(script_args, training_args)
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
    if script_args.modality_route == "text":
        trainer_class = WeightedSFTTrainer
        inputs = {"model": model, "quantization_config": get_quantization_config(model_args)}
    else:
        trainer_class = MultimodalSFTTrainer
        inputs = multimodal_trainer_inputs(script_args, model, training_args, train_dataset)
    trainer = trainer_class(
        **inputs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        peft_config=get_peft_config(model_args),
    )
    train_and_save(trainer, training_args, prompt_style=script_args.prompt_style)
    trainer.end()


def make_parser() -> Parser:
    return Parser((SFTScriptArguments, WeightedSFTConfig, ModelConfig))


if __name__ == "__main__":
    report_user_errors(lambda: main(*make_parser().parse_args_and_config()))
