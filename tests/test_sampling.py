import json
from collections import Counter

import pytest

from hintgrpo.data.errors import DataError
from hintgrpo.trainers.sampling import HardPoolSampler, hard_pool_ids, hard_rows

ROWS, POOL = 100, list(range(10))


def draws(sampler: HardPoolSampler, epochs: int) -> list[int]:
    return [index for _ in range(epochs) for index in sampler]


def test_prompts_come_from_the_pool_at_the_set_share_each_row_equally_often():
    sampler = HardPoolSampler(data_source=range(ROWS), mini_repeat_count=1, hard_rows=POOL, hard_share=0.3, seed=0)
    drawn = draws(sampler, epochs=300)
    counts = Counter(drawn)
    from_pool = sum(counts[row] for row in POOL) / len(drawn)
    assert from_pool == pytest.approx(0.3, abs=0.01)  # binomial sd 0.0026 over 30,000 draws
    # Without replacement within each side: every pooled row, and every other row, is drawn about equally often.
    pool_counts = [counts[row] for row in POOL]
    other_counts = [counts[row] for row in range(10, ROWS)]
    assert max(pool_counts) - min(pool_counts) <= 1
    assert max(other_counts) - min(other_counts) <= 1
    assert pool_counts[0] == pytest.approx(0.3 * len(drawn) / len(POOL), rel=0.04)
    assert other_counts[0] == pytest.approx(0.7 * len(drawn) / (ROWS - len(POOL)), rel=0.04)


def test_groups_repeat_each_prompt_and_every_rank_draws_the_same_order():
    def sampler():
        return HardPoolSampler(
            data_source=range(ROWS), mini_repeat_count=4, batch_size=2, repeat_count=2, hard_rows=POOL,
            hard_share=0.5, seed=7,
        )  # fmt: skip

    drawn = list(sampler())
    assert drawn == list(sampler())
    assert len(drawn) == len(sampler())
    first_chunk = drawn[:16]  # 2 prompts x 4 completions, repeated twice (num_iterations x steps_per_generation)
    assert first_chunk[:8] == first_chunk[8:] and first_chunk[:4] == [first_chunk[0]] * 4


def write_predictions(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_the_pool_is_the_rows_with_a_wrong_polarity(tmp_path):
    records = [
        {"id": "a", "polarity": "positive", "gold_polarity": "positive"},
        {"id": "b", "polarity": "neutral", "gold_polarity": "negative"},
        {"id": "c", "polarity": None, "gold_polarity": "positive"},  # no polarity stated: wrong
    ]
    path = write_predictions(tmp_path / "predictions.jsonl", records)
    assert hard_pool_ids(path) == {"b", "c"}
    assert hard_rows(["a", "b", "c", "d"], {"b", "c"}, str(path)) == [1, 2]


def test_a_pool_that_cannot_be_used_is_refused(tmp_path):
    path = write_predictions(tmp_path / "predictions.jsonl", [{"id": "a", "answer": 0.5}])
    with pytest.raises(DataError, match=r"predictions.jsonl, row 1, field 'polarity'"):
        hard_pool_ids(path)
    with pytest.raises(DataError, match="not training rows"):
        hard_rows(["a", "b"], {"x"}, "p.jsonl")
    with pytest.raises(DataError, match="empty"):
        hard_rows(["a", "b"], set(), "p.jsonl")
    with pytest.raises(DataError, match="nothing to mix"):
        hard_rows(["a", "b"], {"a", "b"}, "p.jsonl")
