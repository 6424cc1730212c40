"""Intervals: document-bootstrap resampling of the study's metrics."""
from __future__ import annotations


import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .config import INCONSISTENT
from .metrics import METRICS, choice_wins, precision_recall_at


STUDY_METRICS = ("roc_auc", "pr_auc", "choice_accuracy", "recall_at_0.8", "precision_at_0.8")


class DocumentTable:
    """A test split indexed by document, for resampling whole documents quickly."""

    def __init__(self, full: pd.DataFrame, balanced_pair_ids):
        self.y = (full["label"] == INCONSISTENT).to_numpy()
        self.balanced = full["pair_id"].isin(set(balanced_pair_ids)).to_numpy()
        codes, self.docs = pd.factorize(full["doc_id"])
        self.rows = [np.flatnonzero(codes == d) for d in range(len(self.docs))]

    def metrics(self, p: np.ndarray, doc_sample: np.ndarray) -> dict[str, float]:
        rows = np.concatenate([self.rows[d] for d in doc_sample])
        bal = rows[self.balanced[rows]]  # ROC/PR AUC and the 0.8 threshold on the 1:1 pairs, as in the notebooks
        y, s = self.y[bal], p[bal]
        wins = total = 0.0
        for d in doc_sample:  # binary-choice accuracy over every negative of the drawn documents
            w, n = choice_wins(self.y[self.rows[d]], p[self.rows[d]])
            wins, total = wins + w, total + n
        precision, recall = precision_recall_at(y, s, 0.8)
        return {"roc_auc": METRICS["roc_auc"][0](y, s), "pr_auc": METRICS["pr_auc"][0](y, s),
                "choice_accuracy": wins / total, "recall_at_0.8": recall, "precision_at_0.8": precision}


def bootstrap_study(full: pd.DataFrame, balanced_pair_ids, runs: dict[str, list[np.ndarray]],
                    lifts: list[tuple[str, str]] = (), n_resamples: int = 1000, seed: int = 0,
                    progress: bool = False) -> pd.DataFrame:
    """Seed-averaged metrics per condition with 95% intervals from resampling documents (not pairs).

    runs maps a condition to one P(inconsistent) array per seed, aligned with `full` (a *_all split); each lift
    (a, b) is a - b on the same resampled documents, so its interval accounts for the pairing."""
    table = DocumentTable(full, balanced_pair_ids)
    all_docs = np.arange(len(table.docs))

    def estimate(doc_sample):
        values = {c: pd.DataFrame([table.metrics(p, doc_sample) for p in ps]).mean() for c, ps in runs.items()}
        for a, b in lifts:
            values[f"{a} - {b}"] = values[a] - values[b]
        return pd.DataFrame(values).T.loc[:, list(STUDY_METRICS)]

    point = estimate(all_docs)
    rng = np.random.default_rng(seed)
    samples = np.stack([estimate(rng.choice(all_docs, len(all_docs), replace=True)).to_numpy()
                        for _ in tqdm(range(n_resamples), desc="bootstrap", leave=False, disable=not progress)])
    # precision is undefined (NaN) in a resample that flags nothing; a metric undefined in every resample has no interval
    defined = np.isfinite(samples).any(axis=0)
    low, high = np.full(defined.shape, np.nan), np.full(defined.shape, np.nan)
    low[defined], high[defined] = np.nanpercentile(samples[:, defined], [2.5, 97.5], axis=0)
    seeds = {c: len(ps) for c, ps in runs.items()}
    lift_seeds = {f"{a} - {b}": f"{seeds[a]} vs {seeds[b]}" for a, b in lifts}
    rows = []
    for i, condition in enumerate(point.index):
        for j, metric in enumerate(point.columns):
            rows.append(dict(condition=condition, metric=metric, estimate=point.iloc[i, j], ci_low=low[i, j],
                             ci_high=high[i, j], seeds=seeds.get(condition) or lift_seeds[condition]))
    return pd.DataFrame(rows)
