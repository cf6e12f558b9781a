"""Preprocessing on real rows: paraphrase and self-questioning augmentation, quality scores and weights, rewrites,
the commands, and the SFT recipe's dataset with the steps switched on."""

from __future__ import annotations

import json

import pytest
from datasets import concatenate_datasets, load_from_disk
from trl import SFTConfig
from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentimentIntensityAnalyzer

from hintgrpo import teachers
from hintgrpo.cli import main
from hintgrpo.configs import (
    AugmentArguments,
    QualityArguments,
    RewriteArguments,
    SFTScriptArguments,
    SynthesizeArguments,
    TeacherArguments,
)
from hintgrpo.data import DataError, load_task_dataset
from hintgrpo.jsonl import read_records, write_jsonl
from hintgrpo.preprocess import paraphrase
from hintgrpo.preprocess.augment import augment
from hintgrpo.preprocess.quality import score
from hintgrpo.preprocess.records import load_cot_records
from hintgrpo.preprocess.rewrite import rewrite
from hintgrpo.preprocess.self_question import lexicon_self_question, self_question_problem
from hintgrpo.tasks import get_task
from hintgrpo.teachers import Teacher
from hintgrpo.teachers.lexicon import lexicon_rationale
from hintgrpo.teachers.rationale import validate_cot
from hintgrpo.teachers.synthesize import synthesize
from hintgrpo.training import sft_datasets

VADER = SentimentIntensityAnalyzer()
EMOBANK = get_task("emobank")


def write_cot(data_dir, path, task="emobank", split="train", limit=12):
    synthesize(
        SynthesizeArguments(
            task=task,
            data_dir=str(data_dir),
            split=split,
            limit=limit,
            teacher_backend="lexicon",
            output_file=str(path),
        )
    )
    return path


@pytest.fixture(scope="module")
def cot_file(real_data_dir, tmp_path_factory):
    """Lexicon-teacher CoT records of the first 12 EmoBank train sentences (all accepted)."""
    return write_cot(real_data_dir, tmp_path_factory.mktemp("cot") / "cot.jsonl")


GOODWILL = "110CYL068_1137_1188"  # "Goodwill helps people get off of public assistance.", label 0.66
REMEMBER = "110CYL068_1036_1079"  # "Remember what she said in my last letter? \"", label 0


def rows_by_id(dataset):
    return {row["id"]: row for row in dataset}


def edited_cot(cot_file, path, **edits):
    """A copy of `cot_file` whose record with id `key` is updated with `edits[key]`."""
    records = [record | edits.get(record["id"], {}) for record in read_records(cot_file)]
    write_jsonl(path, records)
    return path


class ScriptedTeacher(Teacher):
    """A chat teacher: `reply(conversation, sample)` answers paraphrase and rewrite requests; rationale requests get
    the lexicon rationale. Every conversation it is sent is kept."""

    name = "scripted"

    def __init__(self, reply):
        super().__init__()
        self.reply, self.conversations = reply, []

    def complete(self, conversation, sample):
        self.conversations.append(conversation)
        if conversation[0]["content"].startswith("You write reference reasoning"):
            return lexicon_rationale(sample, get_task(sample["task"]))
        return self.reply(conversation, sample)


def test_synonym_groups_are_grounded_in_the_vader_lexicon():
    lexicon = VADER.lexicon
    for group in paraphrase.SYNONYM_GROUPS:
        valences = [lexicon[word] for word in group]
        assert len({v > 0 for v in valences}) == 1 and round(max(valences) - min(valences), 6) <= 0.6, group
    for group in paraphrase.INTENSIFIER_GROUPS:
        assert len({BOOSTER_DICT[word] for word in group}) == 1, group
    assert not [word for group in paraphrase.NEUTRAL_GROUPS for word in group if word in lexicon]


def test_lexicon_paraphrases_of_real_sentences_keep_their_sentiment(real_data_dir):
    rows = load_task_dataset("emobank", real_data_dir, "train").select(range(60))
    texts = {row["id"]: row["text"] for row in rows}
    assert paraphrase.lexicon_paraphrases(texts["110CYL069_513_544"], 2, 2, "0") == ["And we do not waste money."]
    assert paraphrase.lexicon_paraphrases("I know what it is.", 1, 2, "0") == []  # "it's" cannot end a sentence
    made = 0
    for sample_id, text in texts.items():
        found = paraphrase.lexicon_paraphrases(text, 2, 2, f"0:{sample_id}")
        assert found == paraphrase.lexicon_paraphrases(text, 2, 2, f"0:{sample_id}")  # deterministic
        for candidate in found:
            before, after = VADER.polarity_scores(text)["compound"], VADER.polarity_scores(candidate)["compound"]
            assert candidate != text and abs(after - before) <= paraphrase.COMPOUND_TOLERANCE
        made += bool(found)
    assert made >= 15  # 17 of these 60 sentences have a word, intensifier or contraction to swap
    assert "sentiment" in paraphrase.paraphrase_problem("I am happy.", "I am sad.")
    assert "itself" in paraphrase.paraphrase_problem("I am happy.", "I am happy.")


