import pytest

from hintgrpo.data import DataError
from hintgrpo.jsonl import read_records, write_jsonl


def test_a_last_line_cut_by_a_kill_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "records.jsonl"
    write_jsonl(path, [{"id": "a"}, {"id": "b"}])
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"id": "c", "compl')
    assert read_records(path) == [{"id": "a"}, {"id": "b"}]
    assert path.read_bytes() == whole


def test_a_damaged_line_with_records_after_it_raises_and_loses_nothing(tmp_path):
    path = tmp_path / "records.jsonl"
    damaged = b'{"id": "a"}\n{"id": \n{"id": "c"}\n'
    path.write_bytes(damaged)
    with pytest.raises(DataError, match=r"records.jsonl, row 2: not a JSON record"):
        read_records(path)
    assert path.read_bytes() == damaged
