"""The study: zero_shot, fib_only, <source>_only, <source>_then_fib and a shuffled-label control on FIB test, over
seeds, with document-bootstrap and seed-level intervals.

    python -m experiments.study [--profile gpu] [--source usb] [--seeds 0 1 2 3 4] [--summary-only]
    python -m experiments.study --summary-only --scores results/device/*/study/gpu/scores.csv

Every run appends its rows to results/metrics.csv and its test scores to results/study/<profile>/scores.csv, as the
notebooks do for seed 0; runs already there are skipped, so an interrupted study continues where it stopped.
<source>_then_fib also records FIB test right after the out-of-domain stage, as <source>_only (zero-shot transfer).
The summary (summary.csv, document-bootstrap 95% intervals), each seed's own numbers (per_seed.csv), both as
summary.md, the stages' timings (timings.csv) and the comparison figure are written beside scores.csv.
"""
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

import utils
from experiments import common


BEFORE_NLI = "minilm_"  # a condition run from the packaged MiniLM, without the NLI stage: the before


def conditions(source: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The conditions to train, and the lifts (a - b) to report. shuffled_<source>_then_fib is the control: the same
    stage with its training labels permuted, so a lift it shares comes from the extra updates, not the labels.
    fib_only is trained to convergence (Config.fib_only_epochs, patience); minilm_* start without the NLI base."""
    then, only, shuffled = f"{source}_then_fib", f"{source}_only", f"shuffled_{source}_then_fib"
    lifts = [(then, "fib_only"), (shuffled, "fib_only"), (then, shuffled), (only, "zero_shot"),
             (only, shuffled.replace("_then_fib", "_only")), ("fib_only", "zero_shot"),
             ("fib_only", f"{BEFORE_NLI}fib_only"), (then, f"{BEFORE_NLI}{then}")]
    return ["zero_shot", "fib_only", then, shuffled, f"{BEFORE_NLI}fib_only", f"{BEFORE_NLI}{then}"], lifts


def run(condition: str, cfg: utils.Config, fib: dict, ood: tuple[str, dict]) -> list[dict]:
    """Train one condition from the seed's fresh model and evaluate FIB validation and test; returns timing rows."""
    if condition.startswith(BEFORE_NLI):
        cfg = dataclasses.replace(cfg, model_name=utils.PACKAGED_MINILM)
    utils.seed_everything(cfg.seed)
    tokenizer, model = utils.load_model(cfg.model_name)
    names = ["validation", "validation_all", "test", "test_all"]
    splits = {k: fib[k] for k in names}
    timings, start, ood_source, source = [], time.time(), "", ood[0]
    if condition.endswith(f"{source}_then_fib"):
        ood_source = source
        _, timing = common.out_of_domain_stage(model, tokenizer, ood, fib, cfg, condition.startswith("shuffled_"))
        timings.append(timing)
        # the zero-shot transfer, before any FIB pair (for the control too: what the stage gives without its labels)
        utils.evaluate_condition(model, tokenizer, splits, cfg, condition.replace("_then_fib", "_only"), source,
                                 time.time() - start)
    if condition != "zero_shot":
        alone = condition.removeprefix(BEFORE_NLI) == "fib_only"
        timings.append(common.fib_stage(model, tokenizer, fib, cfg, alone=alone)[1])
    result = utils.evaluate_condition(model, tokenizer, splits, cfg, condition, ood_source, time.time() - start)
    print(result.table.loc[["validation", "test", "test_all"], utils.SUMMARY_COLUMNS].round(3).to_string())
    return [dict(condition=condition, seed=cfg.seed, run_id=result.run_id, **t) for t in timings]


def per_seed_metrics(full: pd.DataFrame, balanced_pair_ids, runs: dict[str, dict[int, np.ndarray]],
                     lifts: list[tuple[str, str]] = ()) -> pd.DataFrame:
    """Each seed's metrics on the whole split, and each lift a - b on the seeds both conditions ran."""
    table = utils.DocumentTable(full, balanced_pair_ids)
    all_docs = np.arange(len(table.docs))
    rows = {(c, s): table.metrics(p, all_docs) for c, by_seed in runs.items() for s, p in sorted(by_seed.items())}
    for a, b in lifts:
        for s in sorted(set(runs[a]) & set(runs[b])):
            rows[(f"{a} - {b}", s)] = {m: rows[(a, s)][m] - rows[(b, s)][m] for m in utils.STUDY_METRICS}
    frame = pd.DataFrame.from_dict(rows, orient="index")[list(utils.STUDY_METRICS)]
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
    y = (full["label"] == utils.INCONSISTENT).to_numpy()[balanced]
    fig = plt.figure(figsize=(10, 7.5))
    grid = fig.add_gridspec(2, len(by_seed))
    half = max(1, len(by_seed) // 2)
    ax_roc, ax_auc = fig.add_subplot(grid[0, :half]), fig.add_subplot(grid[0, half:])
    grid_fpr = np.linspace(0, 1, 101)
    aucs = {c: {s: roc_auc_score(y, p[balanced]) for s, p in ps.items()} for c, ps in by_seed.items()}
    for seed in sorted({s for ps in by_seed.values() for s in ps}):  # one grey line per seed, across conditions
        xs = [k for k, c in enumerate(by_seed) if seed in aucs[c]]
        ax_auc.plot(xs, [aucs[c][seed] for c in by_seed if seed in aucs[c]], color="lightgrey", lw=0.8, zorder=1)
    for k, (condition, ps) in enumerate(by_seed.items()):
        color = utils.condition_color(condition, k)
        tprs = [np.interp(grid_fpr, *roc_curve(y, p[balanced])[:2]) for p in ps.values()]
        ax_roc.plot(grid_fpr, np.mean(tprs, axis=0), color=color, lw=1.8, label=condition)
        ax_auc.scatter(np.full(len(ps), k), list(aucs[condition].values()), color=color, zorder=2)
        ax_auc.plot([k - 0.3, k + 0.3], [np.mean(list(aucs[condition].values()))] * 2, color="black", lw=2)
        ax = fig.add_subplot(grid[1, k], sharey=None if k == 0 else fig.axes[2])
        pooled, labels = np.concatenate([p[balanced] for p in ps.values()]), np.tile(y, len(ps))
        for mask, name in ((~labels, "consistent"), (labels, "inconsistent")):
            ax.hist(pooled[mask], bins=utils.HIST_BINS, weights=np.full(mask.sum(), 1 / mask.sum()), alpha=0.6,
                    color=utils.CLASS_COLORS[name], label=name)
        ax.set_title(f"{condition}\n({len(ps)} seed{'s' * (len(ps) > 1)})", fontsize=9, color=color)
        ax.set_xlabel("P(inconsistent)", fontsize=9)
        ax.tick_params(labelsize=8)
        if k == 0:
            ax.set_ylabel("share of the class", fontsize=9)
        else:
            ax.tick_params(labelleft=False)
        if k == len(by_seed) - 1:
            ax.legend(fontsize=8, loc="upper center")
    utils.finish_roc_axes(ax_roc, "ROC, mean over seeds")
    ax_auc.set_xticks(range(len(by_seed)), list(by_seed), rotation=20, ha="right", fontsize=8)
    ax_auc.axhline(0.5, ls="--", color="grey")
    ax_auc.set(ylabel="ROC AUC", title="ROC AUC per seed (grey: one seed; bar: mean)", ylim=(0.4, 1.0))
    return utils.save_figure(fig, title, results_dir)


def summarize(fib: dict, scores: pd.DataFrame, source: str, folder: Path, n_resamples: int):
    """Bootstrap table, per-seed table and comparison figure from the stored test scores."""
    full = fib["test_all"]
    # select by run: a rerun of a condition and seed replaces the earlier run as a whole
    latest_run = scores.groupby(["condition", "seed"])["run_id"].transform("last")
    scores = scores[scores["run_id"] == latest_run]
    trained, lifts = conditions(source)
    order = ["zero_shot", "fib_only", f"{source}_only", f"shuffled_{source}_only", *trained[2:],
             f"{BEFORE_NLI}{source}_only"]
    by_seed = {c: {int(seed): group.set_index("pair_id")["p"].loc[full["pair_id"]].to_numpy()
                   for seed, group in scores[scores["condition"] == c].groupby("seed")} for c in order}
    by_seed = {c: ps for c, ps in by_seed.items() if ps}
    runs = {c: list(ps.values()) for c, ps in by_seed.items()}
    lifts = [(a, b) for a, b in lifts if a in runs and b in runs]
    table = utils.bootstrap_study(full, fib["test"]["pair_id"], runs, lifts, n_resamples, progress=True)
    per_seed = per_seed_metrics(full, fib["test"]["pair_id"], by_seed, lifts)
    plot_study(full, fib["test"]["pair_id"], by_seed, f"FIB test (1:1), {source} study ({folder.name} profile)",
                     folder)
    return table, per_seed


def markdown_lines(columns: list[str], rows) -> list[str]:
    """A markdown table: header, separator, one line per row."""
    return (["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
            + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def markdown_table(table: pd.DataFrame) -> str:
    """One row per condition (and lift) with its seeds, one column per metric: 'estimate [low, high]'."""
    cells = table.assign(cell=[f"{r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" for r in table.itertuples()])
    wide = cells.pivot(index="condition", columns="metric", values="cell")
    wide = wide.loc[list(dict.fromkeys(table["condition"])), list(utils.STUDY_METRICS)]
    seeds = table.drop_duplicates("condition").set_index("condition")["seeds"]
    rows = [[c, seeds[c], *wide.loc[c]] for c in wide.index]
    return "\n".join(markdown_lines(["condition", "seeds", *wide.columns], rows))


def per_seed_markdown(per_seed: pd.DataFrame) -> str:
    """Each seed's row, then for each condition and lift its mean over seeds with a Student-t 95% interval."""
    metrics = list(utils.STUDY_METRICS)
    rows = [[r.condition, r.seed, *(f"{v:.3f}" for v in r[metrics])] for _, r in per_seed.iterrows()]
    for condition, part in per_seed.groupby("condition", sort=False):
        if len(part) >= 2:
            rows.append([f"**{condition}**, mean over seeds (t interval)", f"{len(part)} seeds",
                         *("{:.3f} [{:.3f}, {:.3f}]".format(*seed_interval(part[m])) for m in metrics)])
    return "\n".join(markdown_lines(["condition", "seed", *metrics], rows))


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--source", default="usb", choices=sorted(utils.OOD_SOURCES))
    parser.add_argument("--conditions", nargs="+", default=None, help="default: every condition of the source")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--scores", nargs="+", type=Path, default=None,
                        help="summarise these scores files (e.g. from parallel runs) instead of the profile's own")
    args = parser.parse_args()
    cfg = common.config_from_args(args)
    folder = utils.study_folder(cfg)
    scores_path = folder / "scores.csv"
    folder.mkdir(parents=True, exist_ok=True)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    trained, _ = conditions(args.source)
    ood = (args.source, None)  # its splits are read once, by the first run that needs them
    for seed in [] if args.summary_only else args.seeds:
        for condition in args.conditions or trained:
            done = pd.read_csv(scores_path) if scores_path.exists() else pd.DataFrame(columns=["condition", "seed"])
            if ((done["condition"] == condition) & (done["seed"] == seed)).any():
                print(f"== {condition}, seed {seed}: already in {scores_path}, skipped")
                continue
            print(f"== {condition}, seed {seed}")
            if condition.endswith("_then_fib") and ood[1] is None:
                ood = common.load_source(args.source, cfg)
            timings = run(condition, common.config_from_args(args, seed=seed), fib, ood)
            path = folder / "timings.csv"
            if timings:  # zero_shot trains nothing
                pd.DataFrame(timings).to_csv(path, mode="a", header=not path.exists(), index=False)
    sources = args.scores or [scores_path]
    table, per_seed = summarize(fib, pd.concat([pd.read_csv(p) for p in sources]), args.source, folder,
                                args.resamples)
    table.round(4).to_csv(folder / "summary.csv", index=False)
    per_seed.round(4).to_csv(folder / "per_seed.csv", index=False)
    markdown = (f"Scores from: {', '.join(map(str, sources))}\n\n" + markdown_table(table)
                + "\n\nEach seed on the whole test split; a lift pairs the seeds both conditions ran:\n\n"
                + per_seed_markdown(per_seed))
    (folder / "summary.md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
