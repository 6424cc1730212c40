"""Build the shipped detector: its base (Config.detector_base, the full NLI stage's) trained on the recipe's mix
(vf/recipe.py), saved with its reading and thresholds in models/detector (make detector). Notebook 4 evaluates it.

    python -m experiments.detector [--profile cpu] [--out models/detector]
"""
from pathlib import Path

import utils
from experiments import common


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--out", type=Path, default=None, help="default: <models_dir>/detector")
    args = parser.parse_args()
    cfg = common.config_from_args(args)
    utils.seed_everything(cfg.seed)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    folder = utils.build_detector(cfg, fib, args.out or Path(cfg.models_dir) / "detector")
    print("saved to", folder)


if __name__ == "__main__":
    main()
