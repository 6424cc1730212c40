"""Evaluation time per training stage on this machine: every evaluation preparing its sets again (select evidence,
tokenise, sort) and scoring in fp32, as train() did before the Evaluator, against preparing them once per stage
(utils.Evaluator) and scoring in the precision the profile gives the in-training evaluations (utils.eval_bf16_enabled).

    .venv/bin/python -m bench.evaluation      # writes results/bench_evaluation.csv

Each stage's sets and number of evaluations are the default profile's (update 0, then every eval_every updates). The
costs are measured on one evaluation of each kind (the median of `--repeats`) and multiplied out.
"""
import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

import utils


def seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args()
    cfg = utils.get_config(args.profile)
    tokenizer, model = utils.load_model(cfg.model_name)
    fib, (source, ood) = utils.fib_splits(), utils.load_ood_source(cfg.ood_source)
    stages = {  # name: a function building the stage (its evaluator prepares its sets)
        "fib": lambda: utils.fib_stage(tokenizer, fib, cfg),
        source: lambda: utils.out_of_domain_stage(tokenizer, source, ood, fib, cfg),
    }
    rows = []
    for name, prepare in stages.items():
        stage = prepare()
        updates = math.ceil(len(stage.pairs) / stage.cfg.batch_size / stage.cfg.grad_accum) * stage.cfg.epochs
        n_evals = 1 + math.ceil(updates / stage.cfg.eval_every)  # update 0, every eval_every, and the last
        evaluator = stage.evaluator
        prepared = evaluator.sets
        prepare_s = seconds(prepare, args.repeats)
        score_s = seconds(lambda: [utils.score_prepared(model, p) for p in prepared.values()], args.repeats)
        now_score_s = seconds(lambda: [utils.score_prepared(model, p, bf16=evaluator.bf16) for p in prepared.values()],
                              args.repeats)
        rows.append(dict(stage=name, pairs=sum(len(p) for p in prepared.values()), evaluations=n_evals,
                         prepare_seconds=round(prepare_s, 2), score_seconds_fp32=round(score_s, 2),
                         score_precision="bf16" if evaluator.bf16 else "fp32",
                         score_seconds_now=round(now_score_s, 2),
                         before_seconds=round(n_evals * (prepare_s + score_s), 1),
                         prepared_once_fp32_seconds=round(prepare_s + n_evals * score_s, 1),
                         now_seconds=round(prepare_s + n_evals * now_score_s, 1),
                         device=utils.device_description(), profile=cfg.profile, git_commit=utils.git_commit()))
        rows[-1]["now_over_before"] = round(rows[-1]["now_seconds"] / rows[-1]["before_seconds"], 2)
    table = pd.DataFrame(rows)
    table.to_csv(Path(cfg.results_dir) / "bench_evaluation.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
