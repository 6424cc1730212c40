"""The study: zero_shot, fib_only and ood_then_fib on FIB test, over seeds, with document-bootstrap intervals.

    .venv/bin/python experiments/study.py [--seeds 0 1 2] [--profile cpu] [--summary-only]

Every run appends its rows to results/metrics.csv and its test scores to results/study/scores.csv, as the notebooks
do for seed 0 (notebook 2: zero_shot and fib_only; notebook 3: ood_then_fib); runs already there are skipped, so an
interrupted study continues where it stopped.
The summary (results/study/summary.csv, document-bootstrap 95% intervals) and the comparison figure
(results/study_comparison.png) are computed from those scores.
"""
import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import utils  # noqa: E402

CONDITIONS = ("zero_shot", "fib_only", "ood_then_fib")


def run(condition: str, cfg: utils.Config, fib: dict, ood: tuple[str, dict] | None):
    """Train one condition from the seed's fresh model and score FIB validation and test."""
    utils.seed_everything(cfg.seed)
    tokenizer, model = utils.load_model(cfg.model_name)
    source = ""
    if condition == "ood_then_fib":
        source, splits = ood
        utils.pretrain(model, tokenizer, source, splits, fib, cfg, cfg.ood_epochs)
    if condition != "zero_shot":
        utils.finetune_fib(model, tokenizer, fib, cfg)
    names = ["validation", "validation_all", "test", "test_all"]
    probs = utils.score_splits(model, tokenizer, {k: fib[k] for k in names}, cfg)
    return utils.evaluate_splits({k: fib[k] for k in names}, probs), probs["test_all"], source


def summarize(fib: dict, scores: pd.DataFrame, results_dir: Path, n_resamples: int) -> pd.DataFrame:
    """Bootstrap table and comparison figure from the stored test scores."""
    full = fib["test_all"]
    scores = scores.drop_duplicates(["condition", "seed", "pair_id"], keep="last")  # a rerun replaces its seed
    runs = {}
    for condition in CONDITIONS:
        part = scores[scores["condition"] == condition]
        runs[condition] = [group.set_index("pair_id")["p"].loc[full["pair_id"]].to_numpy()
                           for _, group in part.groupby("seed")]
    runs = {c: ps for c, ps in runs.items() if ps}
    lifts = [(a, b) for a, b in [("ood_then_fib", "fib_only"), ("fib_only", "zero_shot")] if a in runs and b in runs]
    table = utils.bootstrap_study(full, fib["test"]["pair_id"], runs, lifts, n_resamples)
    sources = scores.loc[scores["ood_source"].fillna("") != "", "ood_source"].unique()
    utils.plot_study(full, fib["test"]["pair_id"], runs,
                     f"Study comparison, FIB test 1-1 (out-of-domain source: {', '.join(sources) or 'none'})",
                     results_dir)
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """One row per condition (and lift) with its seeds, one column per metric: 'estimate [low, high]'."""
    cells = table.assign(cell=[f"{r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" for r in table.itertuples()])
    wide = cells.pivot(index="condition", columns="metric", values="cell")
    wide = wide.loc[list(dict.fromkeys(table["condition"])), list(utils.STUDY_METRICS)]
    seeds = table.drop_duplicates("condition").set_index("condition")["seeds"]
    lines = ["| condition | seeds | " + " | ".join(wide.columns) + " |", "|---" * (len(wide.columns) + 2) + "|"]
    lines += [f"| {c} | {seeds[c]} | " + " | ".join(wide.loc[c]) + " |" for c in wide.index]
    return "\n".join(lines)


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
            if condition == "ood_then_fib" and ood is None:
                ood = utils.load_ood_source(cfg.ood_source)
                ood = ood[0], utils.limit_documents(ood[1], cfg.max_docs)
            run_cfg = utils.get_config(args.profile, seed=seed)
            start = time.time()
            table, p_test, source = run(condition, run_cfg, fib, ood)
            utils.append_metrics(table, run_cfg, condition, source, time.time() - start)
            utils.record_test_scores(run_cfg, condition, fib["test_all"], p_test, source)
            print(table.loc[["validation", "test", "test_all"], utils.SUMMARY_COLUMNS].round(3).to_string())
    table = summarize(fib, pd.read_csv(scores_path), results_dir, args.resamples)
    table.round(4).to_csv(scores_path.with_name("summary.csv"), index=False)
    markdown = markdown_table(table)
    scores_path.with_name("summary.md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
