"""Write the evaluation history of a stage whose model was not saved on its own (notebook 3's USB stage) from its
latest checkpoint to a results file.

    python -m experiments.stage_history models/checkpoints/ood_stage results/usb_then_fib/usb_stage_history.csv
"""
import argparse
from pathlib import Path

import utils


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    history = utils.checkpoint_history(args.checkpoints)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    history.round(4).to_csv(args.out, index=False)
    print(history.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
