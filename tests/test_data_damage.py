"""Damage in copies of the real files is reported with its row and field, never loaded or dropped silently."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest

from hintgrpo.data import DataError, load_generic, load_task_dataset

EMOBANK = "emobank/emobank.csv"
MELD_DEV = "meld/dev_sent_emo.csv"
MUSTARD = "mustard/sarcasm_data.json"


def real_copy(real_data_dir: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(real_data_dir / name, target)
    return target


def csv_lines(path: Path) -> list[bytes]:
    """The lines of a real CSV; in these files line n (the header is line 0) is row n."""
    return path.read_bytes().split(b"\r\n")[:-1]


def write_csv_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\r\n" for line in lines))


def replace_in_row(path: Path, row: int, old: bytes, new: bytes) -> bytes:
    lines = csv_lines(path)
    assert old in lines[row]
    lines[row] = lines[row].replace(old, new, 1)
    write_csv_lines(path, lines)
    return lines[row]


def message_of(load) -> str:
    with pytest.raises(DataError) as info:
        load(skip_bad_rows=False)
    return str(info.value)


def test_emobank_duplicate_id_with_another_label_names_both_rows(real_data_dir, tmp_path, caplog):
    path = real_copy(real_data_dir, tmp_path, EMOBANK)
    lines = csv_lines(path)
    first = lines[1].split(b",")
    assert first[1] == b"train" and first[2] == b"3.0"
    write_csv_lines(path, [*lines, b",".join([first[0], b"train", b"4.0", *first[3:]])])

    message = message_of(lambda **kw: load_task_dataset("emobank", tmp_path, "train", **kw))
    assert str(path) in message and "row 9063, field 'id'" in message and "row 1" in message
    assert "different label (0.0 there, 1.5 here)" in message
    with caplog.at_level(logging.WARNING):
        train = load_task_dataset("emobank", tmp_path, "train", skip_bad_rows=True)
    assert len(train) == 8062 == len(set(train["id"])) and train[0]["label"] == 0.0
    assert "skipped 1 bad rows" in caplog.text


def test_meld_duplicate_id_is_an_error_or_skipped_and_counted(real_data_dir, tmp_path, caplog):
    path = real_copy(real_data_dir, tmp_path, MELD_DEV)
    lines = csv_lines(path)
    write_csv_lines(path, [*lines, lines[2]])  # dialogue 0, utterance 1 again

    message = message_of(lambda **kw: load_task_dataset("meld_sentiment", tmp_path, "dev", **kw))
    assert "row 1110, field 'Utterance_ID'" in message and "'dev_dia0_utt1' is already the id of row 2" in message
    with caplog.at_level(logging.WARNING):
        dev = load_task_dataset("meld_sentiment", tmp_path, "dev", skip_bad_rows=True)
    assert len(dev) == 1109 == len(set(dev["id"])) and "skipped 1 bad rows" in caplog.text


def test_mustard_key_given_twice_is_an_error_or_skipped_and_counted(real_data_dir, tmp_path, caplog):
    path = real_copy(real_data_dir, tmp_path, MUSTARD)
    items = json.loads(path.read_text(encoding="utf-8"))
    again = json.dumps({**items["1_60"], "sarcasm": False})
    text = path.read_text(encoding="utf-8").rstrip()
    assert text.endswith("}")
    path.write_text(text[:-1] + f', "1_60": {again}}}', encoding="utf-8")

    message = message_of(lambda **kw: load_task_dataset("mustard", tmp_path, "all", **kw))
    assert "row 1_60 (item 691), field 'id'" in message and "row 1_60 (item 1)" in message
    assert "different label ('sarcastic' there, 'sincere' here)" in message
    with caplog.at_level(logging.WARNING):
        rows = load_task_dataset("mustard", tmp_path, "all", skip_bad_rows=True)
    assert len(rows) == 690 == len(set(rows["id"])) and rows[0]["label"] == "sarcastic"


@pytest.mark.parametrize(
    ("name", "task", "split", "row"),
    [(EMOBANK, "emobank", "train", 9062), (MELD_DEV, "meld_emotion", "dev", 1109)],
)
def test_a_last_line_cut_inside_a_quoted_field_is_an_error_naming_the_row(
    real_data_dir, tmp_path, name, task, split, row
):
    path = real_copy(real_data_dir, tmp_path, name)
    data = path.read_bytes()
    assert data.endswith(b'"\r\n')
    path.write_bytes(data[:-8])  # inside the last field, a quoted one
    for skip_bad_rows in (False, True):
        with pytest.raises(DataError, match=f"row {row}: not valid CSV") as info:
            load_task_dataset(task, tmp_path, split, skip_bad_rows=skip_bad_rows)
        assert str(path) in str(info.value)


def test_a_row_with_an_unquoted_comma_is_an_error_naming_the_row(real_data_dir, tmp_path):
    path = real_copy(real_data_dir, tmp_path, EMOBANK)
    lines = csv_lines(path)
    lines[5] = lines[5] + b",but then it rained"  # a field past the header: what an unquoted comma leaves
    write_csv_lines(path, lines)
    with pytest.raises(DataError, match="row 5: 1 more field"):
        load_task_dataset("emobank", tmp_path, "train")


def test_a_csv_that_starts_with_a_bom_loads(real_data_dir, tmp_path):
    path = real_copy(real_data_dir, tmp_path, EMOBANK)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(load_task_dataset("emobank", tmp_path, "dev")) == len(load_task_dataset("emobank", real_data_dir, "dev"))


@pytest.mark.parametrize("value", [b"Dev", b"tr\xffin"], ids=["typo", "bad-bytes"])
def test_emobank_unknown_split_value_is_an_error_in_every_split(real_data_dir, tmp_path, caplog, value):
    path = real_copy(real_data_dir, tmp_path, EMOBANK)
    replace_in_row(path, 5, b",train,", b"," + value + b",")
    for split in ("train", "dev"):
        message = message_of(lambda **kw: load_task_dataset("emobank", tmp_path, split, **kw))  # noqa: B023
        assert str(path) in message and "row 5, field 'split'" in message
    with caplog.at_level(logging.WARNING):
        train = load_task_dataset("emobank", tmp_path, "train", skip_bad_rows=True)
    assert len(train) == 8061 and "skipped 1 bad rows" in caplog.text


@pytest.mark.parametrize(
    ("name", "task", "split", "old", "new", "row", "field"),
    [
        (EMOBANK, "emobank", "train", b"110CYL068_1036_1079", b"110CYL068_\xff1036", 1, "id"),
        (MELD_DEV, "meld_sentiment", "dev", b",Monica,", b",M\xe9nica,", 2, "Speaker"),
        (MELD_DEV, "meld_sentiment", "dev", b",0,1,4,7,", b",0,1,\xff,7,", 2, "Season"),
    ],
)
def test_invalid_utf8_in_any_csv_field_is_an_error_naming_the_field(
    real_data_dir, tmp_path, caplog, name, task, split, old, new, row, field
):
    path = real_copy(real_data_dir, tmp_path, name)
    replace_in_row(path, row, old, new)
    message = message_of(lambda **kw: load_task_dataset(task, tmp_path, split, **kw))
    assert f"row {row}, field {field!r}: contains U+FFFD: the file was not valid UTF-8" in message
    with caplog.at_level(logging.WARNING):
        rows = load_task_dataset(task, tmp_path, split, skip_bad_rows=True)
    assert "skipped 1 bad rows" in caplog.text and not any("\ufffd" in sample_id for sample_id in rows["id"])


def test_invalid_utf8_in_a_mustard_speaker_is_an_error_naming_the_field(real_data_dir, tmp_path):
    path = real_copy(real_data_dir, tmp_path, MUSTARD)
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"speaker": "SHELDON"', b'"speaker": "SH\xe9LDON"', 1))
    message = message_of(lambda **kw: load_task_dataset("mustard", tmp_path, "all", **kw))
    assert "row 1_60, field 'speaker': contains U+FFFD" in message


def test_meld_turns_whose_context_lost_a_skipped_row_are_reported(real_data_dir, tmp_path, caplog):
    path = real_copy(real_data_dir, tmp_path, MELD_DEV)
    replace_in_row(path, 1, b'"Oh my God, he\xe2\x80\x99s lost it. He\xe2\x80\x99s totally lost it."', b"")
    with caplog.at_level(logging.WARNING):
        dev = load_task_dataset("meld_sentiment", tmp_path, "dev", skip_bad_rows=True)
    assert dev[0]["id"] == "dev_dia0_utt1" and dev[0]["context"] == ""
    assert "the context of 1 turns lacks skipped rows of their dialogue" in caplog.text
    assert "dialogue 0 utterance 1 (row 2) lacks rows [1]" in caplog.text


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_generic_duplicate_id_is_an_error_or_skipped_and_counted(real_data_dir, tmp_path, caplog, suffix):
    real = load_task_dataset("emobank", real_data_dir, "dev").select(range(3)).to_list()
    rows = [*real, {**real[0], "label": -real[0]["label"]}]
    path = tmp_path / f"mine{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({key: row[key] for key in ("id", "text", "label")}) + "\n" for row in rows))
    else:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, ("id", "text", "label"), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    message = message_of(lambda **kw: load_generic(path, "emobank", **kw))
    assert "row 4, field 'id'" in message and "is already the id of row 1, with a different label" in message
    with caplog.at_level(logging.WARNING):
        assert list(load_generic(path, "emobank", skip_bad_rows=True)["id"]) == [row["id"] for row in real]
    assert "skipped 1 bad rows" in caplog.text
