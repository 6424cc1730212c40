"""The detector's sources compared on validation only: each variant of the recipe (vf/recipe.py) is built
(vf.guardrail.build_detector) into models/detector_levers/<variant> unless it is there, then measured on what
selection may see: the validation ROC AUC of every family's sets at its kept update (a family left out of training is
watched, never selecting), its history, and the shortcut on FIB *validation* documents. Nothing here reads a test
split; notebook 4 scores the shipped detector on test once.

    python -m experiments.detector_levers [--profile cpu] [--variants all_claims without_web ...]

The rules, fixed before any variant was measured (one seed each, so a difference under 0.01 is not read as one):
1. The base: the full NLI stage's (nli-full) unless `all_claims` on it has a lower mean validation ROC AUC over every
   family than `all_claims_on_kept_base`.
2. A claim family (web, lfqa, dialogue) stays in the mix unless leaving it out raises the mean validation ROC AUC of
   the families trained on in both runs by more than 0.01, or keeping it lowers FIB validation by more than 0.01.
3. Selection: the detector keeps the update its own sources' validation selects, unless, over the three runs that
   leave one claim family out, that update reads the left-out family worse than the family's best update by more
   than 0.01 on average, and the last update is closer to that best; then it keeps its last update.
Results: results/detector/levers.csv (one row per variant) and levers_decision.json (the three rules' numbers).
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd

import utils
from experiments import common

CLAIM_FAMILIES = utils.CLAIM_FAMILIES
FULL = dict(detector_base="nli-full")
VARIANTS = {  # config overrides of the recipe, each one change from `all_claims`
    "all_claims": FULL,
    "no_claims": dict(FULL, detector_leave_out=CLAIM_FAMILIES),
    **{f"without_{family}": dict(FULL, detector_leave_out=(family,)) for family in CLAIM_FAMILIES},
    "all_claims_on_kept_base": dict(detector_base="nli-minilm"),
}
TOLERANCE = 0.01  # one seed per variant: differences below this are not read as differences


def family_of_set() -> dict[str, str]:
    """Validation set name -> the family of the part it validates (fib_validation_all -> news, ...)."""
    names = utils.mix_validation_names(utils.DETECTOR_MIX)
    return {names[p.name]: p.family for p in utils.DETECTOR_MIX if p.name in names}


def measure(cfg: utils.Config, fib: dict, folder: Path, variant: str) -> dict:
    """A built detector's validation numbers: every set's ROC AUC at its kept update and at its last, the families'
    means, the best any evaluation reached on each left-out set, and the validation-only shortcut."""
    info = utils.read_json(folder / "detector.json")
    history = pd.read_csv(folder / "history.csv").set_index("update")
    sets = [name.split("/")[0] for name in history.columns if name.endswith("/roc_auc") and "mean" not in name]
    kept, last = history.loc[info["kept_update"]], history.iloc[-1]
    families = family_of_set()
    row = dict(variant=variant, base=info["base_model"], training_pairs=sum(info["training_pairs"].values()),
               left_out=" ".join(cfg.detector_leave_out), kept_update=info["kept_update"],
               last_update=int(history.index[-1]))
    for name in sets:
        row[f"{name}"] = kept[f"{name}/roc_auc"]
        if name in info.get("watched", []):  # never selecting: how its best and last compare with the kept update
            row[f"{name}@best"] = history[f"{name}/roc_auc"].max()
            row[f"{name}@last"] = last[f"{name}/roc_auc"]
    for family in dict.fromkeys(families.values()):
        members = [name for name in sets if families.get(name) == family]
        row[f"family_{family}"] = float(np.mean([kept[f"{name}/roc_auc"] for name in members]))
    row["mean_every_family"] = float(np.mean([row[f"family_{f}"] for f in dict.fromkeys(families.values())]))
    detector = utils.HallucinationDetector.from_pretrained(folder)
    frame = utils.shortcut_frame(fib, splits=("validation_all",))
    shortcut = utils.shortcut_row(frame, detector.score(frame["premise"], frame["hypothesis"]), variant)
    return dict(row, validation_style_auc=shortcut["style_auc"], validation_documents=shortcut["documents"],
                minutes=info["minutes"], device=info["device"], profile=cfg.profile)


def decide(table: pd.DataFrame) -> dict:
    """The module docstring's three rules on the measured variants: the base, the claim families kept, the update."""
    rows = table.set_index("variant")
    decision = {}
    if {"all_claims", "all_claims_on_kept_base"} <= set(rows.index):
        full, kept = rows.loc["all_claims", "mean_every_family"], rows.loc["all_claims_on_kept_base",
                                                                           "mean_every_family"]
        decision["base"] = dict(full=full, kept=kept, chosen="nli-full" if full >= kept else "nli-minilm")
    families = {}
    for family in CLAIM_FAMILIES:
        without = f"without_{family}"
        if not {"all_claims", without} <= set(rows.index):
            continue
        others = [c for c in rows.columns if c.startswith("family_") and c != f"family_{family}"]
        gain_without = float(rows.loc[without, others].mean() - rows.loc["all_claims", others].mean())
        fib_cost = float(rows.loc[without, "fib_validation_all"] - rows.loc["all_claims", "fib_validation_all"])
        families[family] = dict(others_gain_when_left_out=gain_without, fib_cost_of_keeping=fib_cost,
                                kept=not (gain_without > TOLERANCE or fib_cost > TOLERANCE))
    decision["families"] = families
    shortfalls = []
    for family in CLAIM_FAMILIES:
        if f"without_{family}" not in rows.index:
            continue
        row = rows.loc[f"without_{family}"]
        watched = [c.removesuffix("@best") for c in rows.columns if c.endswith("@best") and not pd.isna(row[c])]
        shortfalls.append(dict(family=family, kept=float(np.mean([row[f"{n}@best"] - row[n] for n in watched])),
                               last=float(np.mean([row[f"{n}@best"] - row[f"{n}@last"] for n in watched]))))
    if shortfalls:
        kept_gap, last_gap = (float(np.mean([s[k] for s in shortfalls])) for k in ("kept", "last"))
        decision["selection"] = dict(per_family=shortfalls, mean_shortfall_of_kept=kept_gap,
                                     mean_shortfall_of_last=last_gap,
                                     chosen="last" if kept_gap > TOLERANCE and last_gap < kept_gap else "selected")
    return decision


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=sorted(VARIANTS))
    args = parser.parse_args()
    rows = []
    fib = utils.limit_documents(utils.fib_splits(), common.config_from_args(args).max_docs)  # the same for each
    for variant in args.variants:
        # --set applies last: a quick run may point detector_base at another model
        cfg = utils.get_config(args.profile, **{**VARIANTS[variant], **common.parse_overrides(args.set)})
        utils.seed_everything(cfg.seed)
        folder = Path(cfg.models_dir) / "detector_levers" / variant
        if not (folder / "model.safetensors").exists():
            utils.build_detector(cfg, fib, folder)
        rows.append(measure(cfg, fib, folder, variant))
        print(pd.DataFrame(rows).round(3).to_string(index=False))
    table = pd.DataFrame(rows)
    out = Path(cfg.results_dir) / "detector" / "levers.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.round(4).to_csv(out, index=False)
    decision = decide(table)
    (out.parent / "levers_decision.json").write_text(json.dumps(decision, indent=2))
    print(json.dumps(decision, indent=2), f"\nwrote {out}")


if __name__ == "__main__":
    main()
