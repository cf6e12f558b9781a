"""MMSA-compatible evaluation metrics.

The regression suites mirror ``MetricsTop`` in thuiar/MMSA ``src/MMSA/utils/metricsTop.py``:

* ``"mosi"`` (CMU-MOSI, CMU-MOSEI, and EmoBank on the MOSI scale) = ``__eval_mosei_regression``:
  MAE and Pearson Corr on the raw values; Mult_acc_7 / Mult_acc_5 clip both sides to [-3, 3] / [-2, 2],
  round half-to-even (``np.round``) and count exact matches; Has0_* compare ``truth >= 0`` with
  ``pred >= 0``; Non0_* keep only the rows whose truth is non-zero and compare ``> 0`` with ``> 0``.
  The F1 scores are sklearn's ``f1_score(truth, pred, average="weighted")``.
* ``"sims"`` (CH-SIMS) = ``__eval_sims_regression``: both sides clipped to [-1, 1] first (MAE and Corr
  use the clipped values); Mult_acc_2/3/5 bucket both sides into left-open, right-closed intervals with
  edges [-1.01, 0, 1.01], [-1.01, -0.1, 0.1, 1.01] and [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01];
  F1_score is the weighted F1 of the 2-class buckets.

Deliberate differences from MMSA: values are returned unrounded (MMSA rounds the MOSI/MOSEI results to 4
decimals); the arithmetic is float64 (MMSA evaluates float32 tensors); Non0_* are nan when no truth is
non-zero (MMSA raises IndexError there); ``zero_division=0`` is passed to ``f1_score``, which is the value
sklearn's default returns anyway, without the warning.

The ``"classification"`` suite (accuracy and weighted F1 over class-name labels) has no MMSA counterpart.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score

SUITES = ("mosi", "sims", "classification")

_SIMS_EDGES = {
    "Mult_acc_2": (-1.01, 0.0, 1.01),
    "Mult_acc_3": (-1.01, -0.1, 0.1, 1.01),
    "Mult_acc_5": (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01),
}


def compute_metrics(preds: Sequence, labels: Sequence, suite: str) -> dict[str, float]:
    """Score predictions against gold labels with one metric suite (see the module docstring).

    Regression suites ("mosi", "sims") take numbers. A None, NaN or infinite prediction (an unparseable
    output) cannot be scored, so it raises ValueError; substituting a value is the caller's decision.
    Corr is nan when either side is constant (or has one element), as with MMSA's ``np.corrcoef``.

    The "classification" suite takes class names and returns ``accuracy`` and ``weighted_f1``. A None
    prediction, or any prediction that is not a gold class, counts as wrong; the weighted F1 averages over
    the gold classes only (weighted by their support), so such predictions can only lower it.

    Raises ValueError for an unknown suite, empty input, mismatched lengths or missing labels.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown metric suite {suite!r}; expected one of: {', '.join(SUITES)}")
    if len(preds) != len(labels):
        raise ValueError(f"preds and labels differ in length: {len(preds)} vs {len(labels)}")
    if len(labels) == 0:
        raise ValueError("cannot compute metrics on empty input")
    if suite == "classification":
        return _classification(preds, labels)
    pred_arr, label_arr = _scores(preds, "preds"), _scores(labels, "labels")
    return _mosi(pred_arr, label_arr) if suite == "mosi" else _sims(pred_arr, label_arr)


def _scores(values: Sequence, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)  # None becomes nan
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numbers for a regression suite: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        hint = " (unparseable outputs: substitute a value before calling)" if what == "preds" else ""
        raise ValueError(f"{bad} of {arr.size} {what} are None/NaN/inf; regression metrics cannot score them{hint}")
    return arr


def _acc(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(pred == truth))


def _f1(truth: np.ndarray, pred: np.ndarray, **kwargs) -> float:
    return float(f1_score(truth, pred, average="weighted", zero_division=0, **kwargs))


def _mae_corr(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # constant input: corrcoef is nan
        corr = float(np.corrcoef(pred, truth)[0][1])
    return {"MAE": float(np.mean(np.abs(pred - truth))), "Corr": corr}


def _mosi(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    out = _mae_corr(pred, truth)
    for name, bound in (("Mult_acc_7", 3.0), ("Mult_acc_5", 2.0)):
        out[name] = _acc(np.round(np.clip(pred, -bound, bound)), np.round(np.clip(truth, -bound, bound)))
    out["Has0_acc_2"] = _acc(pred >= 0, truth >= 0)
    out["Has0_F1_score"] = _f1(truth >= 0, pred >= 0)
    non_zero = truth != 0  # MMSA: [i for i, e in enumerate(test_truth) if e != 0]
    if non_zero.any():
        out["Non0_acc_2"] = _acc(pred[non_zero] > 0, truth[non_zero] > 0)
        out["Non0_F1_score"] = _f1(truth[non_zero] > 0, pred[non_zero] > 0)
    else:
        out["Non0_acc_2"] = out["Non0_F1_score"] = math.nan
    return out


def _bucket(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Class i for values in (edges[i], edges[i + 1]], assigned like MMSA's loop."""
    classes = np.full(values.shape, -1)
    for i in range(len(edges) - 1):
        classes[np.logical_and(values > edges[i], values <= edges[i + 1])] = i
    return classes


def _sims(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    pred, truth = np.clip(pred, -1.0, 1.0), np.clip(truth, -1.0, 1.0)
    out = _mae_corr(pred, truth)
    for name, edges in _SIMS_EDGES.items():
        out[name] = _acc(_bucket(pred, edges), _bucket(truth, edges))
    out["F1_score"] = _f1(_bucket(truth, _SIMS_EDGES["Mult_acc_2"]), _bucket(pred, _SIMS_EDGES["Mult_acc_2"]))
    return out


def _classification(preds: Sequence, labels: Sequence) -> dict[str, float]:
    if any(label is None for label in labels):
        raise ValueError("labels must not contain None")
    gold = sorted(set(labels))
    index = {label: i for i, label in enumerate(gold)}
    truth = np.array([index[label] for label in labels])
    # None and non-gold predictions share class -1, which is outside `labels=` and so gets no weight.
    pred = np.array([-1 if p is None else index.get(p, -1) for p in preds])
    return {"accuracy": _acc(pred, truth), "weighted_f1": _f1(truth, pred, labels=list(range(len(gold))))}
