"""A user's mistake, in any command or recipe, ends in one `error:` line and exit code 1; bugs keep their traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from hintgrpo.cli import main, report_user_errors

ROOT = Path(__file__).parents[1]

# (arguments of `hintgrpo`, a part of the message); {tmp} and {data} become a temporary folder and the real data.
COMMAND_ERRORS = {
    "unknown task": (["evaluate", "--task", "nosuchtask", "--output_dir", "{tmp}"], "unknown task 'nosuchtask'"),
    "missing model": (
        ["evaluate", "--model", "{tmp}/no-model", "--data_dir", "{data}", "--output_dir", "{tmp}"],
        "{tmp}/no-model' not found",
    ),
    "missing data file": (["baselines", "--data_dir", "{tmp}", "--output_dir", "{tmp}"], "emobank.csv not found"),
    "invalid choice": (["evaluate", "--prompt_style", "fancy"], "invalid choice: 'fancy'"),
    "unknown option": (["evaluate", "--no_such_option", "1"], "['--no_such_option', '1']"),
    "missing argument": (["models", "tiny"], "the following arguments are required: output_dir"),
    "unknown command": (["train"], "unknown command 'train'"),
    "limit below 1": (
        ["baselines", "--data_dir", "{data}", "--output_dir", "{tmp}", "--limit", "0"],
        "--limit must be at least 1, got 0",
    ),
}

# (command line after the interpreter, a part of the message): the real process, its stderr and its exit code.
SCRIPT_ERRORS = {
    "hintgrpo unknown task": (["-m", "hintgrpo.cli", "evaluate", "--task", "nosuchtask"], "unknown task 'nosuchtask'"),
    "sft missing model": (
        ["recipes/sft.py", "--use_cpu", "--model_name_or_path", "{tmp}/no-model"],
        "{tmp}/no-model' not found",
    ),
    "sft missing data file": (
        ["recipes/sft.py", "--use_cpu", "--model_name_or_path", "{tmp}", "--cot_file", "{tmp}/cot.jsonl"],
        "{tmp}/cot.jsonl not found",
    ),
    "grpo unknown task": (
        ["recipes/hint_grpo.py", "--use_cpu", "--model_name_or_path", "{tmp}", "--task", "nosuchtask"],
        "unknown task 'nosuchtask'",
    ),
    "grpo invalid choice": (["recipes/hint_grpo.py", "--prompt_style", "fancy"], "invalid choice: 'fancy'"),
}


def filled(strings: list[str], **values) -> list[str]:
    return [string.format(**values) for string in strings]


@pytest.mark.parametrize("case", COMMAND_ERRORS)
def test_command_error_is_one_line(case, tmp_path, real_data_dir):
    argv, message = COMMAND_ERRORS[case]
    values = {"tmp": tmp_path, "data": real_data_dir}
    with pytest.raises(SystemExit) as exit_info:
        main(filled(argv, **values))
    error = exit_info.value.code  # a message makes the process exit with code 1
    assert isinstance(error, str) and error.startswith("error: ") and "\n" not in error
    assert message.format(**values) in error


@pytest.mark.parametrize("case", SCRIPT_ERRORS)
def test_script_error_is_one_line_without_traceback(case, tmp_path):
    command, message = SCRIPT_ERRORS[case]
    command = [*filled(command, tmp=tmp_path), "--output_dir", str(tmp_path / "out")]
    result = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message.format(tmp=tmp_path) in errors[0], result.stderr[-3000:]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("task: emobank\nlimit: [1\n", "while parsing a flow sequence"),  # malformed
        ("limit: 2.7\n", "config key 'limit': 2.7 is not an integer"),
        ("batch_size: 6.5\n", "config key 'batch_size': 6.5 is not an integer"),
        ("task: 5\n", "config key 'task': 5 is not a string"),
        ("prompt_style: fancy\n", "config key 'prompt_style': 'fancy' is not one of"),
        ("task: emobank\nlimit: 3\ntask: meld_sentiment\n", "eval.yaml, config line 3: 'task' is given twice"),
    ],
    ids=["malformed", "float-for-int", "float-batch", "number-for-text", "bad-choice", "duplicate-key"],
)
def test_a_bad_yaml_config_is_one_line(tmp_path, yaml_text, message):
    config = tmp_path / "eval.yaml"
    config.write_text(yaml_text)
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--config", str(config)])
    error = exit_info.value.code
    assert isinstance(error, str) and error.startswith("error: ") and "\n" not in error
    assert message in error


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("HINTGRPO_DEBUG", "1")
    with pytest.raises(ValueError, match="unknown task 'nosuchtask'"):
        main(["evaluate", "--task", "nosuchtask", "--output_dir", str(tmp_path)])


def test_a_bug_is_not_reported_as_a_user_error():
    with pytest.raises(KeyError):
        report_user_errors(lambda: {}["missing"])