def test_lexicon_self_question_on_a_real_sentence(real_data_dir):
    row = load_task_dataset("emobank", real_data_dir, "train")[12]
    assert (row["text"], row["polarity"]) == ("I wanted to be there.", "neutral")
    assert lexicon_self_question(row, seed=0) == (
        "Question: Which words of the utterance carry its feeling, and which way do they point?\n"
        "Answer: No sentiment cue words; matter-of-fact. So it reads neutral."
    )
    assert self_question_problem("Question: Is it sad?\nAnswer: No, it reads positive.", "negative")
    assert self_question_problem("It is sad.", "negative")


def test_a_cot_file_without_its_final_newline_loses_no_record(cot_file, tmp_path, caplog):
    lines = cot_file.read_text().splitlines()
    no_final_newline = tmp_path / "cot.jsonl"
    no_final_newline.write_text("\n".join(lines))
    assert len(load_cot_records(no_final_newline)) == len(lines)
    # A last line that is not a whole record yet (a file still being appended to) is skipped, and said so.
    being_written = tmp_path / "being_written.jsonl"
    being_written.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    assert len(load_cot_records(being_written)) == len(lines) - 1
    assert "line 12 is not a whole record yet" in caplog.text


def test_augment_keeps_source_ids_gives_new_rationales_and_is_cached(cot_file, tmp_path, monkeypatch):
    records = load_cot_records(cot_file)
    args = AugmentArguments(augmenters=["paraphrase", "self_question"], paraphrases=2)
    result = augment(records, args, TeacherArguments(), cache_dir=tmp_path)

    assert result.select(range(len(records))).remove_columns(["source_id", "augmentation"]).to_list() == (
        records.to_list()
    )
    loaded = rows_by_id(records)
    augmented = result.select(range(len(records), len(result)))
    assert set(augmented["augmentation"]) == {"paraphrase", "self_question"}
    assert augmented["augmentation"].count("self_question") == len(records)
    for row in augmented:
        source = loaded[row["source_id"]]
        assert row["id"].startswith(f"{source['id']}#{row['augmentation']}")
        assert (row["label"], row["polarity"], row["task"]) == (source["label"], source["polarity"], source["task"])
        if row["augmentation"] == "paraphrase":
            assert row["text"] != source["text"] and paraphrase.paraphrase_problem(source["text"], row["text"]) is None
            assert row["status"] == "accepted" and validate_cot(row["cot"], row, EMOBANK, 0.25) is None
            assert row["cot"] == lexicon_rationale(row, EMOBANK)  # written for the new text
        else:
            assert row["text"] == source["text"] and self_question_problem(row["cot"], row["polarity"]) is None

    calls = []
    monkeypatch.setattr(paraphrase, "lexicon_paraphrases", lambda *a, **k: calls.append(a) or [])
    assert augment(records, args, TeacherArguments(), cache_dir=tmp_path).to_list() == result.to_list()
    assert calls == []  # the same step on the same rows: loaded from the cache
    augment(records, AugmentArguments(paraphrases=1), TeacherArguments(), cache_dir=tmp_path)
    assert len(calls) == len(records)  # other options: computed afresh
    with pytest.raises(ValueError, match="already hold"):
        augment(result, args, TeacherArguments(), cache_dir=tmp_path)


def test_chat_teacher_paraphrase_is_retried_with_feedback(cot_file, tmp_path, monkeypatch):
    records = load_cot_records(cot_file).filter(lambda sample_id: sample_id == GOODWILL, input_columns="id")

    def reply(conversation, sample):
        if len(conversation) == 2:
            return "Goodwill hurts people who are on public assistance."
        return "Goodwill helps people get off public assistance."

    teacher = ScriptedTeacher(reply)
    monkeypatch.setattr(teachers, "build_teacher", lambda args: teacher)
    result = augment(records, AugmentArguments(), TeacherArguments(teacher_backend="openai"), cache_dir=tmp_path)
    assert result["text"][1] == "Goodwill helps people get off public assistance."
    paraphrase_requests = [c for c in teacher.conversations if c[0]["content"].startswith("You paraphrase")]
    assert [len(c) for c in paraphrase_requests] == [2, 4]
    assert "changes the sentiment" in paraphrase_requests[1][3]["content"]


