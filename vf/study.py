"""The study's summary: each condition over seeds on FIB test, document-bootstrap and seed-level intervals, the lifts
between conditions (with the shuffled-label control), and the paired figure; written beside the scores it reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .config import INCONSISTENT, Config
from .metrics import HIST_BINS
from .results import study_folder
from .uncertainty import DocumentTable, STUDY_METRICS, bootstrap_study
from .plots import CLASS_COLORS, condition_color, finish_roc_axes, save_figure

BEFORE_NLI = "minilm_"  # a condition run from the packaged MiniLM, without the NLI stage: the before


def study_conditions(source: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The conditions to train, and the lifts (a - b) to report. shuffled_<source>_then_fib is the control: the same
    stage with its training labels permuted, so a lift it shares comes from the extra updates, not the labels.
    fib_only is trained to convergence (Config.fib_only_epochs, patience); minilm_* start without the NLI base."""
    then, only, shuffled = f"{source}_then_fib", f"{source}_only", f"shuffled_{source}_then_fib"
    lifts = [(then, "fib_only"), (shuffled, "fib_only"), (then, shuffled), (only, "zero_shot"),
             (only, shuffled.replace("_then_fib", "_only")), ("fib_only", "zero_shot"),
             ("fib_only", f"{BEFORE_NLI}fib_only"), (then, f"{BEFORE_NLI}{then}")]
    return ["zero_shot", "fib_only", then, shuffled, f"{BEFORE_NLI}fib_only", f"{BEFORE_NLI}{then}"], lifts


def per_seed_metrics(full: pd.DataFrame, balanced_pair_ids, runs: dict[str, dict[int, np.ndarray]],
                     lifts: list[tuple[str, str]] = ()) -> pd.DataFrame:
    """Each seed's metrics on the whole split, and each lift a - b on the seeds both conditions ran."""
    table = DocumentTable(full, balanced_pair_ids)
    all_docs = np.arange(len(table.docs))
    rows = {(c, s): table.metrics(p, all_docs) for c, by_seed in runs.items() for s, p in sorted(by_seed.items())}
    for a, b in lifts:
        for s in sorted(set(runs[a]) & set(runs[b])):
            rows[(f"{a} - {b}", s)] = {m: rows[(a, s)][m] - rows[(b, s)][m] for m in STUDY_METRICS}
    frame = pd.DataFrame.from_dict(rows, orient="index")[list(STUDY_METRICS)]
    return frame.rename_axis(["condition", "seed"]).reset_index()


