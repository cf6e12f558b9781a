"""Tests for hintgrpo.metrics: every expected value is worked out by hand in the comments."""

import math
import warnings

import numpy as np
import pytest

from hintgrpo.metrics import SUITES, compute_metrics

MOSI_KEYS = {"MAE", "Corr", "Mult_acc_7", "Mult_acc_5", "Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score"}
SIMS_KEYS = {"MAE", "Corr", "Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score"}


def close(value):
    return pytest.approx(value, abs=1e-12)


# ---------------------------------------------------------------------------------------------- mosi

MOSI_PREDS = [0.5, 1.5, 2.5, -0.5, 3.7, -2.4, 0.0]
MOSI_TRUTH = [0.0, 2.0, 3.0, 0.0, 2.6, -1.5, 0.4]


def test_mosi_hand_computed():
    m = compute_metrics(MOSI_PREDS, MOSI_TRUTH, "mosi")
    assert set(m) == MOSI_KEYS
    # |p - t| = 0.5, 0.5, 0.5, 0.5, 1.1, 0.9, 0.4 -> sum 4.4
    assert m["MAE"] == close(4.4 / 7)
    # Sp = 5.3, St = 6.5, Spt = 23.72, Spp = 28.45, Stt = 22.17, n = 7
    # Sxy = 23.72 - 5.3*6.5/7 = 131.59/7;  Sxx = 28.45 - 5.3^2/7 = 171.06/7;  Syy = 22.17 - 6.5^2/7 = 112.94/7
    assert m["Corr"] == close(131.59 / math.sqrt(171.06 * 112.94))
    # Acc-7: preds clipped to [-3, 3] = 0.5 1.5 2.5 -0.5 3.0 -2.4 0.0 -> round (half-to-even) 0 2 2 -0 3 -2 0
    #        truth                     = 0.0 2.0 3.0  0.0 2.6 -1.5 0.4 -> round                0 2 3  0 3 -2 0
    #        only row 2 (2 vs 3) differs -> 6/7
    assert m["Mult_acc_7"] == 6 / 7
    # Acc-5: clip to [-2, 2]: preds 2.5 -> 2, 3.7 -> 2, -2.4 -> -2; truth 3.0 -> 2, 2.6 -> 2
    #        rounded preds 0 2 2 -0 2 -2 0, truth 0 2 2 0 2 -2 0 -> 7/7
    assert m["Mult_acc_5"] == 1.0
    # Has0: truth >= 0: T T T T T F T;  pred >= 0: T T T F T F T (0.0 >= 0) -> row 3 wrong -> 6/7
    assert m["Has0_acc_2"] == 6 / 7
    # True  (support 6): TP 5, FP 0, FN 1 -> F1 = 10/11
    # False (support 1): TP 1, FP 1, FN 0 -> F1 = 2/3
    # weighted = (6 * 10/11 + 1 * 2/3) / 7 = 202/231
    assert m["Has0_F1_score"] == close(202 / 231)
    # Non0: rows 0 and 3 (truth == 0) dropped; rows 1 2 4 5 6:
    #   truth > 0: T T T F T;  pred > 0: T T T F F (pred 0.0 is not > 0) -> 4/5
    assert m["Non0_acc_2"] == 4 / 5
    # True (support 4): TP 3, FP 0, FN 1 -> 6/7;  False (support 1): TP 1, FP 1, FN 0 -> 2/3
    # weighted = (4 * 6/7 + 2/3) / 5 = 86/105
    assert m["Non0_F1_score"] == close(86 / 105)


def test_mosi_accepts_numpy_and_returns_python_floats():
    m = compute_metrics(np.array(MOSI_PREDS), np.array(MOSI_TRUTH), "mosi")
    assert m == compute_metrics(MOSI_PREDS, MOSI_TRUTH, "mosi")
    assert all(type(v) is float for v in m.values())