def test_scores_and_weights_on_real_rows(cot_file, real_data_dir, tmp_path):
    edits = {REMEMBER: {"status": "rejected"}}
    rows = augment(
        load_cot_records(edited_cot(cot_file, tmp_path / "cot.jsonl", **edits)),
        AugmentArguments(),
        TeacherArguments(),
        cache_dir=tmp_path,
    )
    # An "augmentation" of the Goodwill sentence whose text is unrelated to it.
    unrelated = rows.select([0]).map(
        lambda row: {
            "text": "The weather report for Tuesday lists rain.",
            "source_id": GOODWILL,
            "augmentation": "paraphrase",
            "id": "x#paraphrase0",
        }
    )
    scored = score(concatenate_datasets([rows, unrelated]), QualityArguments(min_weight=0.1), cache_dir=tmp_path)
    by_id = rows_by_id(scored)

    goodwill = by_id[GOODWILL]  # label 0.66: direction 0.66 / 3
    compound = VADER.polarity_scores(goodwill["text"])["compound"]
    assert goodwill["consistency"] == pytest.approx(1 - abs(compound - 0.22) / 2)
    assert goodwill["fidelity_text"] == goodwill["reliability"] == 1.0
    assert goodwill["weight"] == pytest.approx(0.1 + 0.9 * goodwill["consistency"])
    rejected = by_id[REMEMBER]
    assert rejected["reliability"] == 0.0 and rejected["weight"] == pytest.approx(0.1)
    paraphrased = [row for row in scored if row["augmentation"] == "paraphrase" and row["id"] != "x#paraphrase0"]
    assert paraphrased and all(0.8 < row["fidelity_text"] < 1.0 for row in paraphrased)
    assert by_id["x#paraphrase0"]["fidelity_text"] < 0.3
    assert all(0.1 <= weight <= 1.0 for weight in scored["weight"])

    no_consistency = score(rows, QualityArguments(min_weight=0.1, consistency_exponent=0.0), cache_dir=tmp_path)
    assert rows_by_id(no_consistency)[GOODWILL]["weight"] == 1.0

    meld = score(load_task_dataset("meld_sentiment", real_data_dir, "dev").select(range(6)), QualityArguments())
    for row in meld:
        direction = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}[row["polarity"]]
        text_compound = VADER.polarity_scores(row["text"])["compound"]
        assert row["consistency"] == pytest.approx(1 - abs(text_compound - direction) / 2)
        assert "reliability" not in meld.column_names
    mustard = score(load_task_dataset("mustard", real_data_dir, "fold1_test").select(range(3)), QualityArguments())
    assert mustard["consistency"] == [1.0] * 3  # sarcasm has no independent sentiment estimate

    orphan = rows.select([0]).map(lambda row: {"source_id": "missing", "augmentation": "paraphrase"})
    with pytest.raises(DataError, match=r"row 0, field 'source_id': no loaded row of task emobank with id 'missing'"):
        score(orphan, QualityArguments(), reference=rows, source="rows.arrow", cache_dir=tmp_path)


def test_rewrite_revises_rejected_rationales_and_keeps_the_originals(cot_file, tmp_path):
    wrong = rows_by_id(load_cot_records(cot_file))[GOODWILL]["cot"].replace(
        "polarity: positive.", "polarity: negative."
    )
    edits = {GOODWILL: {"status": "rejected", "cot": wrong}}
    scored = score(
        load_cot_records(edited_cot(cot_file, tmp_path / "cot.jsonl", **edits)), QualityArguments(), cache_dir=tmp_path
    )

    result, counts = rewrite(scored, TeacherArguments(), QualityArguments(), RewriteArguments(), cache_dir=tmp_path)
    assert counts == {
        "rows": 12,
        "under_threshold": 1,
        "not_rewritable": 0,
        "already_rewritten": 0,
        "rewritten": {"rationale": 1, "text": 0},
        "failed": 0,
        "improved": 1,
        "still_under_threshold": 0,
    }
    assert result.select(range(12)).to_list() == scored.to_list()
    revised = result[12]
    assert revised["id"] == f"{GOODWILL}#rewrite" and revised["augmentation"] == "rewrite_rationale"
    assert revised["source_id"] == GOODWILL and revised["status"] == "accepted"
    assert validate_cot(revised["cot"], revised, EMOBANK, 0.25) is None
    assert revised["reliability"] == 1.0 and revised["weight"] > rows_by_id(scored)[GOODWILL]["weight"]

    again, counts = rewrite(result, TeacherArguments(), QualityArguments(), RewriteArguments(), cache_dir=tmp_path)
    assert len(again) == 13 and counts["already_rewritten"] == 1 and counts["rewritten"] == {"rationale": 0, "text": 0}
    with pytest.raises(ValueError, match="run the score step first"):
        rewrite(load_cot_records(cot_file), TeacherArguments(), QualityArguments(), RewriteArguments())


