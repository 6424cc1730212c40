"""How many labelled pairs a user needs before trusting the detector on a new source: on each set and domain the
detector never trained on, draw n labelled pairs (n = 25, 50, 100, 200; 200 draws each), fit the threshold for
precision 0.8 on them (HallucinationDetector.calibrate's rule: the lowest threshold reaching it), apply it to the
rest of that set, and count the draws whose precision there lies within 0.8 ± 0.05.

    python -m experiments.calibration [--profile cpu] [--model models/detector] [--repeats 200]

The rule, fixed before any run: a source needs the fewest pairs at which at least 80% of the draws land within the
tolerance ("more than 200" where no size does; undefined, left empty, where the set is too small to try them).
Writes results/detector/calibration.csv (one row per set, domain and size) and calibration_summary.csv (pairs
needed per set and domain).
"""
from pathlib import Path

import numpy as np
import pandas as pd

import utils
from experiments import common
from vf.calibration import pairs_enough, pairs_needed

SIZES, TARGET, TOLERANCE, SHARE = (25, 50, 100, 200), 0.8, 0.05, 0.8


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--model", type=Path, default=None, help="default: <models_dir>/detector")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    cfg = common.config_from_args(args)
    folder = args.model or Path(cfg.models_dir) / "detector"
    detector = utils.HallucinationDetector.from_pretrained(folder)
    info = utils.read_json(folder / "detector.json")
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    sets = {name: df for name, df in utils.evaluation_sets(fib).items() if name in info["never_trained_on"]}
    if "dialsummeval" in sets:  # one source to a user: its systems together, not abstractive and extractive apart
        sets["dialsummeval"] = sets["dialsummeval"].assign(domain="samsum")
    rows, summary = [], []
    for name, df in sets.items():
        df = utils.limit_documents({"all": df}, cfg.max_docs)["all"] if cfg.max_docs else df
        p = detector.score(df["premise"], df["hypothesis"])
        y = (df["label"] == utils.INCONSISTENT).to_numpy()
        for domain in sorted(df["domain"].unique()):
            mask = (df["domain"] == domain).to_numpy()
            table = pairs_needed(y[mask], p[mask], SIZES, TARGET, TOLERANCE, args.repeats, seed=cfg.seed)
            rows.append(table.assign(set=name, domain=domain))
            summary.append(dict(set=name, domain=domain, pairs=int(mask.sum()), inconsistent=int(y[mask].sum()),
                                pairs_needed=pairs_enough(table, SHARE), target_precision=TARGET,
                                tolerance=TOLERANCE, share_of_draws=SHARE))
        print(pd.DataFrame(summary).to_string(index=False), flush=True)
    out = Path(cfg.results_dir) / "detector"
    out.mkdir(parents=True, exist_ok=True)
    columns = ["set", "domain", "pairs", "draws", "within_tolerance", "reached", "median_precision", "median_recall",
               "source_pairs"]
    pd.concat(rows)[columns].round(4).to_csv(out / "calibration.csv", index=False)
    frame = pd.DataFrame(summary).assign(detector=utils.weights_digest(folder))
    frame.replace(np.inf, "more than 200").to_csv(out / "calibration_summary.csv", index=False)
    print(f"wrote {out / 'calibration.csv'} and calibration_summary.csv")


if __name__ == "__main__":
    main()