def test_mosi_rounding_is_half_to_even():
    preds = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5]
    # np.round: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -1.5 -> -2, -2.5 -> -2
    assert compute_metrics(preds, [0, 2, 2, 0, -2, -2], "mosi")["Mult_acc_7"] == 1.0
    # half-up / half-away-from-zero rounding would match these instead: none match
    m = compute_metrics(preds, [1, 1, 3, -1, -1, -3], "mosi")
    assert m["Mult_acc_7"] == 0.0
    # Acc-5 clips to [-2, 2] first: preds -> 0 2 2 -0 -2 -2, truth 1 1 3 -1 -1 -3 -> clip -> 1 1 2 -1 -1 -2
    # matches at rows 2 and 5 -> 2/6
    assert m["Mult_acc_5"] == 2 / 6


def test_mosi_clipping_before_rounding():
    # 3.6 and 5.0 both clip to 3 for Acc-7 (unclipped they round to 4 and 5); -9 and -2.6 both clip to -3.
    # For Acc-5 all four clip to the bounds: 2, 2, -2, -2 vs 2, 2, -2, -2.
    m = compute_metrics([3.6, 5.0, -9.0, -2.6], [5.0, 3.0, -2.6, -3.0], "mosi")
    assert m["Mult_acc_7"] == 1.0
    assert m["Mult_acc_5"] == 1.0
    # MAE uses the raw values: 1.4, 2.0, 6.4, 0.4 -> 10.2 / 4
    assert m["MAE"] == close(10.2 / 4)


def test_mosi_non0_drops_zero_truths_including_negative_zero():
    # truth -0.0 == 0, so rows 0 and 2 are dropped; row 1: truth > 0 but pred -1 -> 0/1 correct
    m = compute_metrics([5.0, -1.0, -3.0], [-0.0, 1.0, 0.0], "mosi")
    assert m["Non0_acc_2"] == 0.0
    # only class True has support (1) and its F1 is 0
    assert m["Non0_F1_score"] == 0.0
    # Has0: truth >= 0: T T T; pred >= 0: T F F -> 1/3
    assert m["Has0_acc_2"] == 1 / 3


def test_mosi_non0_is_nan_when_every_truth_is_zero():
    m = compute_metrics([1.0, -1.0], [0.0, 0.0], "mosi")
    assert math.isnan(m["Non0_acc_2"]) and math.isnan(m["Non0_F1_score"])
    assert m["Has0_acc_2"] == 0.5  # truth >= 0: T T; pred >= 0: T F


def test_corr_simple_values():
    # deviations from the mean 2.5: p = -1.5 -0.5 0.5 1.5, t = -1.5 0.5 -0.5 1.5
    # Sxy = 2.25 - 0.25 - 0.25 + 2.25 = 4, Sxx = Syy = 5 -> r = 0.8
    assert compute_metrics([1, 2, 3, 4], [1, 3, 2, 4], "mosi")["Corr"] == close(0.8)
    assert compute_metrics([1, 2, 3], [3, 2, 1], "mosi")["Corr"] == close(-1.0)


@pytest.mark.parametrize(
    ("suite", "preds", "truth"),
    [
        ("mosi", [1.0, 1.0, 1.0], [0.5, 1.0, 2.0]),
        ("mosi", [0.5, 1.0, 2.0], [-1.0, -1.0, -1.0]),
        ("sims", [2.0, 3.0, 5.0], [0.5, 0.1, -0.2]),  # preds are constant only after clipping to 1
        ("mosi", [0.3], [0.2]),  # a single row
        ("sims", [0.3], [0.2]),
    ],
)
def test_corr_is_nan_for_constant_input_without_warnings(suite, preds, truth):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = compute_metrics(preds, truth, suite)
    assert math.isnan(m["Corr"])
    assert not math.isnan(m["MAE"])


# ---------------------------------------------------------------------------------------------- sims


