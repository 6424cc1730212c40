"""What the scripts under experiments/ share: the config arguments (--profile, --set) and the out-of-domain stages.

Run the scripts as modules from the repository root: `python -m experiments.study ...`.
"""
import argparse
import ast
import time

import pandas as pd

import utils


def parser_with_config(doc: str) -> argparse.ArgumentParser:
    """An argument parser with the script's docstring and the shared --profile and --set options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=None, choices=sorted(utils.PROFILES),
                        help="default: $VF_PROFILE, else gpu where CUDA is available, else cpu")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides, e.g. lr=1e-4 ood_epochs=3 fib_negatives=all")
    return parser


def parse_overrides(pairs: list[str]) -> dict:
    """KEY=VALUE pairs as config overrides: Python literals, else plain strings; a value of the wrong type is refused."""
    defaults = utils.Config()
    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not hasattr(defaults, key):
            raise SystemExit(f"--set {pair}: expected KEY=VALUE with KEY one of {sorted(vars(defaults))}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a plain word: fib_negatives=all
        current = getattr(defaults, key)
        if isinstance(current, float) and type(value) is int:
            value = float(value)
        elif isinstance(current, tuple) and isinstance(value, (list, str)):
            value = tuple(value) if isinstance(value, list) else (value,)
        if current is not None and value is not None and type(value) is not type(current):
            raise SystemExit(f"--set {pair}: {key} takes a {type(current).__name__} (default {current!r}), "
                             f"not a {type(value).__name__}")
        overrides[key] = value
    return overrides


def config_from_args(args, **fixed) -> utils.Config:
    """The profile named by --profile, with the --set overrides, then `fixed` (e.g. seed=...)."""
    return utils.get_config(args.profile, **{**parse_overrides(args.set), **fixed})


def start_run(args) -> tuple[utils.Config, object, object, dict]:
    """(config, tokenizer, model, FIB splits) for a script's run: seeded, with the seed's fresh model."""
    cfg = config_from_args(args)
    utils.seed_everything(cfg.seed)
    tokenizer, model = utils.load_model(cfg.model_name)
    return cfg, tokenizer, model, utils.limit_documents(utils.fib_splits(), cfg.max_docs)


def load_source(name: str, cfg: utils.Config) -> tuple[str, dict]:
    """(source, splits) of an out-of-domain source, cut to cfg.max_docs documents per split; load it once per
    process and pass it to out_of_domain_stage."""
    source, splits = utils.load_ood_source(name)
    return source, utils.limit_documents(splits, cfg.max_docs)


def timed_stage(model, tokenizer, stage: utils.Stage) -> tuple[utils.TrainResult, dict]:
    """Run a stage (utils.run_stage); returns its result and a timing row."""
    start = time.time()
    result = utils.run_stage(model, tokenizer, stage)
    return result, timing_row(stage.name, result, time.time() - start)


def out_of_domain_stage(model, tokenizer, ood: tuple[str, dict], fib: dict, cfg: utils.Config,
                        shuffled: bool = False) -> tuple[utils.TrainResult, dict]:
    """Pre-finetune on `ood` = (source, splits) from load_source (its training labels permuted when `shuffled`, a
    control); returns the stage's result and a timing row."""
    source, splits = ood
    return timed_stage(model, tokenizer, utils.out_of_domain_stage(tokenizer, source, splits, fib, cfg, shuffled))


def fib_stage(model, tokenizer, fib: dict, cfg: utils.Config, alone: bool = False) -> tuple[utils.TrainResult, dict]:
    """The FIB stage (`alone`: fib_only, trained to convergence); returns its result and a timing row."""
    return timed_stage(model, tokenizer, utils.fib_stage(tokenizer, fib, cfg, alone))


def timing_row(stage: str, result: utils.TrainResult, seconds: float) -> dict:
    updates = int(result.history["update"].iloc[-1])
    return dict(stage=stage, updates=updates, seconds=round(seconds, 1), updates_per_s=round(updates / seconds, 2),
                device=utils.device_description())


def history_at_best(result: utils.TrainResult) -> pd.Series:
    """The history row of the kept weights."""
    return result.history.set_index("update").loc[result.best_update]
