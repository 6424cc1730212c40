"""Train and save one model outside the notebooks: an optional out-of-domain stage, then FIB; scored on FIB test.

    python -m experiments.finetune --out models/run [--stage usb] [--set key=value ...]
    torchrun --nproc_per_node=4 -m experiments.finetune --out models/run --profile gpu   # one process per GPU

Under torchrun each process trains on its share of every batch (batch_size pairs per process, so the global batch is
batch_size x processes x grad_accum); rank 0 evaluates, logs, saves and appends to results/metrics.csv.
"""
import time

import utils
from experiments import common


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--out", required=True, help="folder for the trained model")
    parser.add_argument("--stage", choices=sorted(utils.OOD_SOURCES), help="out-of-domain stage first, e.g. usb")
    args = parser.parse_args()
    rank, world = utils.join_process_group()
    start = time.time()
    cfg, tokenizer, model, fib = common.start_run(args)
    if args.stage:
        common.out_of_domain_stage(model, tokenizer, common.load_source(args.stage, cfg), fib, cfg)
    result, _ = common.fib_stage(model, tokenizer, fib, cfg, alone=not args.stage)
    if rank != 0:
        return
    utils.save_model(model, tokenizer, args.out, cfg, result.history)
    names = ["validation", "validation_all", "test", "test_all"]
    condition = f"{args.stage}_then_fib" if args.stage else "fib_only"
    evaluation = utils.evaluate_condition(model, tokenizer, {k: fib[k] for k in names}, cfg, condition,
                                          args.stage or "", time.time() - start, for_study=False)
    print(f"{world} process(es); saved to {args.out}")
    print(evaluation.table[utils.SUMMARY_COLUMNS].round(3).to_string())


if __name__ == "__main__":
    main()
