"""Detector speed on this machine: summaries and sentences scored per second, by reading, on FIB-XSum (one-sentence
summaries) and FIB CNN/DM (3-4 sentences, the longest summaries here).

    .venv/bin/python -m bench.detector_speed [--model models/detector] [--pairs 200]   # results/detector/speed.csv
"""
import argparse
from pathlib import Path

import utils

PROFILE = utils.get_config("cpu")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(Path(PROFILE.models_dir) / "detector"))
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()
    detector = utils.HallucinationDetector.from_pretrained(args.model)
    fib = utils.fib_splits()
    sets = {"fib_xsum": fib["test_all"].head(args.pairs), "fib_cnn_dm": utils.load_fib_cnn_dm().head(args.pairs)}
    table = utils.speed_table(detector, sets, {"claims (shipped)": {}, "whole summary": dict(claims=False)})
    out = Path(PROFILE.results_dir) / "detector" / "speed.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
