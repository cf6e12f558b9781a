"""Data loaders: the real datasets in ../shared/data, and generated MMSA / SST / JSONL / CSV files with bad rows."""

from __future__ import annotations

import collections
import csv
import functools
import json
import logging
import os
import pickle
import re
import shlex
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hintgrpo.data import (
    MMSA_FEATURE_DIMS,
    DataError,
    attach_features,
    load_generic,
    load_mmsa_features,
    load_task_dataset,
    parse_sst_tree,
    register_generic_dataset,
)
from hintgrpo.data.loaders import LOADERS
from hintgrpo.data.sst import PTB_UNESCAPES
from hintgrpo.tasks import TASKS, TaskSpec

# ---------------------------------------------------------------------------------------------------------------------
# helpers


def assert_located(error: Exception, file: Path, row, field: str | None) -> None:
    """The error message names the file, the row and (when there is one) the field."""
    message = str(error)
    assert str(file) in message, message
    assert f"row {row}" in message, message
    if field is not None:
        assert f"field {field!r}" in message, message


def check_bad_row(load, file: Path, row, field: str | None, good: int, caplog) -> list:
    """`load` raises a DataError locating the bad row; with skip_bad_rows it returns the `good` rows and says so."""
    with pytest.raises(DataError) as info:
        load(skip_bad_rows=False)
    assert_located(info.value, file, row, field)
    with caplog.at_level(logging.WARNING):
        rows = load(skip_bad_rows=True)
    assert len(rows) == good
    assert "skipped 1 bad rows" in caplog.text
    return rows


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines))
    return path


# ---------------------------------------------------------------------------------------------------------------------
# real data: EmoBank


def test_emobank_split_sizes(real_data_dir):
    assert len(load_task_dataset("emobank", real_data_dir, "train")) == 8062
    assert len(load_task_dataset("emobank", real_data_dir, "dev")) == 1000


def test_emobank_valence_maps_to_mosi_scale_on_a_real_row(real_data_dir):
    with open(real_data_dir / "emobank" / "emobank.csv", newline="", encoding="utf-8") as handle:
        record = next(r for r in csv.DictReader(handle) if r["split"] == "dev" and float(r["V"]) >= 3.6)
    dev = load_task_dataset("emobank", real_data_dir, "dev")
    sample = dev[list(dev["id"]).index(record["id"])]
    assert sample["label"] == pytest.approx(1.5 * (float(record["V"]) - 3.0))
    assert sample["polarity"] == "positive"
    assert sample["text"] == record["text"].strip()
    assert all(-3.0 <= label <= 3.0 for label in dev["label"])


# ---------------------------------------------------------------------------------------------------------------------
# real data: MELD


@pytest.mark.parametrize("task", ["meld_sentiment", "meld_emotion"])
@pytest.mark.parametrize(("split", "count"), [("train", 9989), ("dev", 1109), ("test", 2610)])
def test_meld_split_sizes(real_data_dir, task, split, count):
    assert len(load_task_dataset(task, real_data_dir, split)) == count


def test_meld_test_sentiment_counts(real_data_dir):
    test = load_task_dataset("meld_sentiment", real_data_dir, "test")
    assert Counter(test["label"]) == {"neutral": 1256, "negative": 833, "positive": 521}
    assert list(test["label"]) == list(test["polarity"])


def test_meld_emotion_polarity_comes_from_the_sentiment_column(real_data_dir):
    test = load_task_dataset("meld_emotion", real_data_dir, "test")
    surprise = Counter(p for label, p in zip(test["label"], test["polarity"], strict=True) if label == "surprise")
    assert surprise["positive"] > 0 and surprise["negative"] > 0
    assert Counter(test["polarity"]) == {"neutral": 1256, "negative": 833, "positive": 521}


def test_meld_context_holds_the_earlier_turns_of_the_same_dialogue(real_data_dir):
    with open(real_data_dir / "meld" / "test_sent_emo.csv", newline="", encoding="utf-8") as handle:
        raw = [r for r in csv.DictReader(handle) if r["Dialogue_ID"] == "0"]
    turns = [f"{r['Speaker'].strip()}: {r['Utterance'].strip()}" for r in raw]
    test = load_task_dataset("meld_sentiment", real_data_dir, "test")
    rows = [row for row in test if row["id"].startswith("test_dia0_")]
    assert len(rows) == len(raw) >= 3
    for index, row in enumerate(rows):
        assert row["text"] == turns[index]
        assert row["context"] == "\n".join(turns[:index])
    next_dialogue = next(row for row in test if row["id"].startswith("test_dia1_"))
    assert next_dialogue["context"] == ""


# ---------------------------------------------------------------------------------------------------------------------
# real data: MUStARD


def test_mustard_all(real_data_dir):
    everything = load_task_dataset("mustard", real_data_dir, "all")
    assert len(everything) == 690
    assert Counter(everything["label"]) == {"sarcastic": 345, "sincere": 345}
    first = everything[list(everything["id"]).index("1_60")]
    assert first["text"].startswith("SHELDON: ")
    assert first["context"].startswith("LEONARD: I never would have identified")


