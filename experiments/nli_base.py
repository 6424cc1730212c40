"""The NLI base in models/nli_base (make nli-base): the kept one restored where results/study/curve/base/ holds it
(the base the learning curve starts from, so that every notebook shares it), else the packaged MiniLM trained on
the NLI stage here.

    python -m experiments.nli_base [--rebuild] [--profile cpu] [--set nli_sets="('mnli','rte')" ...]
    python -m experiments.nli_base --full     # models/nli_full: the detector's base (make nli-full)

Per-set validation accuracy goes to results/nli/validation.csv, the stage's history and timing beside it. --full
trains on every pair of every set, Climate-FEVER's claims too, for up to FULL_EPOCHS epochs with patience on held-out
NLI (results/nli_full/): the notebooks' base stays the kept one.
"""
import utils
from experiments import common

# the full stage: every pair (not 6,000 per set), the claim-level NLI set too, as many epochs as held-out NLI rises
FULL = dict(nli_max_pairs_per_set=None, nli_epochs=3,
            nli_sets=("mnli", "snli", "anli", "fever_nli", "mctest_nli", "rte", "climate_fever"))


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--rebuild", action="store_true", help="train the NLI base here even where one is kept")
    parser.add_argument("--full", action="store_true", help="the full NLI stage, into models/nli_full")
    args = parser.parse_args()
    cfg = utils.get_config(args.profile, **{**(FULL if args.full else {}), **common.parse_overrides(args.set)})
    utils.seed_everything(cfg.seed)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    kept = utils.kept_nli_base(cfg) / utils.KEPT_WEIGHTS
    if args.full:
        folder = utils.build_nli_base(cfg, fib, name="nli_full")
    elif args.rebuild or not kept.exists():
        folder = utils.build_nli_base(cfg, fib)
    else:
        folder = utils.restore_nli_base(cfg, fib)
    print("saved to", folder)


if __name__ == "__main__":
    main()
