"""How the detector reads a claim, compared on validation only: each claim against its 3 TF-IDF evidence sentences
(the shipped reading) or against sentence-aligned windows over the whole document, its best-supported window
counting (SummaC's reading); and the whole summary against its evidence. Every validation set of the recipe's parts
(recipe.mix_validation), read with a built detector (models/detector_levers/all_claims by default).

    python -m experiments.detector_readings [--model models/detector_levers/all_claims] [--profile cpu]

The rule, fixed before the first run: the detector reads with windows (Config.detector_mode = "chunk") when their
mean validation ROC AUC over the recipe's families beats the evidence reading's by more than 0.01 and they still
score at least SPEED_GOAL summaries a second on FIB-XSum validation (timed here, every reading in each round, on 2
threads); otherwise it keeps the evidence, which reads fewer tokens per claim.
Results: results/detector/readings_validation.csv and readings_decision.json.
"""
import json
from pathlib import Path

import numpy as np

import utils
from experiments import common
from experiments.detector_levers import TOLERANCE, family_of_set

SPEED_GOAL = 30  # summaries a second on XSum-length summaries, claims reading, a 2-core CPU
# changes to the built detector's own reading (claims against their evidence, max over sentences)
READINGS = {"evidence (claims, max)": {}, "windows (claims, max)": dict(mode="chunk"),
            "evidence, whole summary": dict(claims=False)}


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--model", type=Path, default=None,
                        help="a built detector; default: <models_dir>/detector_levers/all_claims")
    args = parser.parse_args()
    cfg = common.config_from_args(args)
    folder = args.model or Path(cfg.models_dir) / "detector_levers" / "all_claims"
    detector = utils.HallucinationDetector.from_pretrained(folder)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    sets = {name: df.assign(domain=name) for name, df in utils.mix_validation(fib, cfg).items()}
    table = utils.reading_table(detector, sets, READINGS)
    families = family_of_set()
    table["family"] = table["set"].map(families)
    by_family = table.groupby(["reading", "family"])["roc_auc"].mean().unstack()
    means = by_family.mean(axis=1)
    speed = utils.speed_table(detector, {"fib_validation_all": fib["validation_all"].head(200)}, READINGS, rounds=3)
    out = Path(cfg.results_dir) / "detector"
    out.mkdir(parents=True, exist_ok=True)
    table.round(4).assign(model=str(folder)).to_csv(out / "readings_validation.csv", index=False)
    shipped, windows = means["evidence (claims, max)"], means["windows (claims, max)"]
    decision = dict(mean_over_families={k: round(float(v), 4) for k, v in means.items()},
                    by_family=by_family.round(4).to_dict(orient="index"),
                    summaries_per_s=dict(zip(speed["reading"], speed["summaries_per_s"])),
                    chosen_mode="chunk" if windows - shipped > TOLERANCE and speed.set_index("reading").loc[
                        "windows (claims, max)", "summaries_per_s"] >= SPEED_GOAL else "evidence", model=str(folder),
                    device=utils.device_description())
    (out / "readings_decision.json").write_text(json.dumps(decision, indent=2, default=float))
    print(by_family.round(3).to_string(), "\n", speed.to_string(index=False), "\n",
          f"mean over families: {np.round(means, 3).to_dict()} -> detector_mode = {decision['chosen_mode']!r}")


if __name__ == "__main__":
    main()
