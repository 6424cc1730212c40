"""The NLI base in models/nli_base (make nli-base): the kept one restored where results/study/curve/base/ holds it
(the base the learning curve starts from, so that every notebook shares it), else the packaged MiniLM trained on
the NLI stage here.

    python -m experiments.nli_base [--rebuild] [--profile cpu] [--set nli_sets="('mnli','rte')" ...]

Per-set validation accuracy goes to results/nli/validation.csv, the stage's history and timing beside it.
"""
import utils
from experiments import common


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--rebuild", action="store_true", help="train the NLI base here even where one is kept")
    args = parser.parse_args()
    cfg = common.config_from_args(args)
    utils.seed_everything(cfg.seed)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    kept = utils.kept_nli_base(cfg) / "nli_base_fp16.safetensors"
    folder = utils.build_nli_base(cfg, fib) if args.rebuild or not kept.exists() else utils.restore_nli_base(cfg, fib)
    print("saved to", folder)


if __name__ == "__main__":
    main()
