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

import pandas as pd

import utils
from experiments import common


def run(condition: str, cfg: utils.Config, fib: dict, ood: tuple[str, dict]) -> list[dict]:
    """Train one condition from the seed's fresh model and evaluate FIB validation and test; returns timing rows."""
    if condition.startswith(utils.BEFORE_NLI):
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
        alone = condition.removeprefix(utils.BEFORE_NLI) == "fib_only"
        timings.append(common.fib_stage(model, tokenizer, fib, cfg, alone=alone)[1])
    result = utils.evaluate_condition(model, tokenizer, splits, cfg, condition, ood_source, time.time() - start)
    print(result.table.loc[["validation", "test", "test_all"], utils.SUMMARY_COLUMNS].round(3).to_string())
    return [dict(condition=condition, seed=cfg.seed, run_id=result.run_id, **t) for t in timings]


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
    trained, _ = utils.study_conditions(args.source)
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
    print(utils.write_study_summary(cfg, fib, args.source, args.scores, args.resamples)[2])


if __name__ == "__main__":
    main()
