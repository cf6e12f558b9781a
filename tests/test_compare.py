from __future__ import annotations

import pytest

from hintgrpo.compare import PairedBootstrap
from hintgrpo.tasks import get_task

EMOBANK = get_task("emobank")
GOLD = [-1.2, -0.4, 0.0, 0.3, 0.9, 1.5]


def records(answers: list[float | None], ids: list[str] | None = None) -> list[dict]:
    ids = ids or [f"row{i}" for i in range(len(answers))]
    return [
        {"id": i, "label": gold, "gold_polarity": EMOBANK.polarity_of(gold), "answer": answer,
         "polarity": None if answer is None else EMOBANK.polarity_of(answer), "well_formed": answer is not None}
        for i, gold, answer in zip(ids, GOLD, answers, strict=True)
    ]  # fmt: skip


def test_a_constant_offset_is_an_exact_paired_difference_in_every_draw():
    exact, shifted = records(GOLD), records([g + 0.5 for g in GOLD])
    bootstrap = PairedBootstrap({"exact": [exact], "shifted": [shifted]}, EMOBANK, resamples=50)
    assert bootstrap.interval("exact", "MAE").high == 0.0
    difference = bootstrap.difference("exact", "shifted", "MAE")
    assert (difference.value, difference.low, difference.high) == pytest.approx((-0.5, -0.5, -0.5))
    # Both correlate perfectly with the gold scores wherever a draw has two distinct rows.
    assert bootstrap.difference("exact", "shifted", "Corr").value == pytest.approx(0.0)


def test_a_method_is_the_mean_of_its_seeds_and_rows_pair_by_id():
    seed_a = records(GOLD)
    seed_b = list(reversed(records([g + 1.0 for g in GOLD])))  # another order: rows pair by id
    methods = {"two_seeds": [seed_a, seed_b], "exact": [records(GOLD)]}
    bootstrap = PairedBootstrap(methods, EMOBANK, resamples=20, resample_seeds=False)
    assert bootstrap.point["two_seeds"]["MAE"] == pytest.approx(0.5)
    assert bootstrap.difference("two_seeds", "exact", "MAE").low == pytest.approx(0.5)


def test_resampled_seeds_widen_the_interval_to_the_seed_spread():
    # Seed a is exact, seed b is off by 1.0 on every row: a draw of the seeds gives 0, 0.5 or 1.0 in MAE.
    methods = {"two_seeds": [records(GOLD), records([g + 1.0 for g in GOLD])], "exact": [records(GOLD)]}
    difference = PairedBootstrap(methods, EMOBANK, resamples=200).difference("two_seeds", "exact", "MAE")
    assert difference.value == pytest.approx(0.5)
    assert (difference.low, difference.high) == pytest.approx((0.0, 1.0))


def test_other_rows_or_a_row_predicted_twice_are_refused():
    with pytest.raises(ValueError, match="other rows"):
        PairedBootstrap({"a": [records(GOLD)], "b": [records(GOLD, [f"x{i}" for i in range(6)])]}, EMOBANK)
    twice = records(GOLD)
    twice[1]["id"] = twice[0]["id"]
    with pytest.raises(ValueError, match="predicted twice"):
        PairedBootstrap({"a": [twice]}, EMOBANK)
