"""Does scoring the in-training evaluations under bf16 change which weights a run keeps? One usb_then_fib run in which
every evaluation scores each set twice, in fp32 and in bf16 (the head's last two layers in fp32); training follows
the bf16 scores.

    .venv/bin/python -m bench.bf16_selection [--profile cpu] [--set seed=1]   # writes results/checks/bf16_selection.csv

Per evaluation: both ROC AUCs of every set, their difference, both scoring times; and the update each precision would
have kept. The weights are the same for both readings, so any difference is the scoring's.
"""
import dataclasses
import time
from pathlib import Path

import pandas as pd

import utils
from experiments import common


class BothPrecisions(utils.Evaluator):
    """An evaluator that scores in fp32 and in bf16, logs both, and returns the bf16 metrics (what training uses)."""

    def __init__(self, evaluator: utils.Evaluator, stage: str, rows: list):
        super().__init__(evaluator.sets, evaluator.select_metric, bf16=True, score_as=evaluator.score_as)
        self.stage, self.rows, self.fp32 = stage, rows, utils.Evaluator(evaluator.sets, evaluator.select_metric, score_as=evaluator.score_as)

    def __call__(self, model) -> dict[str, float]:
        start = time.perf_counter()
        fp32 = self.fp32(model)
        middle = time.perf_counter()
        bf16 = super().__call__(model)
        end = time.perf_counter()
        row = dict(stage=self.stage, evaluation=sum(r["stage"] == self.stage for r in self.rows),
                   fp32_seconds=round(middle - start, 2), bf16_seconds=round(end - middle, 2))
        for key in (k for k in fp32 if k.endswith("/roc_auc")):
            row.update({f"{key} fp32": fp32[key], f"{key} bf16": bf16[key], f"{key} bf16-fp32": bf16[key] - fp32[key]})
        self.rows.append(row)
        return bf16


def kept_update(rows: pd.DataFrame, history: pd.DataFrame, column: str) -> int:
    """The update whose evaluation scores highest in `column` (the first of equals, as train() keeps it)."""
    return int(history["update"].iloc[rows[column].to_numpy().argmax()])


def main():
    args = common.parser_with_config(__doc__).parse_args()
    cfg, tokenizer, model, fib = common.start_run(args)
    source, splits = common.load_source(cfg.ood_source, cfg)
    rows = []
    def both_precisions(stage: utils.Stage) -> utils.Stage:  # the same stage, its evaluator scoring both ways
        return dataclasses.replace(stage, evaluator=BothPrecisions(stage.evaluator, stage.name, rows))

    stages = [(source, lambda: utils.run_stage(model, tokenizer, both_precisions(
                  utils.out_of_domain_stage(tokenizer, source, splits, fib, cfg)))),
              ("fib", lambda: utils.run_stage(model, tokenizer, both_precisions(utils.fib_stage(tokenizer, fib, cfg))))]
    summary = []
    for stage, run in stages:
        result = run()
        stage_rows = pd.DataFrame([r for r in rows if r["stage"] == stage])
        metric = result.select_metric
        summary.append(dict(stage=stage, select_metric=metric, evaluations=len(stage_rows),
                            kept_update_fp32=kept_update(stage_rows, result.history, f"{metric} fp32"),
                            kept_update_bf16=kept_update(stage_rows, result.history, f"{metric} bf16"),
                            max_abs_auc_difference=stage_rows.filter(like="bf16-fp32").abs().max().max(),
                            fp32_seconds=stage_rows["fp32_seconds"].sum(), bf16_seconds=stage_rows["bf16_seconds"].sum()))
    table = pd.DataFrame(rows).assign(device=utils.device_description(), profile=cfg.profile, seed=cfg.seed,
                                      git_commit=utils.git_commit())
    out = Path(cfg.results_dir) / "checks"
    out.mkdir(parents=True, exist_ok=True)
    table.round(5).to_csv(out / "bf16_selection.csv", index=False)
    pd.DataFrame(summary).round(5).to_csv(out / "bf16_selection_summary.csv", index=False)
    print(pd.DataFrame(summary).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