@pytest.mark.parametrize("fold", range(1, 6))
def test_mustard_fold_sizes(real_data_dir, fold):
    train = set(load_task_dataset("mustard", real_data_dir, f"fold{fold}_train")["id"])
    test = set(load_task_dataset("mustard", real_data_dir, f"fold{fold}_test")["id"])
    assert len(test) == 138 and len(train) == 552
    assert not train & test
    assert train | test == set(load_task_dataset("mustard", real_data_dir, "all")["id"])


def test_mustard_fold_tests_partition_all_utterances(real_data_dir):
    tests = [list(load_task_dataset("mustard", real_data_dir, f"fold{k}_test")["id"]) for k in range(1, 6)]
    flat = [sample_id for part in tests for sample_id in part]
    assert len(flat) == len(set(flat)) == 690
    assert set(flat) == set(load_task_dataset("mustard", real_data_dir, "all")["id"])


# ---------------------------------------------------------------------------------------------------------------------
# missing data


@pytest.mark.parametrize(
    ("task", "split", "hint"),
    [
        ("emobank", "train", "github.com/JULIELab/EmoBank"),
        ("meld_sentiment", "dev", "github.com/declare-lab/MELD"),
        ("meld_emotion", "test", "github.com/declare-lab/MELD"),
        ("mustard", "all", "github.com/soujanyaporia/MUStARD"),
        ("sst5", "train", "trainDevTestTrees_PTB.zip"),
        ("mosi", "train", "MMSA release of CMU-MOSI"),
        ("mosei", "dev", "MMSA release of CMU-MOSEI"),
        ("sims", "test", "MMSA release of CH-SIMS"),
    ],
)
def test_missing_dataset_folder_says_what_to_download(tmp_path, task, split, hint):
    with pytest.raises(FileNotFoundError) as info:
        load_task_dataset(task, tmp_path, split)
    message = str(info.value)
    assert "Download" in message and hint in message and str(tmp_path) in message


def test_mustard_fold_without_folds_file(tmp_path):
    folder = tmp_path / "mustard"
    folder.mkdir()
    (folder / "sarcasm_data.json").write_text(json.dumps({"1": {"utterance": "Hi.", "sarcasm": False}}))
    assert len(load_task_dataset("mustard", tmp_path, "all")) == 1
    with pytest.raises(FileNotFoundError, match="folds.json"):
        load_task_dataset("mustard", tmp_path, "fold1_test")