def test_sims_hand_computed():
    preds = [-0.1, 0.1, 0.0, 0.7, -0.7, 1.8, -0.9]
    truth = [-0.2, 0.0, 0.2, 0.8, -0.6, 0.6, -1.5]
    m = compute_metrics(preds, truth, "sims")
    assert set(m) == SIMS_KEYS
    # clipped to [-1, 1]: preds -0.1 0.1 0.0 0.7 -0.7 1.0 -0.9;  truth -0.2 0.0 0.2 0.8 -0.6 0.6 -1.0
    # MAE on clipped: 0.1 0.1 0.2 0.1 0.1 0.4 0.1 -> 1.1 / 7
    assert m["MAE"] == close(1.1 / 7)
    # Sp = 0.1, St = -0.2, Spt = 2.5, Spp = 2.81, Stt = 2.44, n = 7
    # Sxy = 2.5 + 0.02/7 = 17.52/7;  Sxx = 2.81 - 0.01/7 = 19.66/7;  Syy = 2.44 - 0.04/7 = 17.04/7
    assert m["Corr"] == close(17.52 / math.sqrt(19.66 * 17.04))
    # 2 classes (-1.01, 0], (0, 1.01]: preds 0 1 0 1 0 1 0 (0.0 -> 0); truth 0 0 1 1 0 1 0 -> rows 1, 2 wrong
    assert m["Mult_acc_2"] == 5 / 7
    # 3 classes (-1.01, -0.1], (-0.1, 0.1], (0.1, 1.01]:
    #   preds 0 1 1 2 0 2 0 (-0.1 -> 0, 0.1 -> 1); truth 0 1 2 2 0 2 0 -> row 2 wrong
    assert m["Mult_acc_3"] == 6 / 7
    # 5 classes (-1.01, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1.01]:
    #   preds 1 2 2 3 0 4 0 (0.7 -> 3, -0.7 -> 0); truth 1 2 3 4 1 3 0 -> rows 0, 1, 6 right
    assert m["Mult_acc_5"] == 3 / 7
    # F1 on the 2-class buckets: class 0 (support 4): TP 3, FP 1 (row 2), FN 1 (row 1) -> 3/4
    #                            class 1 (support 3): TP 2, FP 1 (row 1), FN 1 (row 2) -> 2/3
    # weighted = (4 * 3/4 + 3 * 2/3) / 7 = 5/7
    assert m["F1_score"] == close(5 / 7)


@pytest.mark.parametrize(
    ("metric", "edge", "same", "other"),
    [
        ("Mult_acc_2", 0.0, -0.05, 0.05),  # 0 belongs to (-1.01, 0]
        ("Mult_acc_3", -0.1, -0.15, -0.05),  # -0.1 belongs to (-1.01, -0.1]
        ("Mult_acc_3", 0.1, 0.05, 0.15),  # 0.1 belongs to (-0.1, 0.1]
        ("Mult_acc_5", -0.7, -0.75, -0.65),  # -0.7 belongs to (-1.01, -0.7]
        ("Mult_acc_5", -0.1, -0.15, -0.05),
        ("Mult_acc_5", 0.1, 0.05, 0.15),
        ("Mult_acc_5", 0.7, 0.65, 0.75),  # 0.7 belongs to (0.1, 0.7]
    ],
)
def test_sims_buckets_are_left_open_right_closed(metric, edge, same, other):
    # the edge value shares a bucket with the value just below it, not the one just above -> 1 of 2 right
    assert compute_metrics([edge, edge], [same, other], "sims")[metric] == 0.5
    assert compute_metrics([same, other], [edge, edge], "sims")[metric] == 0.5
    assert compute_metrics([edge, edge], [same, same], "sims")[metric] == 1.0


def test_sims_clips_before_bucketing_and_mae():
    # clipped preds 1.0 -1.0 vs truth 1.0 -1.0 -> everything exact; -1.0 lies in (-1.01, ...]
    m = compute_metrics([3.0, -2.0], [1.0, -1.0], "sims")
    assert m["MAE"] == 0.0
    assert m["Mult_acc_2"] == m["Mult_acc_3"] == m["Mult_acc_5"] == m["F1_score"] == 1.0
    assert m["Corr"] == close(1.0)


