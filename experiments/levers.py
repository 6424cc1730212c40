"""Measure one training lever on validation sets (never test): one run, one row in results/levers.csv.

    python -m experiments.levers NAME [--stage usb] [--profile cpu] [--set ood_epochs=3 ood_lr=1e-4 ...]

Each --stage (usb, summedits, sick) runs first, with the config's ood_* settings, selecting its weights on its own
validation split; then the FIB stage. The row gives the source's validation ROC AUC and FIB validation after that
stage (zero-shot transfer), then FIB validation after FIB; each stage's history goes to results/levers/.
"""
import time
from pathlib import Path

import pandas as pd

import utils
from experiments import common


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("name")
    parser.add_argument("--stage", action="append", default=[], choices=sorted(utils.OOD_SOURCES),
                        help="out-of-domain stage before FIB; repeat for several, in order")
    args = parser.parse_args()
    start = time.time()
    cfg, tokenizer, model, fib = common.start_run(args)
    folder = Path(cfg.results_dir) / "levers"
    folder.mkdir(parents=True, exist_ok=True)
    row = dict(name=args.name, stages=" ".join(args.stage), overrides=" ".join(args.set), profile=cfg.profile,
               seed=cfg.seed)
    for source in args.stage:
        result, timing = common.out_of_domain_stage(model, tokenizer, common.load_source(source, cfg), fib, cfg)
        result.history.to_csv(folder / f"{args.name}_{source}.csv", index=False)
        kept = common.history_at_best(result)
        row.update({f"{source}_val_roc_auc": result.best_score,
                    f"fib_val_all_after_{source}": kept["fib_validation_all/roc_auc"],
                    f"{source}_best_update": result.best_update, f"{source}_seconds": timing["seconds"]})
    result, timing = common.fib_stage(model, tokenizer, fib, cfg)
    result.history.to_csv(folder / f"{args.name}_fib.csv", index=False)
    names = ("validation", "validation_all")
    table = utils.evaluate_splits({k: fib[k] for k in names},
                                  utils.score_splits(model, tokenizer, {k: fib[k] for k in names}, cfg))
    row.update(val_roc_auc=table.loc["validation", "roc_auc"], val_all_roc_auc=table.loc["validation_all", "roc_auc"],
               val_all_choice_accuracy=table.loc["validation_all", "choice_accuracy"],
               val_js_divergence=table.loc["validation", "js_divergence"], best_update=result.best_update,
               fib_seconds=timing["seconds"], minutes=(time.time() - start) / 60, device=utils.device_description(),
               git_commit=utils.git_commit())
    path = Path(cfg.results_dir) / "levers.csv"
    previous = pd.read_csv(path) if path.exists() else pd.DataFrame()
    pd.concat([previous, pd.DataFrame([row])]).round(4).to_csv(path, index=False)  # new columns join the old ones
    print(pd.Series(row).to_string())


if __name__ == "__main__":
    main()
