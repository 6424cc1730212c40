"""The full NLI stage against the kept NLI base on the same pairs: those held out from both.

    python -m experiments.nli_compare     # after make nli-base and make nli-full

Adding Climate-FEVER to the NLI sets moves the premise-level validation draw, so each base's own validation.csv
scores different pairs. This scores both on the full stage's validation pairs that the kept base never trained on and
gives each set's ROC AUC difference with a 95% interval from resampling premises. Writes
results/nli_full/against_kept_base.csv.
"""
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import utils
from experiments import common
from vf.model import run_config_of
from vf.nli import STANDARD_SETS, nli_accuracy
from vf.stages import nli_data, nli_training_pairs

RESAMPLES = 1000
KEY = ["source", "premise", "hypothesis"]


def held_out_from_both(kept: dict, full: dict, recorded_pairs: int) -> pd.DataFrame:
    """The full stage's validation pairs that the kept base did not train on either (its training draw rebuilt from
    its run config and checked against the count it recorded)."""
    kept_cfg = utils.get_config(kept["profile"], **{k: tuple(v) if isinstance(v, list) else v
                                                    for k, v in kept.items() if k.startswith("nli_")})
    loaded = utils.load_nli(tuple(dict.fromkeys([*STANDARD_SETS, *kept_cfg.nli_sets, *full["nli_sets"]])))
    trained = nli_training_pairs(nli_data(kept_cfg.nli_sets, loaded=loaded), kept_cfg)
    if len(trained) != recorded_pairs:
        raise SystemExit(f"the kept base's training draw rebuilds to {len(trained):,} pairs, but it recorded "
                         f"{recorded_pairs:,}: the data or the split changed since, so held-out pairs cannot be "
                         "told apart.")
    validation = nli_data(full["nli_sets"], loaded=loaded)["validation"]
    seen = validation[KEY].merge(trained[KEY], on=KEY, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    print(f"{int(seen.sum())} of {len(validation)} held-out pairs of the full stage were in the kept base's training")
    return validation[~seen].reset_index(drop=True)


def roc_difference_interval(pairs: pd.DataFrame, a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% interval of ROC AUC(a) - ROC AUC(b) on one set, resampling premises (a premise's pairs move together)."""
    y = (pairs["label"] != utils.CONSISTENT).to_numpy()
    codes, docs = pd.factorize(pairs["doc_id"])
    rows = [np.flatnonzero(codes == d) for d in range(len(docs))]
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(RESAMPLES):
        take = np.concatenate([rows[d] for d in rng.integers(0, len(docs), len(docs))])
        if y[take].all() or not y[take].any():
            continue  # one class only: ROC AUC undefined in this resample
        diffs.append(roc_auc_score(y[take], a[take]) - roc_auc_score(y[take], b[take]))
    return tuple(np.percentile(diffs, [2.5, 97.5])) if diffs else (np.nan, np.nan)


def main():
    parser = common.parser_with_config(__doc__)
    args = parser.parse_args()
    cfg = common.config_from_args(args)
    folders = {"kept_base": Path(cfg.models_dir) / "nli_base", "full": Path(cfg.models_dir) / "nli_full"}
    configs = {name: run_config_of(folder) for name, folder in folders.items()}
    recorded = utils.read_json(utils.kept_nli_base(cfg) / "nli_build" / "timing.json")["pairs"]
    pairs = held_out_from_both(configs["kept_base"], configs["full"], recorded)
    probs, tables = {}, {}
    for name, folder in folders.items():
        tokenizer, model = utils.load_model(folder)
        prepared = utils.prepare_pairs(tokenizer, pairs, cfg.max_length, cfg.eval_batch_size, cfg.evidence_sentences,
                                       f"{name} on the shared held-out pairs")
        probs[name] = utils.score_prepared(model, prepared, score_as="class_probabilities")
        tables[name] = nli_accuracy(pairs, probs[name]).set_index("source")
    rows = []
    for source, part in pairs.groupby("source", sort=False):
        idx = part.index.to_numpy()
        not_entailed = {name: 1 - p[idx, 2] for name, p in probs.items()}
        low, high = roc_difference_interval(part, not_entailed["full"], not_entailed["kept_base"])
        row = dict(source=source, n=len(part), premises=part["doc_id"].nunique())
        for name in folders:
            for metric in ("accuracy_binary", "accuracy_3way", "roc_auc"):
                row[f"{name}_{metric}"] = tables[name].loc[source, metric]
        row.update(roc_auc_difference=row["full_roc_auc"] - row["kept_base_roc_auc"], ci_low=low, ci_high=high)
        rows.append(row)
    out = Path(cfg.results_dir) / "nli_full" / "against_kept_base.csv"
    table = pd.DataFrame(rows).round(4)
    table.to_csv(out, index=False)
    print(table.to_string(index=False))
    print("saved to", out)


if __name__ == "__main__":
    main()