def test_rewrite_asks_a_chat_teacher_for_a_minimal_text_rewrite(cot_file, tmp_path, monkeypatch):
    sentences = load_cot_records(cot_file).filter(lambda text: len(text) > 30, input_columns="text").select(range(4))
    scored = score(sentences, QualityArguments(), cache_dir=tmp_path)
    teacher = ScriptedTeacher(lambda conversation, sample: sample["text"].rstrip(".") + ", gladly!")
    monkeypatch.setattr(teachers, "build_teacher", lambda args: teacher)
    result, counts = rewrite(
        scored,
        TeacherArguments(teacher_backend="openai"),
        QualityArguments(),
        RewriteArguments(rewrite_threshold=1.01),  # every row
        cache_dir=tmp_path,
    )
    assert counts["rewritten"] == {"rationale": 0, "text": 4} and counts["failed"] == 0
    for original, rewritten in zip(scored, result.select(range(4, 8)), strict=True):
        assert rewritten["text"] == original["text"].rstrip(".") + ", gladly!"
        assert rewritten["cot"] == lexicon_rationale(rewritten, EMOBANK)  # a rationale for the new text
        assert rewritten["fidelity_text"] < 1.0 and rewritten["source_id"] == original["id"]
    request = next(c for c in teacher.conversations if c[0]["content"].startswith("You repair"))
    assert "independent sentiment estimate" in request[1]["content"] and scored[0]["text"] in request[1]["content"]


def test_bad_records_are_reported_by_line_and_field_or_skipped(cot_file, tmp_path):
    lines = cot_file.read_text().splitlines()
    bad = dict(json.loads(lines[1]), label=7.5)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(bad), lines[0], *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=rf"{path}, row 2, field 'label': 7.5 is outside \[-3, 3\]"):
        load_cot_records(path)
    path.write_text("\n".join([lines[0], json.dumps(dict(bad, label=0.5)), lines[0], *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"row 3, field 'id': '110CYL.*' of task emobank is already on line 1"):
        load_cot_records(path)
    path.write_text("\n".join([lines[0], json.dumps(bad), "{not json", lines[0], *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=rf"{path}, row 3: not valid JSON"):
        load_cot_records(path)
    records = load_cot_records(path, skip_bad_rows=True)
    assert len(records) == len(lines) - 1  # the out-of-range label, the broken line and the repeated id skipped
    missing_cot = tmp_path / "missing_cot.jsonl"
    missing_cot.write_text(json.dumps(dict(json.loads(lines[0]), cot="")) + "\n")
    with pytest.raises(DataError, match="row 1, field 'cot': missing or empty text"):
        load_cot_records(missing_cot)


def test_commands_chain_augment_score_rewrite(cot_file, tmp_path):
    cache = ["--cache_dir", str(tmp_path / "cache")]
    main(["augment", "--input", str(cot_file), "--output_dir", str(tmp_path / "augmented"), *cache])
    counts = json.loads((tmp_path / "augmented" / "counts.json").read_text())
    assert counts["loaded_rows"] == 12 and counts["augmented_rows"]["paraphrase"] >= 4
    main(["score", "--input", str(tmp_path / "augmented"), "--output_dir", str(tmp_path / "scored"), *cache])
    scored = load_from_disk(str(tmp_path / "scored"))
    assert {"fidelity_text", "consistency", "reliability", "weight"} <= set(scored.column_names)
    main(["rewrite", "--input", str(tmp_path / "scored"), "--output_dir", str(tmp_path / "rewritten"), *cache])
    counts = json.loads((tmp_path / "rewritten" / "counts.json").read_text())
    assert len(load_from_disk(str(tmp_path / "rewritten"))) == len(scored) + sum(counts["rewritten"].values())


def test_sft_recipe_switches_the_steps_on(cot_file, tmp_path):
    script_args = SFTScriptArguments(
        cot_file=str(cot_file),
        preprocess=["augment", "score"],
        augmenters=["paraphrase", "self_question"],
        preprocess_cache_dir=str(tmp_path),
    )
    training_args = SFTConfig(output_dir=str(tmp_path / "sft"), use_cpu=True, bf16=False, report_to="none")
    train, _ = sft_datasets(script_args, training_args)
    assert set(train.column_names) == {"id", "task", "label", "polarity", "weight", "prompt", "completion"}
    assert len(train) > 2 * 12 and len(set(train["weight"])) > 1 and max(train["weight"]) <= 1.0
    questions = [row for row in train if row["id"].endswith("#self_question0")]
    assert len(questions) == 12
    assert "ask yourself one question" in questions[0]["prompt"][0]["content"]
    assert questions[0]["completion"][0]["content"].startswith("Question: ")
    with pytest.raises(ValueError, match="put score before rewrite"):
        SFTScriptArguments(cot_file=str(cot_file), preprocess=["rewrite"])
