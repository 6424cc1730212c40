"""Figures, 900 px wide: the evaluation panel (ROC, PR, threshold, histograms) and training histories."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from .metrics import HIST_BINS, compute_metrics


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


CLASS_COLORS = {"consistent": "tab:blue", "inconsistent": "tab:orange"}  # the two classes, in every figure
# one colour per condition, by name, in every figure (not the classes' blue and orange)
CONDITION_COLORS = {"zero_shot": "tab:gray", "fib_only": "tab:green", "usb_only": "tab:olive",
                    "usb_then_fib": "tab:purple", "shuffled_usb_only": "tab:pink", "shuffled_usb_then_fib": "tab:brown",
                    "minilm_fib_only": "darkseagreen", "minilm_usb_then_fib": "plum", "detector": "tab:red",
                    "nli_base": "tab:cyan"}
SERIES_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:red")
# one colour per evaluated set, by name, in every training history (the mean that selects is black)
SET_COLORS = {"fib_validation_all": "tab:purple", "fib_train_sample": "tab:green", "usb_validation": "tab:brown",
              "nli_validation": "tab:cyan", "factcheck_gpt_validation": "tab:red", "lfqa_validation": "tab:olive",
              "begin_validation": "tab:pink", "faithdial_audit_validation": "tab:gray",
              "summedits_validation": "gold", "mean": "black"}


def condition_color(name: str, position: int = 0) -> str:
    """The condition's own colour, else one by position (for names outside CONDITION_COLORS)."""
    return CONDITION_COLORS.get(name, SERIES_COLORS[position % len(SERIES_COLORS)])


def save_figure(fig, title: str, results_dir):
    """Title the figure and save it as results/<title>.png (900 px wide: a README or notebook column on GitHub)."""
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    path = Path(results_dir) / f"{_slug(title)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=900 / fig.get_size_inches()[0])
    return fig


def finish_roc_axes(ax, title: str) -> None:
    """The chance diagonal, axis labels, title and legend of a ROC panel."""
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(fontsize=8, loc="lower right")


