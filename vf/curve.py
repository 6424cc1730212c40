"""The learning curve: FIB test against the number of labelled FIB training documents, for each starting point, over
seeds. Its one table of sizes and conditions, the nested document subsets, the FIB stage's budget at each size, and
the summary: seed-level intervals, lifts paired by seed, and what USB is worth in FIB documents."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config
from .plots import condition_color, save_figure
from .study import seed_interval

# FIB training documents (FIB train holds 350); a seed's smaller subsets lie inside its larger ones. A size is a line.
CURVE_SIZES = (35, 70, 105, 175, 350)
FIB_TRAIN_DOCUMENTS = 350


@dataclasses.dataclass(frozen=True)
class Condition:
    """One line of the curve: the weights it starts from, and whether a FIB stage on the size's documents follows."""
    name: str
    start: str  # "nli_base", or a key of CURVE_STARTS
    fib: bool


# a condition is a line; those without a FIB stage are the curve's points at 0 documents
CURVE_CONDITIONS = (
    Condition("zero_shot", "nli_base", fib=False),
    Condition("usb_only", "usb", fib=False),
    Condition("shuffled_usb_only", "shuffled_usb", fib=False),
    Condition("fib_only", "nli_base", fib=True),
    Condition("usb_then_fib", "usb", fib=True),
    Condition("shuffled_usb_then_fib", "shuffled_usb", fib=True),
)
# starting points trained once per seed from the NLI base and reused at every size: (source, labels permuted)
CURVE_STARTS = {"usb": ("usb", False), "shuffled_usb": ("usb", True)}
# lifts a - b, paired by seed at each size; the shuffled-label control tells the labels from the extra updates
CURVE_LIFTS = (("usb_then_fib", "fib_only"), ("usb_then_fib", "shuffled_usb_then_fib"),
               ("shuffled_usb_then_fib", "fib_only"))
# (split, metric) recorded per cell: FIB test 1:1 ROC AUC (the curve's), PR AUC, binary-choice accuracy over every
# negative, and the validation score that selected the weights
CURVE_METRICS = (("test", "roc_auc"), ("test", "pr_auc"), ("test_all", "choice_accuracy"),
                 ("validation_all", "roc_auc"))
CURVE_METRIC = ("test", "roc_auc")


def condition(name: str) -> Condition:
    """The condition of that name in CURVE_CONDITIONS."""
    found = [c for c in CURVE_CONDITIONS if c.name == name]
    if not found:
        raise KeyError(f"no condition {name!r} in CURVE_CONDITIONS ({[c.name for c in CURVE_CONDITIONS]})")
    return found[0]


def zero_document_point(name: str) -> str:
    """The condition at 0 documents that a FIB condition starts from (fib_only -> zero_shot, X_then_fib -> X_only)."""
    start = condition(name).start
    return next(c.name for c in CURVE_CONDITIONS if c.start == start and not c.fib)


def curve_cells(sizes=CURVE_SIZES) -> list[tuple[str, int]]:
    """(condition, size) of one seed, grouped by starting point (each is trained once, when first needed): its point
    at 0 documents, then its FIB condition at each size, smallest first."""
    starts = dict.fromkeys(c.start for c in CURVE_CONDITIONS)
    return [(c.name, 0 if not c.fib else n) for start in starts for c in CURVE_CONDITIONS if c.start == start
            for n in ([0] if not c.fib else sorted(sizes))]


def cell_key(name: str, size: int, seed: int) -> str:
    """A cell's key in the curve's files: a rerun replaces the rows with the same key."""
    return f"{name}/{size}/{seed}"


def nested_documents(doc_ids, seed: int) -> list:
    """FIB train's documents in the seed's order: the first n are the seed's subset of size n, so subsets nest."""
    docs = sorted(pd.unique(pd.Series(doc_ids)))
    return [docs[i] for i in np.random.default_rng(seed).permutation(len(docs))]


def fib_subset(fib: dict[str, pd.DataFrame], size: int, seed: int) -> dict[str, pd.DataFrame]:
    """FIB splits with train (and train_all) cut to the seed's first `size` documents; the other splits as they are."""
    docs = nested_documents(fib["train"]["doc_id"], seed)
    if not 0 < size <= len(docs):
        raise ValueError(f"size must be between 1 and the {len(docs)} FIB training documents, got {size}")
    kept = set(docs[:size])
    return {name: df[df["doc_id"].isin(kept)].reset_index(drop=True) if name.startswith("train") else df
            for name, df in fib.items()}


