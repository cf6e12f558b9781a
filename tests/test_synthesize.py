import json
import logging
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from datasets import Dataset
from trl.data_utils import is_conversational
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from hintgrpo.cli import main
from hintgrpo.configs import SynthesizeArguments
from hintgrpo.data import DataError, load_task_dataset
from hintgrpo.data.prompts import build_messages
from hintgrpo.jsonl import read_records
from hintgrpo.preprocess.records import load_cot_dataset
from hintgrpo.reasoning import parse_completion, render
from hintgrpo.tasks import get_task
from hintgrpo.teachers import OpenAITeacher, TransformersTeacher
from hintgrpo.teachers.lexicon import lexicon_rationale
from hintgrpo.teachers.rationale import teacher_messages, validate_cot
from hintgrpo.teachers.synthesize import synthesize

EMOBANK = get_task("emobank")
QUOTED = re.compile(r'"([^"]+)"')
CITED_VALENCE = re.compile(r'"([^"]+)" \(([+-]\d+\.\d)')


class ChatServer:
    """An OpenAI-compatible chat-completions endpoint on 127.0.0.1 (ephemeral port), served from a thread.

    `reply(messages)` writes the assistant message. `fault(n, messages)` may turn the n-th request (1-based)
    into "http_<code>" (answered with `error_body(headers)`), "timeout" (answers only after `stall` seconds) or
    "malformed_json".
    """

    def __init__(
        self,
        reply,
        fault=lambda n, messages: None,
        delay=0.0,
        stall=1.5,
        error_body=lambda headers: b'{"error": {"message": "injected"}}',
    ):
        self.reply, self.fault, self.delay, self.stall, self.error_body = reply, fault, delay, stall, error_body
        self.received = []  # (headers, body) in arrival order
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                server.handle(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, request):
        assert request.path == "/v1/chat/completions"
        body = json.loads(request.rfile.read(int(request.headers["Content-Length"])))
        with self.lock:
            self.received.append((dict(request.headers), body))
            fault = self.fault(len(self.received), body["messages"])
        time.sleep(self.delay)
        if fault and fault.startswith("http_"):
            return self.send(request, int(fault.removeprefix("http_")), self.error_body(dict(request.headers)))
        if fault == "malformed_json":
            return self.send(request, 200, b'{"choices": [{"message": ')
        if fault == "timeout":
            time.sleep(self.stall)
        message = {"role": "assistant", "content": self.reply(body["messages"])}
        completion = {
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": message}],
        }
        self.send(request, 200, json.dumps(completion).encode())

    @staticmethod
    def send(request, status, payload):
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timeout)

    def bodies_of(self, sample_id, samples_by_prompt):
        return [
            body for _, body in self.received if samples_by_prompt[body["messages"][1]["content"]]["id"] == sample_id
        ]


def rows(data_dir, task, split, n):
    return load_task_dataset(task, data_dir, split).select(range(n)).to_list()


def by_prompt(samples, task=EMOBANK):
    """Samples keyed by the user turn the teacher is sent, so the server knows which sample it is asked about."""
    return {teacher_messages(sample, task)[1]["content"]: sample for sample in samples}


def lexicon_reply(samples, task=EMOBANK):
    lookup = by_prompt(samples, task)
    return lambda messages: lexicon_rationale(lookup[messages[1]["content"]], task)


def failing(samples, sample_id, fault):
    """A server fault for every request about one sample."""
    lookup = by_prompt(samples)
    return lambda n, messages: fault if lookup[messages[1]["content"]]["id"] == sample_id else None


def synth_args(data_dir, output_file, **overrides):
    options = dict(
        task="emobank",
        data_dir=str(data_dir),
        split="train",
        output_file=str(output_file),
        teacher_backend="lexicon",
        teacher_model="teacher",
        limit=6,
        teacher_concurrency=3,
        teacher_timeout=0.5,
        teacher_max_request_retries=3,
        teacher_backoff_base=0.01,
        teacher_backoff_max=0.05,
    )
    return SynthesizeArguments(**(options | overrides))


