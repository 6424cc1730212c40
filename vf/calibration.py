"""Thresholds a user fits on their own labelled pairs: the threshold for a target precision with a bootstrap interval
and the precision and recall to expect on new pairs, and how many labelled pairs that takes on a given source."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .io import DataError
from .metrics import precision_recall_at, threshold_for_precision


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A threshold on P(inconsistent) fitted on labelled pairs. `expected_*` are measured on the pairs each bootstrap
    resample left out (out-of-bag), so they estimate new pairs rather than the pairs it was fitted on."""
    target_precision: float
    threshold: float  # the lowest threshold whose precision on the pairs reaches the target; NaN where none does
    threshold_low: float
    threshold_high: float
    precision: float  # on the pairs it was fitted on (optimistic)
    recall: float
    expected_precision: float
    expected_precision_low: float
    expected_precision_high: float
    expected_recall: float
    reachable: float  # share of resamples in which some threshold reaches the target
    n_pairs: int
    n_inconsistent: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        """What a user reads: the threshold and its interval, and the precision and recall to expect."""
        head = f"{self.n_pairs} labelled pairs ({self.n_inconsistent} inconsistent), target precision " \
               f"{self.target_precision:g}"
        if np.isnan(self.threshold):
            return f"{head}:\n  no threshold reaches it on these pairs (one does in {self.reachable:.0%} of resamples)"
        return (f"{head}:\n  threshold {self.threshold:.3f} [{self.threshold_low:.3f}, {self.threshold_high:.3f}]\n"
                f"  on new pairs expect precision {self.expected_precision:.2f} [{self.expected_precision_low:.2f}, "
                f"{self.expected_precision_high:.2f}] and recall {self.expected_recall:.2f} (reached in "
                f"{self.reachable:.0%} of resamples)")


def check_labels(labels, n_pairs: int) -> np.ndarray:
    """Labels as booleans (True = inconsistent); 0/1 or True/False only, one per pair, both classes present."""
    labels = np.asarray(list(labels), dtype=object)
    if len(labels) != n_pairs:
        raise DataError(f"{len(labels)} labels for {n_pairs} pairs; give one label per pair.")
    bad = [i for i, v in enumerate(labels) if not (isinstance(v, (bool, np.bool_)) or v in (0, 1))]
    if bad:
        raise DataError(f"label {bad[0]} is {labels[bad[0]]!r} ({len(bad)} such); labels are 1 (or True) for an "
                        "inconsistent summary and 0 (or False) for a consistent one.")
    y = labels.astype(bool)
    if y.all() or not y.any():
        raise DataError(f"all {n_pairs} labels are {'inconsistent' if y.all() else 'consistent'}; a threshold "
                        "needs labelled pairs of both kinds.")
    return y


def _threshold_or_nan(y: np.ndarray, p: np.ndarray, target: float) -> float:
    """threshold_for_precision, or NaN where no threshold reaches the target or the pairs hold one class only."""
    if y.all() or not y.any():
        return float("nan")
    try:
        return threshold_for_precision(y, p, target)
    except ValueError:  # no threshold reaches the target on these pairs
        return float("nan")


def calibrate_threshold(is_inconsistent, p, target_precision: float = 0.8, n_resamples: int = 1000,
                        seed: int = 0) -> Calibration:
    """The threshold for target_precision on these pairs, with a 95% bootstrap interval over pairs, and the precision
    and recall it gives on the pairs each resample left out."""
    p = np.asarray(p, dtype=float)
    y = check_labels(is_inconsistent, len(p))
    if not 0 < target_precision < 1:
        raise ValueError(f"target_precision must be between 0 and 1, got {target_precision}")
    threshold = _threshold_or_nan(y, p, target_precision)
    precision, recall = precision_recall_at(y, p, threshold) if np.isfinite(threshold) else (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    thresholds, out_of_bag = [], []
    for _ in range(n_resamples):
        drawn = rng.integers(0, len(p), len(p))
        t = _threshold_or_nan(y[drawn], p[drawn], target_precision)
        thresholds.append(t)
        left = np.setdiff1d(np.arange(len(p)), drawn)
        if np.isfinite(t) and y[left].any():
            out_of_bag.append(precision_recall_at(y[left], p[left], t))
    thresholds = np.array(thresholds)
    found = thresholds[np.isfinite(thresholds)]
    oob = np.array(out_of_bag, dtype=float).reshape(-1, 2)
    oob_precision = oob[:, 0][np.isfinite(oob[:, 0])]  # undefined where nothing left out was flagged
    low_t, high_t = np.percentile(found, [2.5, 97.5]) if len(found) else (np.nan, np.nan)
    low_p, high_p = np.percentile(oob_precision, [2.5, 97.5]) if len(oob_precision) else (np.nan, np.nan)
    return Calibration(target_precision, threshold, float(low_t), float(high_t), precision, recall,
                       float(oob_precision.mean()) if len(oob_precision) else np.nan, float(low_p), float(high_p),
                       float(np.nanmean(oob[:, 1])) if len(oob) else np.nan, float(np.isfinite(thresholds).mean()),
                       len(p), int(y.sum()))


def pairs_needed(is_inconsistent, p, sizes=(25, 50, 100, 200), target_precision: float = 0.8,
                 tolerance: float = 0.05, repeats: int = 200, seed: int = 0) -> pd.DataFrame:
    """How many labelled pairs of a source a user needs: per size n, draw n pairs `repeats` times, fit the threshold
    on them and apply it to the rest of the source; the share of draws whose precision there lies within target ±
    tolerance, and the median precision and recall. A draw whose n pairs reach no threshold counts as a miss."""
    y, p = np.asarray(is_inconsistent, dtype=bool), np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        if n >= len(p):
            rows.append(dict(pairs=n, draws=0, within_tolerance=np.nan, reached=np.nan, median_precision=np.nan,
                             median_recall=np.nan, source_pairs=len(p)))
            continue
        precisions, recalls, reached = [], [], 0
        for _ in range(repeats):
            drawn = rng.choice(len(p), n, replace=False)
            rest = np.setdiff1d(np.arange(len(p)), drawn)
            t = _threshold_or_nan(y[drawn], p[drawn], target_precision)
            if np.isfinite(t):
                reached += 1
                precision, recall = precision_recall_at(y[rest], p[rest], t)
            else:
                precision, recall = np.nan, np.nan
            precisions.append(precision), recalls.append(recall)
        precisions = np.array(precisions)
        within = np.abs(precisions - target_precision) <= tolerance  # NaN compares False: a miss
        rows.append(dict(pairs=n, draws=repeats, within_tolerance=float(within.mean()), reached=reached / repeats,
                         median_precision=float(np.nanmedian(precisions)) if reached else np.nan,
                         median_recall=float(np.nanmedian(recalls)) if reached else np.nan, source_pairs=len(p)))
    return pd.DataFrame(rows)


def pairs_enough(table: pd.DataFrame, share: float = 0.8) -> float:
    """From pairs_needed's rows: the fewest labelled pairs at which at least `share` of the draws land within the
    tolerance; inf where every size was tried and none does; NaN (undefined) where the source was too small to try
    the larger sizes and the smaller ones fell short."""
    enough = table[table["within_tolerance"] >= share]
    if len(enough):
        return float(enough["pairs"].min())
    return float("inf") if (table["draws"] > 0).all() else float("nan")
