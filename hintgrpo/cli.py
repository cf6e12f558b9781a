"""`hintgrpo` command: data and evaluation steps.

hintgrpo synthesize --task T --data_dir D --split S --backend openai|transformers|lexicon --output_file F
    [--teacher_model M] [--base_url URL] [--limit N] [--max_tries 3] [--tolerance 0.25] [--concurrency 8]
hintgrpo evaluate --model M --task T --data_dir D --split S --output_dir O [--limit N]
    [--modality_route mse_adapter --features_file PKL | --modality_route native --media_file MANIFEST]
hintgrpo baselines --task T --data_dir D --split S --output_dir O [--limit N] [--baselines constant vader tfidf probe]
    [--train_split train]
hintgrpo augment (--input DIR|COT.jsonl | --task T --data_dir D [--features_file PKL]) --output_dir O
    [--augmenters paraphrase diffusion self_question] [--teacher_backend lexicon|openai|transformers]
hintgrpo score --input DIR|COT.jsonl --output_dir O [--min_weight 0.1]
hintgrpo rewrite --input DIR --output_dir O [--rewrite_threshold 0.5] [--teacher_backend ...]
hintgrpo models prepare smollm2-135m-instruct [--output_dir DIR] [--force]
hintgrpo models tiny OUT [--arch qwen2|llama]
hintgrpo --version

`hintgrpo COMMAND --help` lists a command's options. A mistake in the options or the data ends in one `error:`
line; HINTGRPO_DEBUG=1 shows its traceback instead.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import sys
from collections.abc import Callable
from importlib.metadata import version

import yaml
from trl import TrlParser


class UsageError(ValueError):
    """A bad command line."""


class Parser(TrlParser):
    """TRL's parser (dataclass options, a YAML file via --config) that reports a bad option in one line.

    argparse would print the whole usage first: hundreds of options for a training config.
    """

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")

    def parse_args_and_config(self, args=None, **kwargs):
        args = list(args) if args is not None else sys.argv[1:]
        if "--config" in args and args.index("--config") + 1 < len(args):
            check_unique_keys(args[args.index("--config") + 1])
        return super().parse_args_and_config(args, **kwargs)

    def set_defaults_with_config(self, **config) -> list[str]:
        # A YAML key may be any of an option's names, as on the command line: `backend:` in a synthesize config
        # is teacher_backend (TRL matches keys to field names only).
        flags = [(flag, action.dest) for action in self._actions for flag in action.option_strings]
        names = {flag.removeprefix("--"): dest for flag, dest in flags if flag.startswith("--")}
        actions = {action.dest: action for action in self._actions}
        for key, value in config.items():
            if names.get(key, key) in actions:
                check_config_value(key, value, actions[names.get(key, key)])
        return super().set_defaults_with_config(**{names.get(key, key): value for key, value in config.items()})


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise UsageError(f"config line {key_node.start_mark.line + 1}: {key!r} is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep)


def check_unique_keys(config_path: str) -> None:
    with open(config_path, encoding="utf-8") as handle:
        try:
            yaml.load(handle, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
        except UsageError as error:
            raise UsageError(f"{config_path}, {error}") from None


def check_config_value(key: str, value, action) -> None:
    """A YAML value of the option's type: argparse converts command-line strings, but config values pass as they are."""
    if value is None:
        return
    # TRL wraps the converter of an optional option, keeping the inner type's name.
    kind = {"int": int, "float": float, "str": str}.get(getattr(action.type, "__name__", ""))
    values = value if action.nargs in ("+", "*") and isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, str) and kind in (int, float):  # argparse converts a string (YAML reads 1e-5 so)
            try:
                item = action.type(item)
            except ValueError:
                raise UsageError(f"config key {key!r}: {item!r} is not a number") from None
        if kind is int and item is not None and (isinstance(item, bool) or not isinstance(item, int)):
            raise UsageError(f"config key {key!r}: {item!r} is not an integer")
        if kind is float and item is not None and (isinstance(item, bool) or not isinstance(item, int | float)):
            raise UsageError(f"config key {key!r}: {item!r} is not a number")
        if kind is str and isinstance(item, int | float | bool):
            raise UsageError(f"config key {key!r}: {item!r} is not a string")  # (lists pass: report_to takes one)
        if action.choices and isinstance(item, str) and item not in action.choices:
            raise UsageError(f"config key {key!r}: {item!r} is not one of {list(action.choices)}")