# ------------------------------------------------------------------------------------- classification


def test_classification_with_unparsed_predictions():
    labels = ["positive", "negative", "neutral", "positive", "negative", "positive"]
    preds = ["positive", None, "neutral", "negative", "negative", "sarcastic"]
    m = compute_metrics(preds, labels, "classification")
    assert set(m) == {"accuracy", "weighted_f1"}
    # right: rows 0, 2, 4 -> 3/6
    assert m["accuracy"] == 0.5
    # negative (support 2): TP 1 (row 4), FP 1 (row 3), FN 1 (row 1, None)  -> 2/4 = 1/2
    # neutral  (support 1): TP 1, FP 0, FN 0                                 -> 1
    # positive (support 3): TP 1 (row 0), FP 0, FN 2 (row 3, row 5)          -> 2/4 = 1/2
    # None / "sarcastic" are not gold classes and get no weight:
    # weighted = (2 * 1/2 + 1 * 1 + 3 * 1/2) / 6 = 3.5/6 = 7/12
    assert m["weighted_f1"] == close(7 / 12)
    assert all(type(v) is float for v in m.values())


def test_classification_all_unparsed_and_all_right():
    labels = ["sarcastic", "sincere", "sincere"]
    assert compute_metrics([None, None, None], labels, "classification") == {"accuracy": 0.0, "weighted_f1": 0.0}
    assert compute_metrics(list(labels), labels, "classification") == {"accuracy": 1.0, "weighted_f1": 1.0}


def test_classification_none_only_hurts():
    labels = ["joy", "joy", "anger", "anger"]
    # preds joy joy anger None: joy (support 2): TP 2 -> F1 1; anger (support 2): TP 1, FN 1 -> 2/3
    # weighted = (2 * 1 + 2 * 2/3) / 4 = 5/6; replacing None by a right answer gives 1, never less
    m = compute_metrics(["joy", "joy", "anger", None], labels, "classification")
    assert m["accuracy"] == 3 / 4
    assert m["weighted_f1"] == close(5 / 6)


# ------------------------------------------------------------------------------------------ validation


def test_unknown_suite_lists_suites():
    with pytest.raises(ValueError, match="unknown metric suite 'mosei'") as info:
        compute_metrics([0.0], [0.0], "mosei")
    for suite in SUITES:
        assert suite in str(info.value)


@pytest.mark.parametrize("suite", SUITES)
def test_length_mismatch_and_empty_input(suite):
    with pytest.raises(ValueError, match="differ in length: 2 vs 1"):
        compute_metrics([0.0, 1.0], [0.0], suite)
    with pytest.raises(ValueError, match="empty"):
        compute_metrics([], [], suite)


@pytest.mark.parametrize("suite", ["mosi", "sims"])
def test_unparsed_regression_predictions_raise(suite):
    with pytest.raises(ValueError, match="2 of 4 preds"):
        compute_metrics([0.5, None, float("nan"), 1.0], [0.0, 1.0, 2.0, 3.0], suite)
    with pytest.raises(ValueError, match="1 of 2 preds"):
        compute_metrics(np.array([np.nan, 1.0]), [0.0, 1.0], suite)
    with pytest.raises(ValueError, match="1 of 2 preds"):
        compute_metrics([float("inf"), 1.0], [0.0, 1.0], suite)
    with pytest.raises(ValueError, match="1 of 2 labels"):
        compute_metrics([0.0, 1.0], [float("nan"), 1.0], suite)
    with pytest.raises(ValueError, match="numbers"):
        compute_metrics(["good", 1.0], [0.0, 1.0], suite)


def test_classification_labels_must_not_be_none():
    with pytest.raises(ValueError, match="None"):
        compute_metrics(["joy"], [None], "classification")