def _threshold_curves(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(grid, precision, recall, share flagged) over thresholds 0..1; precision undefined (NaN) where none flagged."""
    grid = np.linspace(0, 1, 201)
    flagged = p[None, :] >= grid[:, None]
    tp = (flagged & (y[None, :] == 1)).sum(axis=1)
    n_flagged = flagged.sum(axis=1)
    return grid, np.where(n_flagged > 0, tp / np.maximum(n_flagged, 1), np.nan), tp / y.sum(), n_flagged / len(p)


def plot_eval(is_inconsistent, p, title: str, results_dir: str | os.PathLike = "results",
              threshold: float | None = None):
    """2 x 2: ROC, precision-recall (inconsistent = positive), precision and recall against the threshold (0.8 and
    a chosen `threshold` marked), and the two classes' histograms; saved as results/<title>.png."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve
    y, p = np.asarray(is_inconsistent, dtype=int), np.asarray(p)
    m = compute_metrics(y, p)
    fig, ((ax_roc, ax_pr), (ax_t, ax_hist)) = plt.subplots(2, 2, figsize=(9, 7.2))
    fpr, tpr, _ = roc_curve(y, p)
    ax_roc.plot(fpr, tpr, color="black", label="model")
    finish_roc_axes(ax_roc, f"ROC AUC {m['roc_auc']:.3f}")
    precision, recall, _ = precision_recall_curve(y, p)
    ax_pr.plot(recall, precision, color="black", label="model")
    ax_pr.axhline(y.mean(), ls="--", color="grey", label=f"chance ({y.mean():.2f})")
    ax_pr.set(title=f"PR AUC {m['pr_auc']:.3f}", xlabel="recall (inconsistent flagged)",
              ylabel="precision (of the flagged)", ylim=(0, 1.02))

    grid, t_precision, t_recall, share = _threshold_curves(y, p)
    ax_t.plot(grid, t_precision, label="precision")
    ax_t.plot(grid, t_recall, label="recall")
    ax_t.plot(grid, share, ls=":", color="black", label="share flagged")
    ax_t.axvline(0.8, color="grey", lw=1, ls="--", label="0.8")
    if threshold is not None and np.isfinite(threshold):
        ax_t.axvline(threshold, color="tab:red", lw=1, label=f"chosen on validation ({threshold:.2f})")
    at = "undefined (nothing flagged)" if np.isnan(m["precision_at_0.8"]) else f"{m['precision_at_0.8']:.2f}"
    ax_t.set(xlabel="threshold on P(inconsistent)", ylabel="precision, recall, share", ylim=(0, 1.02),
             xticks=np.linspace(0, 1, 6), title=f"At 0.8: precision {at}, recall {m['recall_at_0.8']:.2f}")

    for label, name in ((0, "consistent"), (1, "inconsistent")):
        values = p[y == label]
        ax_hist.hist(values, bins=HIST_BINS, weights=np.full(len(values), 1 / len(values)), alpha=0.6,
                     color=CLASS_COLORS[name], label=f"{name} (n={len(values)})")
    ax_hist.set(xlabel="P(inconsistent)", ylabel="share of the class",
                title=f"Scores per class (JS divergence {m['js_divergence']:.2f})")
    ax_pr.legend(loc="lower left", fontsize=9)
    ax_t.legend(loc="lower left", fontsize=8)
    ax_hist.legend(loc="upper center", fontsize=9)
    for ax in (ax_roc, ax_pr, ax_t, ax_hist):
        ax.tick_params(labelsize=9)
    return save_figure(fig, title, results_dir)


def plot_compare(is_inconsistent, runs: dict[str, np.ndarray], title: str, results_dir: str | os.PathLike = "results"):
    """Conditions on the same axes: ROC and precision-recall curves, and each condition's per-class histograms
    (consistent filled, inconsistent outlined); each condition in its own colour."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve
    y = np.asarray(is_inconsistent, dtype=int)
    fig = plt.figure(figsize=(9, 6.4))
    grid = fig.add_gridspec(2, len(runs))
    ax_roc, ax_pr = fig.add_subplot(grid[0, :len(runs) // 2 or 1]), fig.add_subplot(grid[0, len(runs) // 2 or 1:])
    for k, (name, p) in enumerate(runs.items()):
        color = condition_color(name, k)
        fpr, tpr, _ = roc_curve(y, p)
        ax_roc.plot(fpr, tpr, color=color, label=f"{name} ({roc_auc_score(y, p):.3f})")
        precision, recall, _ = precision_recall_curve(y, p)
        ax_pr.plot(recall, precision, color=color, label=name)
        ax = fig.add_subplot(grid[1, k])
        for label, cls, style in ((0, "consistent", dict(alpha=0.5)), (1, "inconsistent", dict(histtype="step", lw=2))):
            values = np.asarray(p)[y == label]
            ax.hist(values, bins=HIST_BINS, weights=np.full(len(values), 1 / len(values)), color=color,
                    label=cls, **style)
        ax.set(title=name, xlabel="P(inconsistent)", ylabel="share of the class" if k == 0 else None)
        ax.title.set_color(color)
        ax.legend(fontsize=8, loc="upper center")
    finish_roc_axes(ax_roc, "ROC (AUC in the legend)")
    ax_pr.axhline(y.mean(), ls="--", color="grey")
    ax_pr.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02), title="Precision-recall (inconsistent = positive)")
    ax_pr.legend(fontsize=8, loc="lower left")
    return save_figure(fig, title, results_dir)


def plot_history(result, title: str, results_dir: str | os.PathLike = "results"):
    """A TrainResult's training loss and every watched set's ROC AUC against optimizer updates, on fixed axes (chance
    at 0.5)."""
    import matplotlib.pyplot as plt
    history = result.history
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(9, 3.6))
    # a mean over far fewer updates than the others (the stage's last, short stretch) is noise, not a trend
    window = history["update"].diff()
    loss = history["train_loss"].where(window >= 0.5 * window.median())
    ax_loss.plot(history["update"], loss, marker="o", color="black")
    ax_loss.axhline(math.log(2), ls="--", color="grey", label="ln 2 (a coin flip)")
    ax_loss.set(xlabel="optimizer update", ylabel="training loss", title="Mean loss since the last evaluation",
                ylim=(0, max(1.0, float(np.nanmax(loss.fillna(0))) * 1.05)))
    ax_loss.legend(fontsize=9)
    columns = [c for c in history.columns if c.endswith("/roc_auc")]
    for k, column in enumerate(columns):  # not the classes' blue and orange
        name = column.removesuffix("/roc_auc")
        color = SET_COLORS.get(name, SERIES_COLORS[k % len(SERIES_COLORS)])
        ax_auc.plot(history["update"], history[column], marker="o", color=color, label=name,
                    lw=2.2 if name == "mean" else 1.2)
    ax_auc.axvline(result.best_update, ls=":", color="black", label="kept weights")
    ax_auc.axhline(0.5, ls="--", color="grey", label="chance")
    ax_auc.set(xlabel="optimizer update", ylabel="ROC AUC", ylim=(0.3, 1.0), title="ROC AUC during training")
    ax_auc.legend(fontsize=7 if len(columns) > 3 else 9, loc="lower right", ncol=2 if len(columns) > 3 else 1)
    return save_figure(fig, title, results_dir)
