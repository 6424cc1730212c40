"""Measure one training lever on FIB validation (never test): one run, one row in results/levers.csv.

    .venv/bin/python experiments/levers.py NAME [--set key=value ...] [--stage sick:EPOCHS] [--stage summedits:EPOCHS]

Stages run in the order given, each selecting its weights on its own validation split, then the FIB stage
(with the profile's settings and the --set overrides).
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import utils  # noqa: E402


def parse_overrides(pairs: list[str]) -> dict:
    fields = {f.name: f for f in dataclasses.fields(utils.Config)}
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {pair}: unknown config field {key!r}; fields: {sorted(fields)}")
        overrides[key] = json.loads(value) if value not in ("None", "") else None
    return overrides


def run_stages(model, tokenizer, stages: list[str], fib: dict, cfg) -> list[str]:
    """Run each "source:epochs" pre-finetuning stage in order; returns the sources."""
    sources = []
    for stage in stages:
        source, _, epochs = stage.partition(":")
        splits = utils.limit_documents(utils.OOD_SOURCES[source](), cfg.max_docs)
        print(f"== stage {source}: {len(splits['train'])} pairs x {epochs or 1} epochs")
        utils.pretrain(model, tokenizer, source, splits, fib, cfg, int(epochs or 1))
        sources.append(source)
    return sources


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. lr=1e-4 bf16=true")
    parser.add_argument("--stage", action="append", default=[], help="pre-finetuning stage, e.g. sick:2")
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    cfg = utils.get_config(args.profile, **parse_overrides(args.set))
    utils.seed_everything(cfg.seed)
    start = time.time()
    tokenizer, model = utils.load_model(cfg.model_name)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    fib_val = {"fib_validation_all": fib["validation_all"]}
    run_stages(model, tokenizer, args.stage, fib, cfg)
    print("== stage fib")
    history = utils.train(model, tokenizer, utils.fib_training_pairs(fib, cfg), fib_val, cfg)
    probs = utils.score_splits(model, tokenizer, {k: fib[k] for k in ("validation", "validation_all")}, cfg)
    table = utils.evaluate_splits({k: fib[k] for k in ("validation", "validation_all")}, probs)
    row = dict(name=args.name, stages=" ".join(args.stage), overrides=" ".join(args.set), profile=cfg.profile,
               seed=cfg.seed, val_roc_auc=table.loc["validation", "roc_auc"],
               val_all_roc_auc=table.loc["validation_all", "roc_auc"],
               val_all_choice_accuracy=table.loc["validation_all", "choice_accuracy"],
               val_js_divergence=table.loc["validation", "js_divergence"],
               best_update=history.attrs["best_update"], minutes=(time.time() - start) / 60,
               git_commit=utils.git_commit())
    path = Path(cfg.results_dir) / "levers.csv"
    pd.DataFrame([row]).round(4).to_csv(path, mode="a", header=not path.exists(), index=False)
    print(pd.Series(row).to_string())


if __name__ == "__main__":
    main()