def test_no_data_folder_given(monkeypatch):
    monkeypatch.delenv("HINTGRPO_DATA_DIR", raising=False)
    monkeypatch.delenv("DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="HINTGRPO_DATA_DIR"):
        load_task_dataset("emobank")


# ---------------------------------------------------------------------------------------------------------------------
# bad rows in the formats of the real datasets (EmoBank, MELD, MUStARD)

EMOBANK_HEADER = b"id,split,V,A,D,text"
EMOBANK_BAD_ROWS = [
    pytest.param(b"bad,train,4.0,3.0,3.0,", "text", id="missing-text"),
    pytest.param(b'bad,train,4.0,3.0,3.0,"   "', "text", id="blank-text"),
    pytest.param(b"bad,train,nan,3.0,3.0,Some text", "V", id="nan-label"),
    pytest.param(b"bad,train,,3.0,3.0,Some text", "V", id="empty-label"),
    pytest.param(b"bad,train,6.5,3.0,3.0,Some text", "V", id="out-of-range"),
    pytest.param(b"bad,train,4.0,3.0,3.0,caf\xe9 au lait", "text", id="bad-utf8"),
    pytest.param(b"bad,train,4.0", "text", id="short-row"),
]


@pytest.mark.parametrize(("bad", "field"), EMOBANK_BAD_ROWS)
def test_emobank_bad_row(tmp_path, caplog, bad, field):
    path = write_lines(
        tmp_path / "emobank" / "emobank.csv",
        [EMOBANK_HEADER, b"a,train,4.5,3.0,3.0,Good one.", bad, b"b,train,1.0,3.0,3.0,Bad day.", b"c,dev,3,3,3,Dev."],
    )
    rows = check_bad_row(functools.partial(load_task_dataset, "emobank", tmp_path, "train"), path, 2, field, 2, caplog)
    assert list(rows["id"]) == ["a", "b"]
    assert list(rows["label"]) == [pytest.approx(2.25), pytest.approx(-3.0)]


def test_emobank_wrong_columns(tmp_path):
    path = write_lines(tmp_path / "emobank" / "emobank.csv", [b"id,split,valence,text", b"a,train,4.0,Hello."])
    with pytest.raises(DataError) as info:
        load_task_dataset("emobank", tmp_path, "train", skip_bad_rows=True)
    assert str(path) in str(info.value) and "field 'V'" in str(info.value) and "valence" in str(info.value)


MELD_HEADER = b"Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"
MELD_BAD_ROWS = [
    pytest.param("meld_sentiment", b"2,,Ross,joy,positive,0,1,1,1,a,b", "Utterance", id="missing-text"),
    pytest.param("meld_sentiment", b"2,Hey.,Ross,joy,nan,0,1,1,1,a,b", "Sentiment", id="nan-label"),
    pytest.param("meld_sentiment", b"2,Hey.,Ross,joy,happy,0,1,1,1,a,b", "Sentiment", id="unknown-label"),
    pytest.param("meld_emotion", b"2,Hey.,Ross,bored,neutral,0,1,1,1,a,b", "Emotion", id="unknown-emotion"),
    pytest.param("meld_emotion", b"2,Caf\xe9!,Ross,joy,positive,0,1,1,1,a,b", "Utterance", id="bad-utf8"),
    pytest.param("meld_sentiment", b"2,Hey.,Ross", "Sentiment", id="short-row"),
]


@pytest.mark.parametrize(("task", "bad", "field"), MELD_BAD_ROWS)
def test_meld_bad_row(tmp_path, caplog, task, bad, field):
    path = write_lines(
        tmp_path / "meld" / "dev_sent_emo.csv",
        [MELD_HEADER, b"1,Hi!,Monica,joy,positive,0,0,1,1,a,b", bad, b"3,So?,Chandler,neutral,neutral,0,2,1,1,a,b"],
    )
    rows = check_bad_row(functools.partial(load_task_dataset, task, tmp_path, "dev"), path, 2, field, 2, caplog)
    assert rows[1]["context"] == "Monica: Hi!"  # the skipped turn is not part of the context


def test_meld_wrong_columns(tmp_path):
    path = write_lines(tmp_path / "meld" / "test_sent_emo.csv", [b"Utterance,Speaker,Label", b"Hi,Ross,joy"])
    with pytest.raises(DataError) as info:
        load_task_dataset("meld_emotion", tmp_path, "test")
    assert str(path) in str(info.value) and "field 'Emotion'" in str(info.value)


def write_mustard(folder: Path, items: dict, raw_replace: tuple[bytes, bytes] | None = None) -> Path:
    data = json.dumps(items, ensure_ascii=False).encode("utf-8")
    if raw_replace:
        data = data.replace(*raw_replace)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sarcasm_data.json").write_bytes(data)
    return folder / "sarcasm_data.json"


GOOD_MUSTARD = {
    "utterance": "Oh, great.",
    "speaker": "CHANDLER",
    "context": ["It broke."],
    "context_speakers": ["ROSS"],
}
MUSTARD_BAD_ITEMS = [
    pytest.param({"utterance": "", "sarcasm": True}, None, "utterance", id="missing-text"),
    pytest.param({"utterance": "Sure.", "sarcasm": None}, None, "sarcasm", id="null-label"),
    pytest.param({"utterance": "Sure.", "sarcasm": "yes"}, None, "sarcasm", id="string-label"),
    pytest.param({"utterance": "BADBYTES", "sarcasm": True}, (b"BADBYTES", b"caf\xe9"), "utterance", id="bad-utf8"),
    pytest.param(["not", "an", "object"], None, None, id="not-an-object"),
]


@pytest.mark.parametrize(("bad", "raw_replace", "field"), MUSTARD_BAD_ITEMS)
def test_mustard_bad_item(tmp_path, caplog, bad, raw_replace, field):
    items = {"1_a": {**GOOD_MUSTARD, "sarcasm": True}, "2_bad": bad, "3_c": {**GOOD_MUSTARD, "sarcasm": False}}
    path = write_mustard(tmp_path / "mustard", items, raw_replace)
    rows = check_bad_row(
        functools.partial(load_task_dataset, "mustard", tmp_path, "all"), path, "2_bad", field, 2, caplog
    )
    assert list(rows["label"]) == ["sarcastic", "sincere"]
    assert rows[0]["context"] == "ROSS: It broke." and rows[0]["text"] == "CHANDLER: Oh, great."


def test_mustard_invalid_json(tmp_path):
    folder = tmp_path / "mustard"
    folder.mkdir()
    (folder / "sarcasm_data.json").write_text('{"1": {"utterance": "Hi"')
    with pytest.raises(DataError, match="sarcasm_data.json"):
        load_task_dataset("mustard", tmp_path, "all")


# ---------------------------------------------------------------------------------------------------------------------
# MMSA label.csv (CMU-MOSI, CMU-MOSEI, CH-SIMS)

MMSA_HEADER = b"video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode"


def mmsa_label_rows() -> list[bytes]:
    return [
        MMSA_HEADER,
        b"03bSnISJMiM,1,anyhow it was really good,0.8,,,,Positive,train",
        b"03bSnISJMiM,10,i did not like it,-0.6,,,,Negative,train",
        b"0h-zjBukYpk,2,it was okay,0.0,,,,Neutral,valid",
        "video_0001,0001,\u6211\u5f88\u559c\u6b22\u8fd9\u90e8\u7535\u5f71,0.4,0.2,0.6,0.4,Positive,test".encode(),
        b"1DmNV9C1hbY,3,worst movie ever,-1.0,,,,Negative,test",
    ]


@pytest.mark.parametrize("dataset", ["mosi", "mosei", "sims"])
def test_mmsa_label_csv_splits_ids_and_labels(tmp_path, dataset):
    write_lines(tmp_path / dataset / "label.csv", mmsa_label_rows())
    train = load_task_dataset(dataset, tmp_path, "train")
    dev = load_task_dataset(dataset, tmp_path, "dev")
    test = load_task_dataset(dataset, tmp_path, "test")
    assert (len(train), len(dev), len(test)) == (2, 1, 2)
    assert list(train["id"]) == ["03bSnISJMiM$_$1", "03bSnISJMiM$_$10"]
    assert list(dev["id"]) == ["0h-zjBukYpk$_$2"]
    assert (
        test[0]["id"] == "video_0001$_$0001" and test[0]["text"] == "\u6211\u5f88\u559c\u6b22\u8fd9\u90e8\u7535\u5f71"
    )
    assert list(train["label"]) == [pytest.approx(0.8), pytest.approx(-0.6)]
    assert set(train["task"]) == {dataset}
    # 0.4 is neutral on the [-3, 3] scale (|s| <= 0.5) but positive on SIMS' [-1, 1] scale (|s| > 0.1)
    assert test[0]["polarity"] == ("positive" if dataset == "sims" else "neutral")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        load_task_dataset(dataset, tmp_path, "valid")


@pytest.mark.parametrize(("dataset", "label", "ok"), [("mosi", b"2.6", True), ("sims", b"2.6", False)])
def test_mmsa_label_range_follows_the_task(tmp_path, dataset, label, ok):
    write_lines(tmp_path / dataset / "label.csv", [MMSA_HEADER, b"v,1,great," + label + b",,,,Positive,train"])
    if ok:
        assert load_task_dataset(dataset, tmp_path, "train")["label"] == [pytest.approx(2.6)]
    else:
        with pytest.raises(DataError, match=r"outside \[-1, 1\]"):
            load_task_dataset(dataset, tmp_path, "train")


MMSA_BAD_ROWS = [
    pytest.param(b"v,2,,0.5,,,,Positive,train", "text", id="missing-text"),
    pytest.param(b"v,2,fine,nan,,,,Positive,train", "label", id="nan-label"),
    pytest.param(b"v,2,fine,,,,,Positive,train", "label", id="empty-label"),
    pytest.param(b"v,2,fine,3.5,,,,Positive,train", "label", id="out-of-range"),
    pytest.param(b"v,2,fine,0.5,,,,Positive,validation", "mode", id="unknown-mode"),
    pytest.param(b"v,2,caf\xe9,0.5,,,,Positive,train", "text", id="bad-utf8"),
    pytest.param(b",2,fine,0.5,,,,Positive,train", "video_id", id="missing-video-id"),
    pytest.param(b"v,2,fine", "mode", id="short-row"),
]


@pytest.mark.parametrize(("bad", "field"), MMSA_BAD_ROWS)
def test_mmsa_bad_row(tmp_path, caplog, bad, field):
    rows = [MMSA_HEADER, b"v,1,good,0.5,,,,Positive,train", bad, b"v,3,bad,-0.5,,,,Negative,train"]
    path = write_lines(tmp_path / "mosi" / "label.csv", rows)
    loaded = check_bad_row(functools.partial(load_task_dataset, "mosi", tmp_path, "train"), path, 2, field, 2, caplog)
    assert list(loaded["id"]) == ["v$_$1", "v$_$3"]


def test_mmsa_wrong_columns(tmp_path):
    path = write_lines(tmp_path / "mosei" / "label.csv", [b"video_id,clip_id,text,label", b"v,1,good,0.5"])
    with pytest.raises(DataError) as info:
        load_task_dataset("mosei", tmp_path, "train")
    assert str(path) in str(info.value) and "field 'mode'" in str(info.value)


# ---------------------------------------------------------------------------------------------------------------------
# MMSA feature pickles

LABEL_IDS = {"train": ["03bSnISJMiM$_$1", "03bSnISJMiM$_$10"], "valid": ["0h-zjBukYpk$_$2"]}


def mmsa_features(dataset: str, frames: int = 6, dims: dict | None = None, seed: int = 0) -> dict:
    """A small dict in the layout of MMSA's Processed/unaligned_*.pkl, with arrays of the dataset's feature sizes."""
    rng, dims = np.random.default_rng(seed), dims or MMSA_FEATURE_DIMS[dataset]
    data = {}
    for mode, ids in {**LABEL_IDS, "test": ["video_0001$_$0001", "1DmNV9C1hbY$_$3"]}.items():
        n = len(ids)
        data[mode] = {
            "id": np.array(ids),
            "raw_text": np.array([f"text {i}" for i in range(n)]),
            "text": rng.random((n, frames, dims["text"])).astype(np.float32),
            "audio": rng.random((n, frames, dims["audio"])).astype(np.float32),
            "vision": rng.random((n, frames, dims["vision"])).astype(np.float32),
            "audio_lengths": np.array([frames - i for i in range(n)]),
            "vision_lengths": np.array([frames] * n),
            "annotations": np.array(["Positive"] * n),
            "regression_labels": rng.uniform(-1, 1, n).astype(np.float32),
        }
    data["train"]["audio"][0, 0, 0] = -np.inf  # COVAREP features contain -inf; MMSA sets them to 0
    data["extra"] = {"modes": {"train", "valid"}, "frozen": frozenset({1}), "raw": b"\x00\xff", "z": 1 + 2j}
    return data


def write_pickle(path: Path, obj, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("dataset", ["mosi", "mosei", "sims"])
def test_load_mmsa_features_reads_numpy_pickles(tmp_path, dataset, protocol):
    data = mmsa_features(dataset)
    path = write_pickle(tmp_path / dataset / "Processed" / "unaligned_50.pkl", data, protocol)
    train = load_mmsa_features(path, "train")  # the dataset (and so the sizes) is read from the path
    assert list(train) == LABEL_IDS["train"]
    first, second = train["03bSnISJMiM$_$1"], train["03bSnISJMiM$_$10"]
    assert first["audio"].shape == (6, MMSA_FEATURE_DIMS[dataset]["audio"])
    assert second["audio"].shape == (5, MMSA_FEATURE_DIMS[dataset]["audio"])  # padding cut to audio_lengths
    assert first["vision"].shape == (6, MMSA_FEATURE_DIMS[dataset]["vision"])
    assert first["audio"][0, 0] == 0.0
    np.testing.assert_array_equal(second["vision"], data["train"]["vision"][1])
    dev = load_mmsa_features(path, "dev", modalities=("text", "audio", "vision"))
    assert list(dev) == LABEL_IDS["valid"]
    assert dev["0h-zjBukYpk$_$2"]["text"].shape == (6, 768)


def test_load_mmsa_features_accepts_numpy_1_module_names(tmp_path):
    """Pickles written by numpy 1.x name numpy.core.multiarray, as MMSA's released files do."""
    blob = pickle.dumps(mmsa_features("mosi"), protocol=2)
    old = blob.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert old != blob and b"numpy._core" not in old
    path = tmp_path / "feats.pkl"
    path.write_bytes(old)
    assert list(load_mmsa_features(path, "test", dataset="mosi")) == ["video_0001$_$0001", "1DmNV9C1hbY$_$3"]


def test_load_mmsa_features_needs_to_know_the_sizes(tmp_path):
    path = write_pickle(tmp_path / "feats.pkl", mmsa_features("mosei"))
    with pytest.raises(ValueError, match="dataset="):
        load_mmsa_features(path, "train")
    assert len(load_mmsa_features(path, "train", dataset="mosei")) == 2
    custom = write_pickle(tmp_path / "custom.pkl", mmsa_features("mosi", dims={"text": 768, "audio": 7, "vision": 3}))
    assert load_mmsa_features(custom, "train", dims={"audio": 7, "vision": 3})["03bSnISJMiM$_$1"]["vision"].shape == (
        6,
        3,
    )


@pytest.mark.parametrize("modality", ["audio", "vision"])
def test_load_mmsa_features_wrong_feature_size(tmp_path, modality):
    dims = {**MMSA_FEATURE_DIMS["mosi"], modality: MMSA_FEATURE_DIMS["mosi"][modality] + 1}
    path = write_pickle(tmp_path / "mosi" / "Processed" / "aligned_50.pkl", mmsa_features("mosi", dims=dims))
    with pytest.raises(DataError) as info:
        load_mmsa_features(path, "test")
    assert_located(info.value, path, "video_0001$_$0001", modality)
    assert f"expected [frames, {MMSA_FEATURE_DIMS['mosi'][modality]}]" in str(info.value)


def test_load_mmsa_features_bad_layout(tmp_path):
    data = mmsa_features("sims")
    del data["valid"]
    path = write_pickle(tmp_path / "sims" / "f.pkl", data)
    with pytest.raises(DataError, match="'valid'"):
        load_mmsa_features(path, "dev")
    del data["train"]["vision"]
    write_pickle(path, data)
    with pytest.raises(DataError, match="field 'vision'"):
        load_mmsa_features(path, "train")
    data = mmsa_features("sims")
    data["test"]["audio"] = data["test"]["audio"][:1]
    write_pickle(path, data)
    with pytest.raises(DataError, match="1 feature rows for 2 ids"):
        load_mmsa_features(path, "test")
    path.write_bytes(pickle.dumps(mmsa_features("sims"))[:100])
    with pytest.raises(DataError, match="truncated"):
        load_mmsa_features(path, "test")


def test_attach_features_matches_text_rows_by_id(tmp_path):
    write_lines(tmp_path / "mosi" / "label.csv", mmsa_label_rows())
    path = write_pickle(tmp_path / "mosi" / "Processed" / "unaligned_50.pkl", mmsa_features("mosi"))
    train = load_task_dataset("mosi", tmp_path, "train")
    with_features = attach_features(train, load_mmsa_features(path, "train"))
    assert {"audio", "vision"} <= set(with_features.column_names)
    assert np.asarray(with_features[1]["audio"]).shape == (5, 5)
    assert np.asarray(with_features[0]["vision"]).shape == (6, 20)
    assert list(with_features["label"]) == list(train["label"])
    dev = load_task_dataset("mosi", tmp_path, "dev")
    with pytest.raises(DataError) as info:
        attach_features(dev, load_mmsa_features(path, "train"), source=path)
    assert_located(info.value, path, 0, "audio")
    assert "0h-zjBukYpk$_$2" in str(info.value)


class RunsShellCommand:
    """Unpickling this calls os.system: the canonical pickle exploit."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class RunsEval:
    def __init__(self, source: str):
        self.source = source

    def __reduce__(self):
        return eval, (self.source,)


def malicious_payloads(marker: Path) -> dict:
    touch = f"touch {shlex.quote(str(marker))}"
    return {
        "top-level": RunsShellCommand(touch),
        "inside-features": {"train": {"id": np.array(["a"]), "audio": RunsShellCommand(touch)}},
        "inside-object-array": {"train": {"id": np.array([RunsShellCommand(touch)], dtype=object)}},
        "eval": RunsEval(f"__import__('os').system({touch!r})"),
    }


@pytest.mark.parametrize("payload", ["top-level", "inside-features", "inside-object-array", "eval"])
@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload, protocol):
    marker = tmp_path / "pwned"
    path = write_pickle(
        tmp_path / "mosi" / "Processed" / "unaligned_50.pkl", malicious_payloads(marker)[payload], protocol
    )
    with pytest.raises(pickle.UnpicklingError) as info:
        load_mmsa_features(path, "train")
    message = str(info.value)
    forbidden = ("builtins.eval", "__builtin__.eval") if payload == "eval" else (f"{os.system.__module__}.system",)
    assert any(name in message for name in forbidden), message
    assert "trust_pickle=True" in message and str(path) in message
    assert not marker.exists()
    # the payload is live: plain pickle (trust_pickle=True) runs it, and the result is no feature file
    with pytest.raises(DataError):
        load_mmsa_features(path, "train", trust_pickle=True)
    assert marker.exists()


def test_trust_pickle_loads_other_globals(tmp_path):
    """A harmless pickle outside the allow-list (an OrderedDict) needs trust_pickle=True."""
    data = mmsa_features("mosi")
    data["train"] = collections.OrderedDict(data["train"])
    path = write_pickle(tmp_path / "mosi" / "feats.pkl", data)
    with pytest.raises(pickle.UnpicklingError, match="collections.OrderedDict"):
        load_mmsa_features(path, "train")
    assert list(load_mmsa_features(path, "train", trust_pickle=True)) == LABEL_IDS["train"]


# ---------------------------------------------------------------------------------------------------------------------
# SST-5 trees

SST_TREES = {
    "train": [
        "(3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 (3 lovely) (2 film))))) (2 .)))",
        "(0 (1 (1 Dreadful) (2 -LRB-) (2 really) (2 -RRB-)) (2 .))",
        "",
        "(4 (4 Brilliant) (2 !))",
    ],
    "dev": ["(1 (1 Dull) (2 .))", "(2 (2 A) (2 movie) (2 .))"],
    "test": ["(2 (2 1\\/2) (2 hour) (2 .))"],
}


def write_sst(folder: Path, trees: dict[str, list[str]] = SST_TREES) -> None:
    for split, lines in trees.items():
        write_lines(folder / "sst" / f"{split}.txt", [line.encode() for line in lines])


def test_sst_splits_labels_and_text(tmp_path):
    write_sst(tmp_path)
    train = load_task_dataset("sst5", tmp_path, "train")
    assert list(train["id"]) == ["train_1", "train_2", "train_4"]  # ids are line numbers; blank lines are skipped
    assert list(train["label"]) == ["positive", "very negative", "very positive"]
    assert list(train["polarity"]) == ["positive", "negative", "positive"]
    assert train[0]["text"] == "It 's a lovely film ."
    assert train[1]["text"] == "Dreadful ( really ) ."
    assert list(load_task_dataset("sst5", tmp_path, "dev")["label"]) == ["negative", "neutral"]
    assert load_task_dataset("sst5", tmp_path, "test")[0]["text"] == "1/2 hour ."


SST_BAD_TREES = [
    pytest.param(b"(3 (2 It) (4 good)", "left open", id="unclosed"),
    pytest.param(b"(3 (2 It) (4 good)))", "extra ')'", id="extra-close"),
    pytest.param(b"(x (2 It) (4 good))", "not a class number", id="non-digit-label"),
    pytest.param(b"(3 (2 It) (y good))", "not a class number", id="non-digit-inner-label"),
    pytest.param(b"(7 (2 It) (4 good))", "not one of 0-4", id="label-out-of-range"),
    pytest.param(b"It is good", "must start with '('", id="not-a-tree"),
    pytest.param(b"(3 (2 It) ())", "not a class number", id="empty-node"),
    pytest.param(b"(3 (2 caf\xe9) (4 good))", "U+FFFD", id="bad-utf8"),
]


@pytest.mark.parametrize(("bad", "reason"), SST_BAD_TREES)
def test_sst_malformed_tree(tmp_path, caplog, bad, reason):
    path = write_lines(tmp_path / "sst" / "dev.txt", [b"(1 (1 Dull) (2 .))", bad, b"(3 (3 Fine) (2 .))"])
    with pytest.raises(DataError, match=re.escape(reason)):
        load_task_dataset("sst5", tmp_path, "dev")
    rows = check_bad_row(functools.partial(load_task_dataset, "sst5", tmp_path, "dev"), path, 2, "tree", 2, caplog)
    assert list(rows["id"]) == ["dev_1", "dev_3"]


words = st.text(
    alphabet=st.characters(exclude_categories=("Z", "C"), exclude_characters="()\\"), min_size=1, max_size=8
).filter(lambda word: word not in PTB_UNESCAPES)
trees = st.recursive(
    st.tuples(st.integers(0, 4), words),
    lambda children: st.tuples(st.integers(0, 4), st.lists(children, min_size=1, max_size=3)),
    max_leaves=12,
)


def render_tree(tree) -> str:
    label, body = tree
    inner = body if isinstance(body, str) else " ".join(render_tree(child) for child in body)
    return f"({label} {inner})"


def tree_leaves(tree) -> list[str]:
    label, body = tree
    return [body] if isinstance(body, str) else [word for child in body for word in tree_leaves(child)]


@settings(max_examples=200, deadline=None)
@given(trees)
def test_parse_sst_tree_round_trip(tree):
    assert parse_sst_tree(render_tree(tree)) == (tree[0], tree_leaves(tree))


# ---------------------------------------------------------------------------------------------------------------------
# generic JSONL / CSV


def test_generic_jsonl_regression(tmp_path):
    path = tmp_path / "reviews.jsonl"
    records = [
        {"id": "r1", "sentence": "Loved it.", "score": 2.5, "history": ["A: Seen it?", "B: Yes."]},
        {"sentence": "Meh.", "score": "0", "history": "A: And?"},
        {"sentence": "Awful.", "score": -3},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records[:2]) + "\n\n" + json.dumps(records[2]) + "\n")
    dataset = load_generic(path, "mosi", text_field="sentence", label_field="score", context_field="history")
    assert list(dataset["id"]) == ["r1", "reviews_2", "reviews_4"]  # default ids use the line number
    assert list(dataset["label"]) == [2.5, 0.0, -3.0]
    assert list(dataset["polarity"]) == ["positive", "neutral", "negative"]
    assert list(dataset["context"]) == ["A: Seen it?\nB: Yes.", "A: And?", ""]
    assert set(dataset["task"]) == {"mosi"}


def test_generic_csv_classification(tmp_path):
    path = write_lines(
        tmp_path / "chat.csv",
        [b"text,label,turns", b"Great!,Positive ,Hi", b'"No, thanks.",negative,', b"Ok.,NEUTRAL,"],
    )
    dataset = load_generic(path, TASKS["meld_sentiment"], context_field="turns")
    assert list(dataset["id"]) == ["chat_1", "chat_2", "chat_3"]
    assert list(dataset["label"]) == ["positive", "negative", "neutral"]
    assert list(dataset["context"]) == ["Hi", "", ""]
    assert dataset[1]["text"] == "No, thanks."


def read_rows(path, task, skip_bad_rows):
    return load_generic(path, task, context_field="context", skip_bad_rows=skip_bad_rows)


GENERIC_BAD_ROWS = [
    pytest.param(".jsonl", b'{"text": "Fine", "label": 1.0', None, id="jsonl-bad-json"),
    pytest.param(".jsonl", b'["Fine", 1.0]', None, id="jsonl-not-an-object"),
    pytest.param(".jsonl", b'{"label": 1.0}', "text", id="jsonl-missing-text"),
    pytest.param(".jsonl", b'{"text": "Fine", "label": NaN}', "label", id="jsonl-nan-label"),
    pytest.param(".jsonl", b'{"text": "Fine", "label": null}', "label", id="jsonl-null-label"),
    pytest.param(".jsonl", b'{"text": "Fine", "label": 3.5}', "label", id="jsonl-out-of-range"),
    pytest.param(".jsonl", b'{"text": "Fine", "label": true}', "label", id="jsonl-bool-label"),
    pytest.param(".jsonl", b'{"text": "caf\xe9", "label": 1.0}', "text", id="jsonl-bad-utf8"),
    pytest.param(".jsonl", b'{"text": "Fine", "label": 1.0, "context": 5}', "context", id="jsonl-bad-context"),
    pytest.param(".csv", b",1.0,", "text", id="csv-missing-text"),
    pytest.param(".csv", b"Fine,nan,", "label", id="csv-nan-label"),
    pytest.param(".csv", b"Fine,-4,", "label", id="csv-out-of-range"),
    pytest.param(".csv", b"caf\xe9,1.0,", "text", id="csv-bad-utf8"),
    pytest.param(".csv", b"Fine", "label", id="csv-short-row"),
]


@pytest.mark.parametrize(("suffix", "bad", "field"), GENERIC_BAD_ROWS)
def test_generic_bad_row(tmp_path, caplog, suffix, bad, field):
    if suffix == ".jsonl":
        lines = [b'{"text": "Good", "label": 2}', bad, b'{"text": "Bad", "label": -2, "context": ["A: hi"]}']
    else:
        lines = [b"text,label,context", b"Good,2,", bad, b'Bad,-2,"A: hi"']
    path = write_lines(tmp_path / f"data{suffix}", lines)
    row = 2  # the JSONL line number, or the CSV record number
    load = functools.partial(read_rows, path, "emobank")
    rows = check_bad_row(load, path, row, field, 2, caplog)
    assert [r["label"] for r in rows] == [2.0, -2.0]
    assert rows[1]["context"] == "A: hi"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_generic_unknown_class_label(tmp_path, caplog, suffix):
    if suffix == ".jsonl":
        lines = [
            b'{"text": "A", "label": "very positive"}',
            b'{"text": "B", "label": "great"}',
            b'{"text": "C", "label": 0}',
        ]
    else:
        lines = [b"text,label", b"A,very positive", b"B,great", b"C,very negative"]
    path = write_lines(tmp_path / f"sst{suffix}", lines)
    good = 1 if suffix == ".jsonl" else 2  # a JSON number is not a class name
    with pytest.raises(DataError) as info:
        load_generic(path, "sst5")
    assert_located(info.value, path, 2, "label")
    assert "'great'" in str(info.value)
    with caplog.at_level(logging.WARNING):
        assert len(load_generic(path, "sst5", skip_bad_rows=True)) == good


def test_generic_wrong_columns_and_files(tmp_path):
    path = write_lines(tmp_path / "data.csv", [b"sentence,label", b"Hi,1"])
    with pytest.raises(DataError) as info:
        load_generic(path, "emobank", skip_bad_rows=True)
    assert str(path) in str(info.value) and "field 'text'" in str(info.value)
    assert len(load_generic(path, "emobank", text_field="sentence")) == 1
    with pytest.raises(ValueError, match=r"\.jsonl or \.csv"):
        load_generic(tmp_path / "data.tsv", "emobank")
    with pytest.raises(FileNotFoundError):
        load_generic(tmp_path / "absent.jsonl", "emobank")
    empty = write_lines(tmp_path / "empty.jsonl", [b""])
    with pytest.raises(ValueError, match="no rows"):
        load_generic(empty, "emobank")


@pytest.fixture
def toy_generic_task(monkeypatch):
    """A task on a dataset folder read by the generic loader; the registration is undone afterwards."""
    spec = TaskSpec(
        name="toy_reviews",
        kind="classification",
        dataset="toy_reviews",
        metric_suite="classification",
        instruction="Judge the review.",
        labels=("negative", "positive"),
        coarse_of_label={"negative": "negative", "positive": "positive"},
    )
    monkeypatch.setitem(TASKS, spec.name, spec)
    register_generic_dataset("toy_reviews", text_field="review")
    yield spec
    LOADERS.pop("toy_reviews", None)


def test_register_generic_dataset_feeds_load_task_dataset(tmp_path, toy_generic_task):
    folder = tmp_path / "toy_reviews"
    write_lines(
        folder / "train.jsonl",
        [b'{"review": "Good.", "label": "positive"}', b'{"review": "Bad.", "label": "negative"}'],
    )
    write_lines(folder / "dev.csv", [b"review,label,id", b"Fine.,positive,d1"])
    train = load_task_dataset("toy_reviews", tmp_path, "train")
    assert list(train["id"]) == ["train_1", "train_2"] and list(train["label"]) == ["positive", "negative"]
    assert list(load_task_dataset("toy_reviews", tmp_path, "dev")["id"]) == ["d1"]
    with pytest.raises(FileNotFoundError, match=r"test\.jsonl \(or test\.csv\)"):
        load_task_dataset("toy_reviews", tmp_path, "test")
    with pytest.raises(ValueError, match="already has a loader"):
        register_generic_dataset("meld")