def user_errors() -> tuple[type[Exception], ...]:
    """What a user's options, data or set-up can raise; anything else is our bug and keeps its traceback."""
    from hintgrpo.teachers import TeacherSetupError  # imported once something failed: it pulls in torch

    return ValueError, OSError, pickle.UnpicklingError, yaml.YAMLError, TeacherSetupError


def report_user_errors(run: Callable[[], object]) -> None:
    """Run an entry point; a user error ends it with one `error:` line and exit code 1 (HINTGRPO_DEBUG=1: raised)."""
    try:
        run()
    except Exception as error:
        if os.environ.get("HINTGRPO_DEBUG") == "1" or not isinstance(error, user_errors()):
            raise
        sys.exit(f"error: {' '.join(str(error).split())}")


def run_evaluate(argv: list[str]) -> None:
    from hintgrpo.configs import EvaluateArguments
    from hintgrpo.evaluate import evaluate

    (args,) = Parser((EvaluateArguments,), prog="hintgrpo evaluate").parse_args_and_config(argv)
    metrics = evaluate(args)
    print(json.dumps(metrics, indent=2))
    print(f"report written to {args.output_dir}/")


def run_baselines(argv: list[str]) -> None:
    from hintgrpo.baselines import evaluate_baselines
    from hintgrpo.configs import BaselinesArguments

    (args,) = Parser((BaselinesArguments,), prog="hintgrpo baselines").parse_args_and_config(argv)
    metrics = evaluate_baselines(args)
    print(json.dumps(metrics, indent=2))
    print(f"report written to {args.output_dir}/")


def run_synthesize(argv: list[str]) -> None:
    from hintgrpo.configs import SynthesizeArguments
    from hintgrpo.teachers.synthesize import synthesize

    (args,) = Parser((SynthesizeArguments,), prog="hintgrpo synthesize").parse_args_and_config(argv)
    counts = synthesize(args)
    print(json.dumps(counts, indent=2))
    if counts["failed"]:
        accepted = "no sample was accepted" if not counts["accepted"] else f"{counts['accepted']} samples were accepted"
        sys.exit(
            f"error: {accepted}, and {counts['failed']} failed: their requests kept failing through every retry "
            f"(errors by kind: {counts['errors']}; the warnings above give each one). The records written are in "
            f"{args.output_file}; rerun to retry the failed ones."
        )
    print(f"records in {args.output_file}")


def run_preprocessing_step(step: str, argv: list[str]) -> None:
    from hintgrpo.preprocess import pipeline

    arguments = {
        "augment": (pipeline.AugmentCommandArguments, pipeline.run_augment),
        "score": (pipeline.ScoreCommandArguments, pipeline.run_score),
        "rewrite": (pipeline.RewriteCommandArguments, pipeline.run_rewrite),
    }
    dataclass, run = arguments[step]
    (args,) = Parser((dataclass,), prog=f"hintgrpo {step}").parse_args_and_config(argv)
    counts = run(args)
    print(json.dumps(counts, indent=2))
    print(f"rows saved to {args.output_dir}/")


def run_models(argv: list[str]) -> None:
    from hintgrpo.models.loading import SHIPPED_MODELS, prepare_shipped_model
    from hintgrpo.models.tiny import CONFIGS, build_tiny_model

    parser = Parser(prog="hintgrpo models")
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="Turn a shipped GGUF checkpoint into a cached transformers folder.")
    prepare.add_argument("name", choices=sorted(SHIPPED_MODELS))
    prepare.add_argument("--output_dir", default=None, help="Default: $HINTGRPO_CACHE/models/NAME.")
    prepare.add_argument("--force", action="store_true", help="Rebuild even if the folder exists.")
    tiny = commands.add_parser("tiny", help="Write a tiny random chat model for smoke runs and tests.")
    tiny.add_argument("output_dir")
    tiny.add_argument("--arch", choices=sorted(CONFIGS), default="qwen2")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        print(prepare_shipped_model(args.name, args.output_dir, force=args.force))
    else:
        print(build_tiny_model(args.output_dir, arch=args.arch))


COMMANDS = {"synthesize": run_synthesize, "evaluate": run_evaluate, "baselines": run_baselines, "models": run_models}
COMMANDS |= {step: functools.partial(run_preprocessing_step, step) for step in ("augment", "score", "rewrite")}


def run_command(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
    elif argv[0] == "--version":
        print(f"hintgrpo {version('hintgrpo')}")
    elif argv[0] not in COMMANDS:
        raise UsageError(f"unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)} (see hintgrpo --help)")
    else:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        COMMANDS[argv[0]](argv[1:])


def main(argv: list[str] | None = None) -> None:
    report_user_errors(lambda: run_command(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
