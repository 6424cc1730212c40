"""The study: zero_shot, fib_only, ood_then_fib and a shuffled-label control on FIB test, over seeds, with
document-bootstrap intervals.

    .venv/bin/python experiments/study.py [--seeds 0 1 2] [--profile cpu] [--summary-only]

Every run appends its rows to results/metrics.csv and its test scores to results/study/scores.csv, as the notebooks
do for seed 0 (notebook 2: zero_shot and fib_only; notebook 3: ood_then_fib); runs already there are skipped, so an
interrupted study continues where it stopped.
The summary (results/study/summary.csv, document-bootstrap 95% intervals), each seed's own numbers
(results/study/per_seed.csv), both as results/study/summary.md, and the comparison figure
(results/study_comparison_*.png) are computed from those scores.
"""
import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import utils  # noqa: E402

# shuffled_ood_then_fib is a control: the out-of-domain stage with its training labels permuted, so any lift it
# shares with ood_then_fib comes from the extra updates, not from what the source teaches.
CONDITIONS = ("zero_shot", "fib_only", "ood_then_fib", "shuffled_ood_then_fib")
OOD_CONDITIONS = ("ood_then_fib", "shuffled_ood_then_fib")  # the ones with an out-of-domain stage
LIFTS = [("ood_then_fib", "fib_only"), ("fib_only", "zero_shot"), ("ood_then_fib", "shuffled_ood_then_fib"),
         ("shuffled_ood_then_fib", "fib_only")]


def run(condition: str, cfg: utils.Config, fib: dict, ood: tuple[str, dict] | None):
    """Train one condition from the seed's fresh model and score FIB validation and test."""
    utils.seed_everything(cfg.seed)
    tokenizer, model = utils.load_model(cfg.model_name)
    source = ""
    if condition in OOD_CONDITIONS:
        source, splits = ood
        if condition == "shuffled_ood_then_fib":  # validation keeps its real labels: selection as in ood_then_fib
            splits = {**splits, "train": utils.shuffle_labels(splits["train"], cfg.seed)}
        utils.pretrain(model, tokenizer, source, splits, fib, cfg, cfg.ood_epochs)
    if condition != "zero_shot":
        utils.finetune_fib(model, tokenizer, fib, cfg)
    names = ["validation", "validation_all", "test", "test_all"]
    probs = utils.score_splits(model, tokenizer, {k: fib[k] for k in names}, cfg)
    return utils.evaluate_splits({k: fib[k] for k in names}, probs), probs["test_all"], source


def summarize(fib: dict, scores: pd.DataFrame, results_dir: Path, n_resamples: int):
    """Bootstrap table, per-seed table and comparison figure from the stored test scores."""
    full = fib["test_all"]
    scores = scores.drop_duplicates(["condition", "seed", "pair_id"], keep="last")  # a rerun replaces its seed
    by_seed = {}
    for condition in CONDITIONS:
        part = scores[scores["condition"] == condition]
        by_seed[condition] = {int(seed): group.set_index("pair_id")["p"].loc[full["pair_id"]].to_numpy()
                              for seed, group in part.groupby("seed")}
    by_seed = {c: ps for c, ps in by_seed.items() if ps}
    runs = {c: list(ps.values()) for c, ps in by_seed.items()}
    lifts = [(a, b) for a, b in LIFTS if a in runs and b in runs]
    table = utils.bootstrap_study(full, fib["test"]["pair_id"], runs, lifts, n_resamples)
    per_seed = utils.per_seed_metrics(full, fib["test"]["pair_id"], by_seed, lifts)
    sources = scores.loc[scores["ood_source"].fillna("") != "", "ood_source"].unique()
    utils.plot_study(full, fib["test"]["pair_id"], runs,
                     f"Study comparison, FIB test 1-1 (out-of-domain source: {', '.join(sources) or 'none'})",
                     results_dir)
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
    """Each seed's row, then for each lift its mean over seeds with a Student-t 95% interval (seeds as the unit)."""
    metrics = list(utils.STUDY_METRICS)
    rows = [[r.condition, r.seed, *(f"{v:.3f}" for v in r[metrics])] for _, r in per_seed.iterrows()]
    for condition, part in per_seed[per_seed["condition"].str.contains(" - ")].groupby("condition", sort=False):
        if len(part) >= 2:
            rows.append([f"{condition}, mean over seeds (t interval)", f"{len(part)} seeds",
                         *("{:.3f} [{:.3f}, {:.3f}]".format(*utils.seed_interval(part[m])) for m in metrics)])
    return "\n".join(markdown_lines(["condition", "seed", *metrics], rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profile", default=None)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    cfg = utils.get_config(args.profile)
    results_dir = Path(cfg.results_dir)
    scores_path = results_dir / "study" / "scores.csv"
    scores_path.parent.mkdir(parents=True, exist_ok=True)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    ood = None
    for seed in [] if args.summary_only else args.seeds:
        for condition in args.conditions:
            done = pd.read_csv(scores_path) if scores_path.exists() else pd.DataFrame(columns=["condition", "seed"])
            if ((done["condition"] == condition) & (done["seed"] == seed)).any():
                print(f"== {condition}, seed {seed}: already in {scores_path}, skipped")
                continue
            print(f"== {condition}, seed {seed}")
            if condition in OOD_CONDITIONS and ood is None:
                ood = utils.load_ood_source(cfg.ood_source)
                ood = ood[0], utils.limit_documents(ood[1], cfg.max_docs)
            run_cfg = utils.get_config(args.profile, seed=seed)
            start = time.time()
            table, p_test, source = run(condition, run_cfg, fib, ood)
            utils.append_metrics(table, run_cfg, condition, source, time.time() - start)
            utils.record_test_scores(run_cfg, condition, fib["test_all"], p_test, source)
            print(table.loc[["validation", "test", "test_all"], utils.SUMMARY_COLUMNS].round(3).to_string())
    table, per_seed = summarize(fib, pd.read_csv(scores_path), results_dir, args.resamples)
    table.round(4).to_csv(scores_path.with_name("summary.csv"), index=False)
    per_seed.round(4).to_csv(scores_path.with_name("per_seed.csv"), index=False)
    markdown = (markdown_table(table) + "\n\nEach seed on the whole test split; a lift pairs the seeds both "
                "conditions ran:\n\n" + per_seed_markdown(per_seed))
    scores_path.with_name("summary.md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