def test_openai_backend_recovers_from_server_errors(real_data_dir, tmp_path):
    samples = rows(real_data_dir, "emobank", "train", 6)
    faults = {1: "http_500", 2: "timeout", 3: "malformed_json", 5: "http_503"}
    with ChatServer(lexicon_reply(samples), fault=lambda n, _: faults.get(n)) as server:
        args = synth_args(
            real_data_dir, tmp_path / "cot.jsonl", teacher_backend="openai", teacher_base_url=server.base_url
        )
        counts = synthesize(args)
    assert counts["accepted"] == 6 and counts["failed"] == 0
    assert counts["errors"] == {"http_500": 1, "timeout": 1, "malformed_response": 1, "http_503": 1}
    assert len(server.received) == 6 + 4
    records = read_records(tmp_path / "cot.jsonl")
    assert sorted(r["id"] for r in records) == sorted(s["id"] for s in samples)
    assert all(r["status"] == "accepted" and r["tries"] == 1 and r["teacher"] == "openai:teacher" for r in records)


def test_backoff_doubles_up_to_the_cap_with_jitter():
    teacher = OpenAITeacher("http://127.0.0.1:9/v1", "m", backoff_base=0.1, backoff_max=0.3)
    for attempt, ceiling in enumerate([0.1, 0.2, 0.3, 0.3]):
        delays = [teacher.backoff_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(set(delays)) > 1


def test_a_sample_whose_requests_keep_failing_is_left_for_the_rerun(real_data_dir, tmp_path):
    samples = rows(real_data_dir, "emobank", "train", 3)
    lookup = by_prompt(samples)
    down = samples[0]["id"]
    args = synth_args(real_data_dir, tmp_path / "cot.jsonl", teacher_backend="openai", limit=3)
    with ChatServer(lexicon_reply(samples), fault=failing(samples, down, "http_503")) as server:
        args.teacher_base_url = server.base_url
        counts = synthesize(args)
    assert counts["accepted"] == 2 and counts["failed"] == 1 and counts["errors"] == {"http_503": 4}
    assert len(server.bodies_of(down, lookup)) == 1 + 3  # the request and its retries
    assert down not in {r["id"] for r in read_records(tmp_path / "cot.jsonl")}
    with ChatServer(lexicon_reply(samples)) as server:
        args.teacher_base_url = server.base_url
        counts = synthesize(args)
    assert counts["accepted"] == 1 and counts["skipped"] == 2 and len(server.received) == 1
    assert sorted(r["id"] for r in read_records(tmp_path / "cot.jsonl")) == sorted(s["id"] for s in samples)


def test_wrong_teacher_gets_feedback_and_is_rejected_after_max_tries(real_data_dir, tmp_path):
    samples = rows(real_data_dir, "emobank", "train", 6)
    lookup = by_prompt(samples)
    stubborn, learner = samples[0], samples[1]
    wrong_polarity = "negative" if stubborn["polarity"] != "negative" else "positive"

    def reply(messages):
        sample = lookup[messages[1]["content"]]
        right = lexicon_rationale(sample, EMOBANK)
        if sample is stubborn:
            return right.replace(f"polarity: {sample['polarity']}.", f"polarity: {wrong_polarity}.")
        if sample is learner and len(messages) == 2:
            return "I would say it is fairly positive overall."
        return right

    with ChatServer(reply) as server:
        counts = synthesize(
            synth_args(
                real_data_dir, tmp_path / "cot.jsonl", teacher_backend="openai", teacher_base_url=server.base_url
            )
        )
    assert (counts["accepted"], counts["rejected"], counts["retried"]) == (5, 1, 2)
    assert counts["errors"] == {"polarity": 3, "format": 1}
    records = {r["id"]: r for r in read_records(tmp_path / "cot.jsonl")}

    rejected = records[stubborn["id"]]
    assert rejected["status"] == "rejected" and rejected["tries"] == 3
    assert [e["kind"] for e in rejected["errors"]] == ["polarity"] * 3
    assert f"polarity: {wrong_polarity}." in rejected["cot"]
    bodies = server.bodies_of(stubborn["id"], lookup)
    assert [len(b["messages"]) for b in bodies] == [2, 4, 6]
    last = bodies[-1]["messages"]
    assert last[2] == {"role": "assistant", "content": rejected["cot"]}
    assert last[3]["role"] == "user"
    assert (
        f"the discrimination says {wrong_polarity} but the gold result is {stubborn['polarity']}" in last[3]["content"]
    )

    learned = records[learner["id"]]
    assert learned["status"] == "accepted" and learned["tries"] == 2 and learned["errors"][0]["kind"] == "format"
    assert "<discrimination>polarity:" in server.bodies_of(learner["id"], lookup)[1]["messages"][3]["content"]


def test_api_key_is_sent_as_bearer_and_never_logged_or_written(real_data_dir, tmp_path, monkeypatch, caplog, capsys):
    key = "sk-test-4f0c9e1d7a6b"
    monkeypatch.setenv("HINTGRPO_TEACHER_API_KEY", key)
    caplog.set_level(logging.DEBUG)
    samples = rows(real_data_dir, "emobank", "train", 3)
    with (
        ChatServer(lexicon_reply(samples), fault=failing(samples, samples[0]["id"], "http_500")) as server,
        pytest.raises(SystemExit) as exit_info,  # a failed sample makes the run exit non-zero
    ):
        main(
            ["synthesize", "--task", "emobank", "--data_dir", str(real_data_dir), "--split", "train"]
            + ["--backend", "openai", "--base_url", server.base_url, "--teacher_model", "teacher", "--limit", "3"]
            + ["--output_file", str(tmp_path / "cot.jsonl"), "--max_request_retries", "1", "--backoff_base", "0.01"]
        )
    assert key not in str(exit_info.value.code)
    assert {headers["Authorization"] for headers, _ in server.received} == {f"Bearer {key}"}
    output = capsys.readouterr()
    assert '"failed": 1' in output.out and "left for a rerun" in caplog.text
    assert key not in output.out + output.err + caplog.text
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert files and all(key.encode() not in path.read_bytes() for path in files)


def test_a_refused_request_stops_the_run(real_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with (
        ChatServer(lambda messages: "", fault=lambda n, messages: "http_401") as server,
        pytest.raises(SystemExit, match="error: .*answered HTTP 401") as exit_info,
    ):
        main(
            ["synthesize", "--data_dir", str(real_data_dir), "--backend", "openai", "--base_url", server.base_url]
            + ["--teacher_model", "teacher", "--output_file", str(tmp_path / "cot.jsonl"), "--limit", "4"]
        )
    assert "sk-wrong" not in str(exit_info.value)
    asked = [body["messages"][1]["content"] for _, body in server.received]
    assert len(asked) == len(set(asked))  # a refused request is not retried


def echo_headers(headers):
    """An error body that repeats the request, as some servers' debug pages do."""
    return json.dumps({"error": {"message": "bad request", "request_headers": headers}}).encode()


@pytest.mark.parametrize("status", ["http_500", "http_400"], ids=["retried", "refused"])
def test_a_key_echoed_in_an_error_body_is_redacted(real_data_dir, tmp_path, monkeypatch, caplog, capsys, status):
    key = "sk-echo-9b2e7f31c4d5"
    monkeypatch.setenv("HINTGRPO_TEACHER_API_KEY", key)
    caplog.set_level(logging.DEBUG)
    samples = rows(real_data_dir, "emobank", "train", 2)
    fault = failing(samples, samples[0]["id"], status)
    with ChatServer(lexicon_reply(samples), fault=fault, error_body=echo_headers) as server:
        command = ["synthesize", "--data_dir", str(real_data_dir), "--backend", "openai", "--limit", "2"]
        command += ["--base_url", server.base_url, "--teacher_model", "teacher", "--max_request_retries", "1"]
        command += ["--output_file", str(tmp_path / "cot.jsonl"), "--backoff_base", "0.01", "--concurrency", "1"]
        try:
            main(command)
        except SystemExit as error:
            print(error.code, file=sys.stderr)
    printed = capsys.readouterr()
    shown = printed.out + printed.err + caplog.text
    assert "request_headers" in shown and "Bearer [redacted]" in shown
    assert key not in shown and key[3:12] not in shown


def test_redact_removes_the_key_and_bearer_tokens():
    teacher = OpenAITeacher("http://127.0.0.1:9/v1", "m", api_key="sk-abc123")
    body = 'key=sk-abc123 {"Authorization": "Bearer other-token"} authorization: bearer xyz'
    assert (
        teacher.redact(body) == 'key=[redacted] {"Authorization": "Bearer [redacted]"} authorization: Bearer [redacted]'
    )


def exit_message_of_three_rows(server: ChatServer, real_data_dir, tmp_path) -> str:
    """`hintgrpo synthesize` of 3 rows against `server`, which must end the run with an error message."""
    command = ["synthesize", "--data_dir", str(real_data_dir), "--backend", "openai", "--limit", "3"]
    command += ["--base_url", server.base_url, "--teacher_model", "teacher", "--max_request_retries", "1"]
    command += ["--output_file", str(tmp_path / "cot.jsonl"), "--backoff_base", "0.01"]
    with pytest.raises(SystemExit) as exit_info:
        main(command)
    return str(exit_info.value.code)


def test_a_run_in_which_every_sample_failed_exits_non_zero_and_says_why(real_data_dir, tmp_path, capsys):
    with ChatServer(lambda messages: "", fault=lambda n, messages: "http_503") as server:
        message = exit_message_of_three_rows(server, real_data_dir, tmp_path)
    assert message.startswith("error: no sample was accepted, and 3 failed") and "'http_503': 6" in message
    assert '"failed": 3' in capsys.readouterr().out


def test_a_run_in_which_some_samples_failed_exits_non_zero_and_says_how_many(real_data_dir, tmp_path):
    samples = rows(real_data_dir, "emobank", "train", 3)
    with ChatServer(lexicon_reply(samples), fault=failing(samples, samples[0]["id"], "http_503")) as server:
        message = exit_message_of_three_rows(server, real_data_dir, tmp_path)
    assert message.startswith("error: 2 samples were accepted, and 1 failed") and "rerun to retry" in message
    assert len(read_records(tmp_path / "cot.jsonl")) == 2  # the accepted records are kept


def test_a_repeated_id_gets_one_record(real_data_dir, tmp_path):
    data = tmp_path / "data" / "emobank"
    data.mkdir(parents=True)
    lines = (real_data_dir / "emobank" / "emobank.csv").read_bytes().split(b"\r\n")
    sample_id, split, _, rest = lines[1].split(b",", 3)
    lines.insert(2, b",".join([sample_id, split, b"4.5", rest]))  # the first row's id with another valence
    (data / "emobank.csv").write_bytes(b"\r\n".join(lines))
    args = synth_args(tmp_path / "data", tmp_path / "cot.jsonl")
    with pytest.raises(DataError, match="row 2, field 'id'.*is already the id of row 1"):
        synthesize(args)
    args.skip_bad_rows = True
    assert synthesize(args)["accepted"] == 6
    ids = [r["id"] for r in read_records(tmp_path / "cot.jsonl")]
    assert len(ids) == len(set(ids)) == 6


def test_a_dataset_with_a_repeated_id_is_refused_before_any_request(real_data_dir, tmp_path):
    samples = rows(real_data_dir, "emobank", "train", 3)
    dataset = Dataset.from_list([*samples, samples[1]])
    with pytest.raises(DataError, match="row 3, field 'id'.*is already the id of row 1"):
        synthesize(synth_args(real_data_dir, tmp_path / "cot.jsonl"), dataset)
    assert not (tmp_path / "cot.jsonl").exists()


def test_openai_backend_needs_a_model(real_data_dir, tmp_path):
    with pytest.raises(SystemExit, match="error: the openai backend needs --teacher_model"):
        main(["synthesize", "--data_dir", str(real_data_dir), "--output_file", str(tmp_path / "cot.jsonl")])


def test_rerun_skips_written_samples(real_data_dir, tmp_path):
    output = tmp_path / "cot.jsonl"
    first = synthesize(synth_args(real_data_dir, output, limit=4))
    second = synthesize(synth_args(real_data_dir, output, limit=9))
    assert (first["accepted"], second["accepted"], second["skipped"]) == (4, 5, 4)
    ids = [r["id"] for r in read_records(output)]
    assert sorted(ids) == sorted(s["id"] for s in rows(real_data_dir, "emobank", "train", 9))
    assert synthesize(synth_args(real_data_dir, output, limit=9))["skipped"] == 9
    assert len(read_records(output)) == 9


def test_a_run_killed_mid_write_resumes_cleanly(real_data_dir, tmp_path, run_until_killed):
    samples = rows(real_data_dir, "emobank", "train", 30)
    output = tmp_path / "cot.jsonl"
    with ChatServer(lexicon_reply(samples), delay=0.2) as server:
        command = [sys.executable, "-m", "hintgrpo.cli", "synthesize", "--task", "emobank", "--split", "train"]
        command += ["--data_dir", str(real_data_dir), "--output_file", str(output), "--limit", "30"]
        command += ["--backend", "openai", "--base_url", server.base_url, "--teacher_model", "t", "--concurrency", "2"]
        before = run_until_killed(command, output, lines=4, timeout=60, cwd=tmp_path)
        whole = before[: before.rfind(b"\n") + 1]
        assert 4 <= whole.count(b"\n") < 30
        # A kill can land inside a write; make sure the file ends in a torn record.
        with open(output, "ab") as handle:
            handle.write(b'{"id": "110CYL068_torn", "task": "emob')
        counts = synthesize(
            synth_args(real_data_dir, output, teacher_backend="openai", teacher_base_url=server.base_url, limit=30)
        )
    assert counts["skipped"] == whole.count(b"\n") and counts["accepted"] == 30 - counts["skipped"]
    assert output.read_bytes().startswith(whole)
    ids = [r["id"] for r in read_records(output)]
    assert len(ids) == len(set(ids)) == 30 and set(ids) == {s["id"] for s in samples}


@pytest.mark.parametrize(
    "task_name, split", [("emobank", "train"), ("meld_sentiment", "dev"), ("meld_emotion", "dev"), ("mustard", "all")]
)
def test_lexicon_rationales_on_real_rows_cite_present_words_and_validate(real_data_dir, task_name, split):
    task = get_task(task_name)
    lexicon = SentimentIntensityAnalyzer().lexicon
    samples = rows(real_data_dir, task_name, split, 250)
    citing = 0
    for sample in samples:
        cot = lexicon_rationale(sample, task)
        assert cot == lexicon_rationale(dict(sample), task)
        assert parse_completion(cot, task).well_formed
        assert validate_cot(cot, sample, task, tolerance=0.05 + 1e-9) is None  # rounded to one decimal
        discrimination, calibration = cot.split("</discrimination>")
        text = sample["text"].lower().replace("\u2019", "'")
        seen = text + "\n" + sample["context"].lower().replace("\u2019", "'")
        assert all(re.search(rf"\b{re.escape(w)}\b", text) for w in QUOTED.findall(discrimination)), cot
        assert all(re.search(rf"\b{re.escape(w)}\b", seen) for w in QUOTED.findall(calibration)), cot
        assert all(f"{lexicon[w]:+.1f}" == valence for w, valence in CITED_VALENCE.findall(cot))
        citing += bool(CITED_VALENCE.search(discrimination))
    assert citing > len(samples) / 4


def test_lexicon_rationale_remarks_on_negation_intensity_context_and_modalities():
    sample = {
        "id": "x",
        "task": "emobank",
        "text": "I am not happy at all, this is really terrible! Maybe tomorrow.",
        "context": "A: The trip was lovely.\nB: Great fun.",
        "label": -2.33,
        "polarity": "negative",
        "audio": [[0.0] * 5] * 3,
    }
    cot = lexicon_rationale(sample, EMOBANK)
    assert '"happy" (+2.7, negated by "not")' in cot and '"not" negates "happy"' in cot
    for remark in (
        'Intensifiers ("really")',
        'Hedges and downtoners ("maybe")',
        "exclamation",
        "(2 turns) leans positive",
    ):
        assert remark in cot
    assert "also has audio" in cot and cot.endswith("<answer>-2.3</answer>")


def test_teacher_prompt_shows_the_sample_its_gold_answer_and_modalities():
    sample = {"id": "x", "task": "emobank", "text": "Fine.", "context": "A: How was it?", "label": 0.66}
    sample |= {"polarity": "positive", "video": "clips/x.mp4"}
    system, user = teacher_messages(sample, EMOBANK)
    assert "<discrimination>polarity:" in system["content"]
    for part in ("Fine.", "A: How was it?", "video: clips/x.mp4", "Gold coarse result: positive", "Gold answer: 0.66"):
        assert part in user["content"]


@pytest.mark.parametrize(
    "completion, sample, kind",
    [
        ("It is positive.", {"label": 1.0, "polarity": "positive"}, "format"),
        ("<think>polarity: positive</think>", {"label": 1.0, "polarity": "positive"}, "format"),
        (render("negative", "e.", "c.", -1.0), {"label": 1.0, "polarity": "positive"}, "polarity"),
        (render("positive", "e.", "c.", 2.0), {"label": 1.0, "polarity": "positive"}, "answer"),
        (render("positive", "e.", "c.", 0.45), {"label": 0.6, "polarity": "positive"}, "consistency"),
        (render("positive", "e.", "c.", 0.8), {"label": 0.6, "polarity": "positive"}, None),
    ],
)
def test_validate_cot_regression(completion, sample, kind):
    problem = validate_cot(completion, sample, EMOBANK, tolerance=0.25)
    assert (problem and problem.kind) == kind


def test_validate_cot_classification():
    task = get_task("meld_emotion")
    sample = {"label": "surprise", "polarity": "positive"}
    assert validate_cot(render("positive", "e.", "c.", "surprise"), sample, task, 0.25) is None
    assert validate_cot(render("positive", "e.", "c.", "joy"), sample, task, 0.25).kind == "answer"


def test_load_cot_dataset_gives_trl_prompt_completion_rows(real_data_dir, tmp_path):
    output = tmp_path / "cot.jsonl"
    for task_name in ("meld_sentiment", "meld_emotion"):
        synthesize(synth_args(real_data_dir, output, task=task_name, split="dev", limit=4))
    assert len(read_records(output)) == 8  # the same ids, once per task
    rejected = read_records(output)[0] | {"id": "rejected_one", "status": "rejected"}
    with open(output, "a") as handle:
        handle.write(json.dumps(rejected) + "\n" + '{"id": "torn')
    size = output.stat().st_size

    dataset = load_cot_dataset(output)
    assert len(dataset) == 8 and output.stat().st_size == size  # read only: a run may still be writing
    assert set(dataset.column_names) == {"id", "task", "label", "polarity", "weight", "prompt", "completion"}
    assert is_conversational(dataset[0])
    samples = {(s["task"], s["id"]): s for s in read_records(output, repair=False)}
    for row in dataset:
        sample = samples[(row["task"], row["id"])]
        assert row["prompt"] == build_messages(sample)
        assert row["completion"] == [{"role": "assistant", "content": sample["cot"]}]
    brief = load_cot_dataset(output, task="meld_emotion", prompt_style="brief")[0]["prompt"]
    assert brief[0]["content"] == get_task("meld_emotion").instruction + (
        " Reason in the discrimination-calibration format, then answer."
    )
    assert brief[1] == load_cot_dataset(output, task="meld_emotion")[0]["prompt"][1]  # the same user turn
    emotions = load_cot_dataset(output, task="meld_emotion")
    assert len(emotions) == 4 and set(emotions["label"]) <= set(get_task("meld_emotion").labels)

    synthesize(synth_args(real_data_dir, output, limit=1))
    with pytest.raises(ValueError, match="mixes regression and classification"):
        load_cot_dataset(output)
    assert load_cot_dataset(output, task="emobank")["label"] == [rows(real_data_dir, "emobank", "train", 1)[0]["label"]]


def test_synthesize_command_reads_a_yaml_config(real_data_dir, tmp_path, capsys):
    config = tmp_path / "synth.yaml"
    config.write_text(
        f"task: mustard\ndata_dir: {real_data_dir}\nsplit: fold1_test\nbackend: lexicon\n"
        f"output_file: {tmp_path / 'cot.jsonl'}\nlimit: 3\n"
    )
    main(["synthesize", "--config", str(config)])
    assert json.loads(capsys.readouterr().out.split("\nrecords in")[0])["accepted"] == 3
    assert {r["task"] for r in read_records(tmp_path / "cot.jsonl")} == {"mustard"}


def test_transformers_teacher_generates_concurrent_calls_as_one_batch(tiny_model_dir):
    task = get_task("meld_sentiment")
    teacher = TransformersTeacher(str(tiny_model_dir), batch_size=4, max_new_tokens=4)
    prefills = []  # (rows, tokens) of each forward pass that reads prompts; decoding steps read one token a row
    forward = teacher.model.forward

    def counting_forward(input_ids, **inputs):
        if input_ids.shape[1] > 1:
            prefills.append(tuple(input_ids.shape))
        return forward(input_ids=input_ids, **inputs)

    teacher.model.forward = counting_forward
    samples = [{"task": task.name, "text": f"A: line {i}", "label": "neutral", "polarity": "neutral"} for i in range(4)]
    pool = ThreadPoolExecutor(4)
    with teacher.generating:  # hold the model until all four calls are queued
        futures = [pool.submit(teacher.complete, teacher_messages(s, task), s) for s in samples]
        while teacher.queued.qsize() < 4:
            time.sleep(0.01)
    replies = [future.result(timeout=60) for future in futures]
    pool.shutdown()
    # The system prompt all four share is read once, then the four rows' own tokens together.
    assert [rows for rows, _ in prefills] == [1, 4] and all(isinstance(reply, str) for reply in replies)


def test_transformers_backend_end_to_end(tiny_model_dir, real_data_dir, tmp_path):
    output = tmp_path / "cot.jsonl"
    args = synth_args(real_data_dir, output, teacher_backend="transformers", teacher_model=str(tiny_model_dir))
    args.limit, args.teacher_max_tries, args.teacher_max_new_tokens = 2, 2, 4
    counts = synthesize(args)
    # A tiny random model writes gibberish: every sample is tried twice, then rejected.
    assert counts["rejected"] == 2 and counts["errors"] == {"format": 4}
    assert all(r["tries"] == 2 and r["teacher"].startswith("transformers:") for r in read_records(output))
