"""Build the NLI base: the packaged MiniLM trained on the NLI stage, saved in models/nli_base (make nli-base).

    python -m experiments.nli_base [--profile cpu] [--set nli_sets="('mnli','rte')" ...]

Per-set validation accuracy goes to results/nli/validation.csv, the stage's history and timing beside it.
"""
import utils
from experiments import common


def main():
    args = common.parser_with_config(__doc__).parse_args()
    cfg = common.config_from_args(args)
    utils.seed_everything(cfg.seed)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    folder = utils.build_nli_base(cfg, fib)
    print("saved to", folder)


if __name__ == "__main__":
    main()