def seed_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval over seeds: the spread between training runs, which a document bootstrap misses."""
    from scipy import stats
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        raise ValueError(f"a seed interval needs at least 2 seeds, got {len(values)}.")
    low, high = stats.t.interval(confidence, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    return float(values.mean()), float(low), float(high)


def plot_study(full: pd.DataFrame, balanced_pair_ids, by_seed: dict[str, dict[int, np.ndarray]], title: str,
               results_dir: Path):
    """Top: the mean ROC curve per condition, and each seed's ROC AUC with the same seed joined across conditions;
    bottom: each condition's per-class histograms as shares of the class, seeds pooled; all on the 1:1 test pairs."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve
    balanced = full["pair_id"].isin(set(balanced_pair_ids)).to_numpy()
    y = (full["label"] == INCONSISTENT).to_numpy()[balanced]
    fig = plt.figure(figsize=(9, 7))  # 9 inches: 900 px, a notebook's width on GitHub, with text a reader can read
    grid = fig.add_gridspec(2, len(by_seed))
    half = max(1, len(by_seed) // 2)
    ax_roc, ax_auc = fig.add_subplot(grid[0, :half]), fig.add_subplot(grid[0, half:])
    grid_fpr = np.linspace(0, 1, 101)
    aucs = {c: {s: roc_auc_score(y, p[balanced]) for s, p in ps.items()} for c, ps in by_seed.items()}
    for seed in sorted({s for ps in by_seed.values() for s in ps}):  # one grey line per seed, across conditions
        xs = [k for k, c in enumerate(by_seed) if seed in aucs[c]]
        ax_auc.plot(xs, [aucs[c][seed] for c in by_seed if seed in aucs[c]], color="lightgrey", lw=0.8, zorder=1)
    for k, (condition, ps) in enumerate(by_seed.items()):
        color = condition_color(condition, k)
        tprs = [np.interp(grid_fpr, *roc_curve(y, p[balanced])[:2]) for p in ps.values()]
        ax_roc.plot(grid_fpr, np.mean(tprs, axis=0), color=color, lw=1.8, label=condition)
        ax_auc.scatter(np.full(len(ps), k), list(aucs[condition].values()), color=color, zorder=2)
        ax_auc.plot([k - 0.3, k + 0.3], [np.mean(list(aucs[condition].values()))] * 2, color="black", lw=2)
        ax = fig.add_subplot(grid[1, k], sharey=None if k == 0 else fig.axes[2])
        pooled, labels = np.concatenate([p[balanced] for p in ps.values()]), np.tile(y, len(ps))
        for mask, name in ((~labels, "consistent"), (labels, "inconsistent")):
            ax.hist(pooled[mask], bins=HIST_BINS, weights=np.full(mask.sum(), 1 / mask.sum()), alpha=0.6,
                    color=CLASS_COLORS[name], label=name)
        ax.set_title(f"{condition}\n({len(ps)} seed{'s' * (len(ps) > 1)})", fontsize=9, color=color)
        ax.set_xlabel("P(inconsistent)", fontsize=9)
        ax.tick_params(labelsize=8)
        if k == 0:
            ax.set_ylabel("share of the class", fontsize=9)
        else:
            ax.tick_params(labelleft=False)
        if k == len(by_seed) - 1:
            ax.legend(fontsize=8, loc="upper center")
    finish_roc_axes(ax_roc, "ROC, mean over seeds")
    ax_auc.set_xticks(range(len(by_seed)), list(by_seed), rotation=20, ha="right", fontsize=8)
    ax_auc.axhline(0.5, ls="--", color="grey")
    ax_auc.set(ylabel="ROC AUC", title="ROC AUC per seed (grey: one seed; bar: mean)", ylim=(0.4, 1.0))
    return save_figure(fig, title, results_dir)


def summarize(fib: dict, scores: pd.DataFrame, source: str, folder: Path, n_resamples: int, progress: bool = True):
    """Bootstrap table, per-seed table and comparison figure from the stored test scores."""
    full = fib["test_all"]
    # select by run: a rerun of a condition and seed replaces the earlier run as a whole
    latest_run = scores.groupby(["condition", "seed"])["run_id"].transform("last")
    scores = scores[scores["run_id"] == latest_run]
    trained, lifts = study_conditions(source)
    order = ["zero_shot", "fib_only", f"{source}_only", f"shuffled_{source}_only", *trained[2:],
             f"{BEFORE_NLI}{source}_only"]
    by_seed = {c: {int(seed): group.set_index("pair_id")["p"].loc[full["pair_id"]].to_numpy()
                   for seed, group in scores[scores["condition"] == c].groupby("seed")} for c in order}
    by_seed = {c: ps for c, ps in by_seed.items() if ps}
    runs = {c: list(ps.values()) for c, ps in by_seed.items()}
    lifts = [(a, b) for a, b in lifts if a in runs and b in runs]
    table = bootstrap_study(full, fib["test"]["pair_id"], runs, lifts, n_resamples, progress=progress)
    per_seed = per_seed_metrics(full, fib["test"]["pair_id"], by_seed, lifts)
    plot_study(full, fib["test"]["pair_id"], by_seed, f"FIB test (1:1), {source} study ({folder.name} profile)",
                     folder)
    return table, per_seed


def markdown_lines(columns: list[str], rows) -> list[str]:
    """A markdown table: header, separator, one line per row."""
    return (["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
            + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def study_table(table: pd.DataFrame, metrics=tuple(STUDY_METRICS)) -> pd.DataFrame:
    """One row per condition (and lift), in the summary's order: its seeds, then 'estimate [low, high]' per metric."""
    cells = table.assign(cell=[f"{r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" for r in table.itertuples()])
    wide = cells.pivot(index="condition", columns="metric", values="cell")
    wide = wide.loc[list(dict.fromkeys(table["condition"])), list(metrics)]
    seeds = table.drop_duplicates("condition").set_index("condition")["seeds"]
    return wide.rename_axis(columns=None).assign(seeds=seeds)[["seeds", *metrics]]


def markdown_table(table: pd.DataFrame) -> str:
    """study_table as markdown."""
    wide = study_table(table)
    return "\n".join(markdown_lines(["condition", *wide.columns], wide.itertuples()))


def per_seed_markdown(per_seed: pd.DataFrame) -> str:
    """Each seed's row, then for each condition and lift its mean over seeds with a Student-t 95% interval."""
    metrics = list(STUDY_METRICS)
    rows = [[r.condition, r.seed, *(f"{v:.3f}" for v in r[metrics])] for _, r in per_seed.iterrows()]
    for condition, part in per_seed.groupby("condition", sort=False):
        if len(part) >= 2:
            rows.append([f"**{condition}**, mean over seeds (t interval)", f"{len(part)} seeds",
                         *("{:.3f} [{:.3f}, {:.3f}]".format(*seed_interval(part[m])) for m in metrics)])
    return "\n".join(markdown_lines(["condition", "seed", *metrics], rows))




def write_study_summary(cfg: Config, fib: dict, source: str = "usb", scores_files=None, n_resamples: int = 1000,
                        progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Summarise the stored test scores (the profile's study folder, or `scores_files`) into summary.csv,
    per_seed.csv, summary.md and the figure in that folder; returns (summary, per_seed, markdown)."""
    folder = study_folder(cfg)
    sources = scores_files or [folder / "scores.csv"]
    table, per_seed = summarize(fib, pd.concat([pd.read_csv(p) for p in sources]), source, folder, n_resamples,
                                progress)
    table.round(4).to_csv(folder / "summary.csv", index=False)
    per_seed.round(4).to_csv(folder / "per_seed.csv", index=False)
    markdown = (f"Scores from: {', '.join(map(str, sources))}\n\n" + markdown_table(table)
                + "\n\nEach seed on the whole test split; a lift pairs the seeds both conditions ran:\n\n"
                + per_seed_markdown(per_seed))
    (folder / "summary.md").write_text(markdown + "\n")
    return table, per_seed, markdown
