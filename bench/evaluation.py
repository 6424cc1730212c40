"""Evaluation time per training stage on this machine: every evaluation preparing its sets again (select evidence,
tokenise, sort) and scoring in fp32, as train() did before the Evaluator, against preparing them once per stage
(utils.Evaluator) and scoring in the precision the profile gives the in-training evaluations (utils.eval_bf16).

    .venv/bin/python -m bench.evaluation      # writes results/bench_evaluation.csv

Each stage's sets and number of evaluations are the default profile's (update 0, then every eval_every updates). The
costs are measured on one evaluation of each kind (the median of `--repeats`) and multiplied out.
"""
import argparse
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
    stage = utils.out_of_domain_config(cfg, source, len(ood["train"]))
    stages = {  # name: (sets as (frame, evidence), evaluations per stage)
        "fib": ({"fib_train_sample": (utils.subsample(fib["train"], 150, cfg.seed), cfg.evidence_sentences),
                 "fib_validation_all": (fib["validation_all"], cfg.evidence_sentences)}, cfg.epochs + 1),
        source: ({f"{source}_validation": (ood["validation"], stage.evidence_sentences),
                  "fib_validation_all": (fib["validation_all"], cfg.evidence_sentences)}, 5),
    }
    rows = []
    for name, (sets, n_evals) in stages.items():
        def prepare():
            return {k: utils.prepare_pairs(tokenizer, df, cfg.max_length, cfg.eval_batch_size, k_ev, k)
                    for k, (df, k_ev) in sets.items()}
        prepared = prepare()
        prepare_s = seconds(prepare, args.repeats)
        score_s = seconds(lambda: [utils.score_prepared(model, p) for p in prepared.values()], args.repeats)
        now_score_s = seconds(lambda: [utils.score_prepared(model, p, bf16=utils.eval_bf16(cfg))
                                       for p in prepared.values()], args.repeats)
        rows.append(dict(stage=name, pairs=sum(len(p) for p in prepared.values()), evaluations=n_evals,
                         prepare_seconds=round(prepare_s, 2), score_seconds_fp32=round(score_s, 2),
                         score_precision="bf16" if utils.eval_bf16(cfg) else "fp32",
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