def updates_per_epoch(n_pairs: int, cfg: Config) -> int:
    """Optimizer updates in one pass over n_pairs (the last partial batch and window count)."""
    return math.ceil(math.ceil(n_pairs / cfg.batch_size) / cfg.grad_accum)


def fib_budget_config(cfg: Config, n_pairs: int, full_pairs: int) -> Config:
    """The FIB stage's settings on n_pairs: the same budget in updates as on all full_pairs (epochs scaled up), with
    evaluations and patience counted in updates as there, so a small subset is not evaluated every few updates."""
    scale = updates_per_epoch(full_pairs, cfg) / updates_per_epoch(n_pairs, cfg)
    return dataclasses.replace(cfg, epochs=math.ceil(cfg.epochs * scale),
                               fib_only_epochs=math.ceil(cfg.fib_only_epochs * scale))


def curve_folder(cfg: Config) -> Path:
    """Where the curve keeps its scores, summaries, timings, figure and the NLI base it starts from."""
    return Path(cfg.results_dir) / "study" / "curve"


# ----------------------------------------------------------------------------- the summary

def per_seed(scores: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    """One metric as a table: rows (condition, size), columns seeds."""
    rows = scores[(scores["split"] == split) & (scores["metric"] == metric)]
    return rows.pivot_table(index=["condition", "size"], columns="seed", values="value", aggfunc="first")


def _interval_row(values: pd.Series) -> dict:
    values = values.dropna()
    if len(values) >= 2 and values.std() > 0:
        mean, low, high = seed_interval(values)
    else:  # one seed: no interval; every seed equal (a deterministic point, such as zero_shot): no spread
        mean, low, high = float(values.mean()), *((np.nan,) * 2 if len(values) < 2 else (float(values.mean()),) * 2)
    return dict(seeds=len(values), mean=mean, ci_low=low, ci_high=high, sd=float(values.std(ddof=1)),
                min=float(values.min()), max=float(values.max()))


def curve_summary(scores: pd.DataFrame, metrics=CURVE_METRICS, lifts=CURVE_LIFTS) -> pd.DataFrame:
    """Per (condition or lift, size, split, metric): seeds, mean, Student-t 95% interval over seeds, sd, min, max.
    A lift a - b is taken seed by seed, on the seeds both ran; with one seed its interval is undefined (NaN)."""
    rows = []
    for split, metric in metrics:
        table = per_seed(scores, split, metric)
        for (name, size), values in table.iterrows():
            rows.append(dict(condition=name, size=size, split=split, metric=metric, **_interval_row(values)))
        for a, b in lifts:
            for size in sorted({s for c, s in table.index if c == a}):
                if (b, size) in table.index:
                    paired = (table.loc[(a, size)] - table.loc[(b, size)]).dropna()
                    if len(paired):
                        rows.append(dict(condition=f"{a} - {b}", size=size, split=split, metric=metric,
                                         **_interval_row(paired)))
    return pd.DataFrame(rows)


def equivalent_documents(sizes, values, target: float) -> float:
    """The number of documents at which the curve (sizes ascending from 0, values) first reaches target: linear in
    size up to the first non-zero size, linear in log size beyond. 0 if reached at 0 documents; inf if never."""
    sizes, values = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    if target <= values[0]:
        return 0.0
    for (s0, s1), (v0, v1) in zip(zip(sizes, sizes[1:]), zip(values, values[1:])):
        if v0 < target <= v1:
            t = (target - v0) / (v1 - v0)
            return float(s1 * t if s0 == 0 else np.exp(np.log(s0) + t * (np.log(s1) - np.log(s0))))
    return math.inf


def documents_worth(scores: pd.DataFrame, then: str = "usb_then_fib", alone: str = "fib_only", n_resamples: int = 2000,
                    seed: int = 0, split: str = "test", metric: str = "roc_auc") -> pd.DataFrame:
    """What `then`'s starting point is worth in labelled documents: at each of its sizes n (0: the start alone), the
    number N of documents at which `alone`'s mean curve reaches `then`'s mean with n, on the seeds every point ran.
    The 95% interval resamples seeds (the same seeds for both curves); N beyond the largest size is inf."""
    table = per_seed(scores, split, metric)
    curve = [(0, zero_document_point(alone))] + [(s, alone) for c, s in table.index if c == alone and s > 0]
    targets = [(0, zero_document_point(then))] + [(s, then) for c, s in table.index if c == then and s > 0]
    points = sorted(set(curve) | set(targets))
    if not all((name, size) in table.index for size, name in points):
        return pd.DataFrame()
    seeds = table.loc[[(name, size) for size, name in points]].dropna(axis=1).columns
    if len(seeds) == 0:
        return pd.DataFrame()
    curve_values = np.stack([table.loc[(name, size), seeds].to_numpy(float) for size, name in curve])
    sizes = [size for size, _ in curve]
    rng = np.random.default_rng(seed)
    draws = [np.arange(len(seeds))] + [rng.integers(0, len(seeds), len(seeds)) for _ in range(n_resamples)]
    rows = []
    for n, name in targets:
        target_values = table.loc[(name, n), seeds].to_numpy(float)
        found = np.array([equivalent_documents(sizes, curve_values[:, d].mean(axis=1), target_values[d].mean())
                          for d in draws])
        low, high = np.quantile(found[1:], [0.025, 0.975], method="inverted_cdf") if len(seeds) > 1 else (np.nan,) * 2
        rows.append(dict(condition=name, size=n, seeds=len(seeds), auc=target_values.mean(), documents=found[0],
                         documents_low=low, documents_high=high, worth=found[0] - n,
                         worth_low=low - n, worth_high=high - n, largest_size=max(sizes)))
    return pd.DataFrame(rows)


def plot_curve(summary: pd.DataFrame, worth: pd.DataFrame, scores: pd.DataFrame, title: str, folder: Path,
               split: str = "test", metric: str = "roc_auc"):
    """Left: ROC AUC against FIB training documents (log axis; 0 documents at the left), one line per starting
    point with its seed-level 95% band and each seed's points. Right: the lifts paired by seed, with intervals."""
    import matplotlib.pyplot as plt
    part = summary[(summary["split"] == split) & (summary["metric"] == metric)]
    sizes = sorted(part.loc[part["size"] > 0, "size"].unique())
    zero_x = sizes[0] / 2.5 if sizes else 1  # where 0 documents sit on the log axis
    fig, (ax, ax_lift) = plt.subplots(1, 2, figsize=(9, 4.2), gridspec_kw=dict(width_ratios=[1.35, 1]))
    seeds = per_seed(scores, split, metric)
    for k, c in enumerate(c for c in CURVE_CONDITIONS if c.fib):
        line = part[part["condition"].isin([c.name, zero_document_point(c.name)])].sort_values("size")
        if line.empty:
            continue
        color = condition_color(c.name, k)
        xs = np.where(line["size"] == 0, zero_x, line["size"])
        ax.plot(xs, line["mean"], "o-", color=color, lw=1.8, ms=4, label=f"{c.name} (0: {zero_document_point(c.name)})")
        ax.fill_between(xs, line["ci_low"], line["ci_high"], color=color, alpha=0.15, lw=0)
        for size in line["size"]:
            name = c.name if size else zero_document_point(c.name)
            if (name, size) in seeds.index:
                values = seeds.loc[(name, size)].dropna()
                ax.scatter(np.full(len(values), zero_x if size == 0 else size) * (1 + 0.04 * (k - 1)), values,
                           s=7, color=color, alpha=0.45, lw=0)
    shown = seeds.to_numpy(float)[~np.isnan(seeds.to_numpy(float))]
    if shown.size:  # the seeds' range: a band wider than the data (t with few seeds) is cut, not rescaled to
        ax.set_ylim(max(0.0, shown.min() - 0.05), min(1.0, shown.max() + 0.05))
    ax.set_xscale("log")
    ax.set_xticks([zero_x, *sizes], ["0", *map(str, sizes)])
    ax.minorticks_off()
    ax.axvline(np.sqrt(zero_x * sizes[0]) if sizes else zero_x, color="lightgrey", lw=0.8)
    ax.set(xlabel="labelled FIB training documents", ylabel="ROC AUC, FIB test (1:1)",
           title="mean over seeds, 95% band (t)")
    ax.legend(fontsize=7.5, loc="lower right")
    for k, (a, b) in enumerate(CURVE_LIFTS[:2]):
        lift = part[part["condition"] == f"{a} - {b}"].sort_values("size")
        if lift.empty:
            continue
        offset = 1 + 0.06 * (2 * k - 1)
        ax_lift.errorbar(lift["size"] * offset, lift["mean"], yerr=[lift["mean"] - lift["ci_low"],
                         lift["ci_high"] - lift["mean"]], fmt="o-", capsize=3, ms=4,
                         color=condition_color(b, k), label=f"minus {b}")
    paired = [(seeds.loc[(a, n)] - seeds.loc[(b, n)]).dropna().to_numpy() for a, b in CURVE_LIFTS[:2] for n in sizes
              if (a, n) in seeds.index and (b, n) in seeds.index]
    paired = np.concatenate(paired + [np.zeros(1)])
    ax_lift.set_ylim(paired.min() - 0.05, paired.max() + 0.05)  # the seeds' differences, not a few seeds' t bars
    ax_lift.axhline(0, color="grey", ls="--", lw=1)
    ax_lift.set_xscale("log")
    ax_lift.set_xticks(sizes, list(map(str, sizes)))
    ax_lift.minorticks_off()
    ax_lift.set(xlabel="labelled FIB training documents", ylabel="ROC AUC difference",
                title="usb_then_fib, paired by seed (95% t)")
    ax_lift.legend(fontsize=7.5, loc="lower left")
    if not worth.empty:
        text = "; ".join(f"{r.size}: {_documents_text(r.documents, r.largest_size)}" for r in worth.itertuples()
                         if r.size > 0)
        fig.text(0.01, 0.005, f"fib_only needs N documents to match usb_then_fib with n (n: N): {text}",
                 fontsize=8)
    return save_figure(fig, title, folder)


def curve_table(summary: pd.DataFrame, lifts: bool = False, split: str = "test", metric: str = "roc_auc",
                digits: int = 3) -> pd.DataFrame:
    """Conditions (or, with lifts, the paired lifts) by size: "mean [low, high]" over seeds (seeds_per_cell says how
    many); an interval that one seed cannot give shows as "n/a"."""
    part = summary[(summary["split"] == split) & (summary["metric"] == metric)]
    part = part[part["condition"].str.contains(" - ") == lifts]
    fmt = lambda v: "n/a" if pd.isna(v) else f"{v:+.{digits}f}" if lifts else f"{v:.{digits}f}"  # noqa: E731
    cells = part.assign(text=[f"{fmt(r.mean)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]"
                              for r in part.itertuples()])
    order = [c.name for c in CURVE_CONDITIONS] if not lifts else [f"{a} - {b}" for a, b in CURVE_LIFTS]
    table = cells.pivot(index="condition", columns="size", values="text").fillna("")
    return table.reindex([name for name in order if name in table.index]).rename_axis(columns="documents")


def worth_table(worth: pd.DataFrame) -> pd.DataFrame:
    """documents_worth as a reader asks it: with n documents after the start, fib_only needs N [95% interval]."""
    largest = int(worth["largest_size"].iloc[0])
    text = lambda v: _documents_text(v, largest)  # noqa: E731
    return pd.DataFrame({"start": worth["condition"], "FIB documents after it (n)": worth["size"],
                         "ROC AUC": worth["auc"].round(3),
                         "fib_only needs (N)": [f"{text(r.documents)} [{text(r.documents_low)}, "
                                                f"{text(r.documents_high)}]" for r in worth.itertuples()],
                         "seeds": worth["seeds"]}).set_index("start")


def seeds_per_cell(scores: pd.DataFrame) -> pd.DataFrame:
    """How many seeds each (condition, size) holds, conditions in CURVE_CONDITIONS' order."""
    table = scores.drop_duplicates("cell").pivot_table(index="condition", columns="size", values="seed",
                                                       aggfunc="nunique").astype("Int64")
    return table.reindex([c.name for c in CURVE_CONDITIONS if c.name in table.index]).rename_axis(columns="documents")


def summarise_curve(folder: Path, out: Path | None = None):
    """The curve's cells of its kept base (folder/scores.csv; base/base.json names the base), their summary and
    what USB is worth in documents: (scores, summary, worth, figure path), written as summary.csv, worth.csv and the
    figure in `out` (default: folder)."""
    import json
    out = Path(out or folder)
    out.mkdir(parents=True, exist_ok=True)
    digest = json.loads((Path(folder) / "base" / "base.json").read_text())["digest"]
    scores = pd.read_csv(Path(folder) / "scores.csv")
    scores = scores[scores["base_digest"] == digest]
    summary = curve_summary(scores)
    summary.round(4).to_csv(out / "summary.csv", index=False)
    worth = documents_worth(scores)
    worth.round(4).to_csv(out / "worth.csv", index=False)
    figure = plot_curve(summary, worth, scores, "FIB test against labelled FIB documents", out)
    return scores, summary, worth, figure


def _documents_text(documents: float, largest: int) -> str:
    """N documents as read from the curves: "more than" the largest size where fib_only never gets there."""
    return f"more than {largest}" if math.isinf(documents) else "n/a" if pd.isna(documents) else f"{documents:.0f}"
