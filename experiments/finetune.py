"""Train and save one model outside the notebooks: optional out-of-domain stages, then FIB; scored on FIB test.

    .venv/bin/python experiments/finetune.py --out models/run [--stage summedits:1] [--set key=value ...]
    torchrun --nproc_per_node=4 experiments/finetune.py --out models/run --profile gpu   # one process per GPU

Under torchrun each process trains on its share of every batch (batch_size pairs per process, so the global batch is
batch_size x processes x grad_accum); rank 0 evaluates, logs, saves and appends to results/metrics.csv.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import utils  # noqa: E402
from levers import parse_overrides, run_stages  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for the trained model")
    parser.add_argument("--stage", action="append", default=[], help="out-of-domain stage first, e.g. summedits:1")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. lr=1e-4")
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    cfg = utils.get_config(args.profile, **parse_overrides(args.set))
    rank, world = utils.distributed_world()
    utils.seed_everything(cfg.seed)
    start = time.time()
    tokenizer, model = utils.load_model(cfg.model_name)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    sources = run_stages(model, tokenizer, args.stage, fib, cfg)
    history = utils.finetune_fib(model, tokenizer, fib, cfg)
    if rank != 0:
        return
    utils.save_model(model, tokenizer, args.out, cfg, history)
    names = ["validation", "validation_all", "test", "test_all"]
    table = utils.evaluate_splits({k: fib[k] for k in names},
                                  utils.score_splits(model, tokenizer, {k: fib[k] for k in names}, cfg))
    condition = "ood_then_fib" if sources else "fib_only"
    utils.append_metrics(table, cfg, condition, "+".join(sources), time.time() - start)
    print(f"{world} process(es); saved to {args.out}")
    print(table[utils.SUMMARY_COLUMNS].round(3).to_string())


if __name__ == "__main__":
    main()
