"""Metrics of P(inconsistent) against labels, in one place: the registry, thresholds and the binary-choice win."""
from __future__ import annotations


import numpy as np
import pandas as pd

from .config import ConfigError
from .io import DataError


THRESHOLDS = (0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.65, 0.60)
HIST_BINS = np.linspace(0.0, 1.0, 21)  # shared by both classes' histograms and the JS divergence


def js_divergence(p_a, p_b, bins=HIST_BINS) -> float:
    """Jensen-Shannon divergence (base 2, 0..1) between two samples' histograms on shared bins."""
    from scipy.spatial.distance import jensenshannon
    h_a, _ = np.histogram(np.asarray(p_a), bins=bins)
    h_b, _ = np.histogram(np.asarray(p_b), bins=bins)
    if h_a.sum() == 0 or h_b.sum() == 0:
        return float("nan")
    return float(jensenshannon(h_a, h_b, base=2) ** 2)  # scipy returns the distance, the divergence's root


def choice_wins(is_inconsistent: np.ndarray, p: np.ndarray) -> tuple[float, int]:
    """One document's (wins, comparisons) over its (consistent, inconsistent) summary pairs: a win is the
    consistent summary scored lower; a tie counts half."""
    diff = p[is_inconsistent][None, :] - p[~is_inconsistent][:, None]
    return (diff > 0).sum() + 0.5 * (diff == 0).sum(), diff.size


def choice_accuracy(is_inconsistent, p, doc_ids) -> float:
    """FIB's binary-choice accuracy: the share of wins (choice_wins) over every document's pairs of summaries."""
    df = pd.DataFrame({"y": np.asarray(is_inconsistent, dtype=bool), "p": p, "doc": np.asarray(doc_ids)})
    wins = total = 0.0
    for _, group in df.groupby("doc"):
        w, n = choice_wins(group["y"].to_numpy(), group["p"].to_numpy())
        wins, total = wins + w, total + n
    return wins / total if total else float("nan")


def precision_recall_at(is_inconsistent, p, threshold: float) -> tuple[float, float]:
    """Precision and recall of flagging P(inconsistent) >= threshold; precision is undefined (NaN), not 0, where
    nothing is flagged."""
    from sklearn.metrics import precision_score, recall_score
    flagged = np.asarray(p) >= threshold
    return (precision_score(is_inconsistent, flagged, zero_division=np.nan),
            recall_score(is_inconsistent, flagged, zero_division=0))


def best_f1_threshold(is_inconsistent, p) -> float:
    """The threshold on P(inconsistent) that maximises F1 (choose it on validation, then apply it elsewhere)."""
    from sklearn.metrics import precision_recall_curve
    precision, recall, thresholds = precision_recall_curve(np.asarray(is_inconsistent, dtype=int), p)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision),
                   where=precision + recall > 0)
    return float(thresholds[np.argmax(f1[:-1])])


def check_scores(is_inconsistent, p) -> tuple[np.ndarray, np.ndarray]:
    """(labels as 0/1, scores as floats), or a clear error for non-finite scores or a one-class set."""
    y, p = np.asarray(is_inconsistent, dtype=int), np.asarray(p, dtype=float)
    if not np.isfinite(p).all():
        raise DataError(f"{int((~np.isfinite(p)).sum())} scores are NaN or infinite: the model's outputs are not "
                         "finite (diverged training or corrupt weights).")
    if len(y) == 0 or y.min() == y.max():
        raise DataError(f"the evaluation set has {len(y)} pairs and one class only ({np.bincount(y, minlength=2)} "
                         "consistent/inconsistent): ROC and PR AUC are undefined. Evaluate on both classes.")
    return y, p


def threshold_for_precision(is_inconsistent, p, target: float) -> float:
    """The lowest threshold on P(inconsistent) whose precision reaches `target` (choose it on validation): the most
    recall at that precision. Raises when no threshold reaches it."""
    from sklearn.metrics import precision_recall_curve
    precision, _, thresholds = precision_recall_curve(np.asarray(is_inconsistent, dtype=int), p)
    reached = np.flatnonzero(precision[:-1] >= target)
    if not len(reached):
        raise ConfigError(f"no threshold reaches precision {target} (the best is {precision[:-1].max():.3f}); "
                         "lower the target.")
    return float(thresholds[reached[0]])


def _roc_auc(y, p, doc_ids=None) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, p))


def _pr_auc(y, p, doc_ids=None) -> float:
    from sklearn.metrics import average_precision_score
    return float(average_precision_score(y, p))


def _js(y, p, doc_ids=None) -> float:
    return js_divergence(p[y == 0], p[y == 1])


def _choice(y, p, doc_ids=None) -> float:
    return choice_accuracy(y, p, doc_ids) if doc_ids is not None else float("nan")


# every threshold-free metric, by name: f(labels as 0/1, scores, doc_ids or None) -> float. The Evaluator (those
# marked True, scored at every in-training evaluation), compute_metrics and the bootstrap all iterate this table,
# and results/metrics.csv takes a new one as a new column.
METRICS = {"roc_auc": (_roc_auc, True), "pr_auc": (_pr_auc, True), "js_divergence": (_js, True),
           "choice_accuracy": (_choice, False)}
IN_TRAINING_METRICS = tuple(name for name, (_, in_training) in METRICS.items() if in_training)


def balanced_accuracy_at(is_inconsistent, p, threshold: float) -> float:
    """The mean of the recall on each class when flagging P(inconsistent) >= threshold (0.5 is chance)."""
    from sklearn.metrics import balanced_accuracy_score
    return float(balanced_accuracy_score(np.asarray(is_inconsistent, dtype=int), np.asarray(p) >= threshold))


def threshold_for_false_positive_rate(is_inconsistent, p, target: float) -> float:
    """The lowest threshold that flags at most `target` of the consistent summaries (choose it on validation)."""
    y, p = np.asarray(is_inconsistent, dtype=bool), np.asarray(p, dtype=float)
    consistent = np.sort(p[~y])[::-1]
    allowed = int(np.floor(target * len(consistent)))  # consistent scores that may reach the threshold
    if allowed >= len(consistent):
        return float(consistent.min())
    return float(np.nextafter(consistent[allowed], np.inf))  # just above the first score that must stay below


def compute_metrics(is_inconsistent, p, doc_ids=None, threshold: float | None = None) -> dict:
    """Every METRICS entry (choice accuracy given doc_ids), precision and recall on the threshold grid, and, given a
    threshold, precision, recall, F1 and balanced accuracy at it."""
    from sklearn.metrics import f1_score
    y, p = check_scores(is_inconsistent, p)
    m = {"n_pairs": len(y), "n_inconsistent": int(y.sum())}
    m.update({name: f(y, p, doc_ids) for name, (f, _) in METRICS.items()})
    for t in THRESHOLDS:
        m[f"precision_at_{t:g}"], m[f"recall_at_{t:g}"] = precision_recall_at(y, p, t)
    if threshold is not None:
        precision, recall = precision_recall_at(y, p, threshold)
        m.update(threshold=threshold, precision_at_threshold=precision, recall_at_threshold=recall,
                 f1_at_threshold=f1_score(y, p >= threshold, zero_division=0),
                 balanced_accuracy=balanced_accuracy_at(y, p, threshold))
    return {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in m.items()}
