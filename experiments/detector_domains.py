"""SummEdits one domain at a time: does training on six of its domains help the seventh, never seen?

For each held-out domain the shipped detector (models/detector) is continued for cfg.detector_epochs on the other six
domains' training documents plus cfg.detector_replay_pairs pairs of its own mix (vf.guardrail.summedits_stage),
selected on those six domains' validation documents and FIB validation, then scored once on the held-out domain.
The control continues it on its own mix alone, as many pairs as the mean fold, selected on the mix's validation: what
more updates give without SummEdits. The shipped detector and the control are scored on every domain; every model
on FIB-XSum validation. All are read as the shipped detector reads (claims, max).

    python -m experiments.detector_domains [--profile cpu] [--domains ectsum podcast ...]

Resumable: results/detector/summedits_held_out.csv keeps the rows of every finished model (and the weights_digest of
the detector they started from; rows of another detector stop the run); a rerun skips them.
Also written: summedits_by_domain.csv (utils.held_out_domain_table) and summedits_decision.json (the rule below).
The rule that decides whether the shipped detector trains on SummEdits (all seven domains, `detector_summedits`)
was fixed before any fold ran: it does when the held-out ROC AUC averaged over the seven domains beats the control's
on the same domains by more than 0.02, and FIB validation ROC AUC averaged over the folds is no more than 0.01 below
the control's.
"""
import time
from pathlib import Path

import numpy as np
import pandas as pd

import utils
from experiments import common

LIFT_NEEDED, FIB_LOSS_ALLOWED = 0.02, 0.01


def scored_rows(detector, sets: dict[str, pd.DataFrame], model: str, **info) -> pd.DataFrame:
    """ROC and PR AUC per set and domain (no pooled rows), one model's."""
    probs = {name: detector.score(df["premise"], df["hypothesis"], progress=False) for name, df in sets.items()}
    table = utils.source_table(sets, probs, 0.5)
    table = table[table["domain"] != "pooled"][["set", "domain", "n", "n_inconsistent", "roc_auc", "pr_auc"]]
    return table.assign(model=model, **info)


def continued(folder: Path, stage_of, cfg: utils.Config):
    """The shipped detector, continued on the stage stage_of(tokenizer) builds; with the stage's kept update."""
    utils.seed_everything(cfg.seed)
    detector = utils.HallucinationDetector.from_pretrained(folder)
    result = utils.run_stage(detector.model, detector.tokenizer, stage_of(detector.tokenizer))
    return detector, result


def decision(table: pd.DataFrame) -> dict:
    """The module docstring's rule, on utils.held_out_domain_table: the numbers behind it and whether it ships."""
    folds = int(table.drop(index=["mean", "fib_xsum_validation"])["six_other_domains"].notna().sum())
    lift, fib = table.loc["mean", "lift_over_control"], table.loc["fib_xsum_validation"]
    ships = bool(folds == len(utils.SUMMEDITS_DOMAINS) and lift > LIFT_NEEDED
                 and fib["six_other_domains"] >= fib["control"] - FIB_LOSS_ALLOWED)
    return dict(folds=folds, mean_lift_over_control=round(float(lift), 4),
                fib_validation_folds=round(float(fib["six_other_domains"]), 4),
                fib_validation_control=round(float(fib["control"]), 4), ships_summedits=ships)


def rows_of_detector(out: Path, digest: str) -> pd.DataFrame:
    """The rows already in `out`, which must all have measured the detector whose weights_digest is `digest`."""
    rows = pd.read_csv(out)
    measured = set(rows["detector"]) if "detector" in rows else {"unrecorded"}
    if measured != {digest}:
        raise SystemExit(f"{out} holds rows of detector {', '.join(sorted(measured))}, not of the one in models/detector "
                         f"({digest}): move the file aside (e.g. into results/archive/) to measure this one")
    return rows


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--domains", nargs="*", default=list(utils.SUMMEDITS_DOMAINS), choices=utils.SUMMEDITS_DOMAINS)
    args = parser.parse_args()
    cfg = common.config_from_args(args)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    folder = utils.ensure_detector(cfg, fib, Path(cfg.models_dir) / "detector")
    out = Path(cfg.results_dir) / "detector" / "summedits_held_out.csv"
    started_from = utils.weights_digest(folder)
    done = set(rows_of_detector(out, started_from)["model"]) if out.exists() else set()
    summedits = utils.limit_summedits(utils.load_summedits(), cfg.max_docs)
    mix = utils.detector_mix(fib, cfg)
    replay = utils.replay_pairs(mix, cfg)
    fib_validation = {"fib_validation": fib["validation_all"].assign(domain="xsum")}
    every_domain = {"summedits": summedits}

    def record(rows: pd.DataFrame) -> None:
        old = pd.read_csv(out) if out.exists() else None
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.concat([old, rows.round(4).assign(detector=started_from)], ignore_index=True).to_csv(out, index=False)

    if "shipped" not in done:
        record(scored_rows(utils.HallucinationDetector.from_pretrained(folder), {**every_domain, **fib_validation},
                           "shipped", held_out="", train_pairs=0, kept_update=0, minutes=0.0))
    folds = {d: utils.summedits_held_out(summedits, d) for d in utils.SUMMEDITS_DOMAINS}
    fold_pairs = int(np.mean([len(split["train"]) for split in folds.values()])) + len(replay)
    if "control" not in done:
        start = time.time()
        control = utils.subsample(mix, fold_pairs, cfg.seed + 1)  # another draw than the replay's
        stage_of = lambda tok: utils.detector_stage(tok, control, fib, cfg)  # noqa: E731
        detector, result = continued(folder, stage_of, cfg)
        record(scored_rows(detector, {**every_domain, **fib_validation}, "control", held_out="",
                           train_pairs=len(control), kept_update=result.best_update,
                           minutes=round((time.time() - start) / 60, 1)))
    for domain in args.domains:
        if f"held_out_{domain}" in done:
            continue
        start = time.time()
        stage_of = lambda tok: utils.summedits_stage(tok, folds[domain], replay, fib, cfg)  # noqa: E731
        detector, result = continued(folder, stage_of, cfg)
        record(scored_rows(detector, {"summedits": folds[domain]["test"], **fib_validation}, f"held_out_{domain}",
                           held_out=domain, train_pairs=len(folds[domain]["train"]) + len(replay),
                           kept_update=result.best_update, minutes=round((time.time() - start) / 60, 1)))
        print(utils.held_out_domain_table(pd.read_csv(out)).round(3))
    table = utils.held_out_domain_table(pd.read_csv(out))
    table.round(4).to_csv(out.parent / "summedits_by_domain.csv")
    verdict = decision(table)
    (out.parent / "summedits_decision.json").write_text(pd.Series(verdict).to_json(indent=2))
    print(table.round(3).to_string(), verdict, sep="\n")


if __name__ == "__main__":
    main()
