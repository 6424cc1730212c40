"""The seven NLI sets of ../shared/data/nli: one loader into the pair schema, and a validation split by premise."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .config import CONSISTENT, INCONSISTENT, NEUTRAL, NOT_ENTAILED, SPLIT_SEED
from .io import DataError, _check_pairs, _doc_hash, _files, _local_data, _require_fields, read_jsonl
from .splits import split_by_document

# set -> (labels it uses, licence); a model trained on a set inherits its terms (README, "The NLI base")
NLI_SETS = {
    "mnli": ("binary", "DocNLI BSD-3; MultiNLI text OANC (some genres CC BY-SA 3.0)"),
    "snli": ("3-way", "CC BY-SA 4.0"),
    "anli": ("3-way", "CC BY-NC 4.0 (non-commercial)"),
    "fever_nli": ("binary", "DocNLI BSD-3; FEVER CC BY-SA 3.0"),
    "mctest_nli": ("binary", "DocNLI BSD-3; MCTest research licence"),
    "control": ("3-way", "CC BY-NC-SA 4.0 (non-commercial)"),
    "rte": ("binary", "PASCAL RTE via GLUE: research use"),
    # claims vs single Wikipedia evidence sentences (claims/climate_fever): supports / refutes / not enough info
    "climate_fever": ("3-way", "no licence stated (research use); Wikipedia CC BY-SA 3.0"),
}
STANDARD_SETS = tuple(list(NLI_SETS)[:7])  # what load_nli reads unless asked: the NLI base's splits depend on it
FOLDERS = {"climate_fever": "claims/climate_fever"}  # under the data folder; the others in nli/<set>
ORIGINAL_LABELS = {"entailment": CONSISTENT, "neutral": NEUTRAL, "contradiction": INCONSISTENT,
                   "not_entailment": NOT_ENTAILED, "non_entailment": NOT_ENTAILED,
                   "SUPPORTS": CONSISTENT, "REFUTES": INCONSISTENT, "NOT_ENOUGH_INFO": NEUTRAL}


def load_nli(sets=STANDARD_SETS) -> pd.DataFrame:
    """NLI pairs with 3-way labels where the set has them (2 / 1 / 0) and NOT_ENTAILED where it is binary; the
    premise is the document (doc_id), so splits hold out by premise, or, where the set groups its pairs (Climate-FEVER:
    one group per claim), the group. Exact duplicate pairs are dropped, counted."""
    unknown = sorted(set(sets) - set(NLI_SETS))
    if unknown:
        raise DataError(f"unknown NLI set {unknown[0]!r}; choose among {sorted(NLI_SETS)}.")
    rows = []
    for name in sets:
        folder = FOLDERS.get(name, f"nli/{name}")
        for path in _files(_local_data(folder, f"NLI folder {name}"), "*.jsonl"):
            for record in read_jsonl(path):
                where = record["_where"]
                _require_fields(record, ["premise", "hypothesis", "label", "label_orig"], where)
                label = ORIGINAL_LABELS.get(record["label_orig"])
                if label is None:
                    raise DataError(f"{where}: label_orig {record['label_orig']!r} is outside {sorted(ORIGINAL_LABELS)}.")
                if record["label"] != int(label != CONSISTENT):  # the files' label: 1 = not entailed
                    raise DataError(f"{where}: label {record['label']!r} contradicts label_orig "
                                    f"{record['label_orig']!r} (1 means not entailed). Fix one of the two.")
                premise = record["premise"].strip()
                if record.get("article"):  # a lone evidence sentence: its article's title first, as FEVER-NLI's
                    premise = f"{record['article']} . {premise}"
                group = record.get("group_id") or _doc_hash(premise)
                rows.append(dict(premise=premise, hypothesis=record["hypothesis"].strip(), label=label,
                                 doc_id=f"nli-{group}", dataset="nli", source=name, _where=where))
    pairs = pd.DataFrame(rows)
    duplicate = pairs.duplicated(["source", "premise", "hypothesis"])
    conflicting = pairs.groupby(["source", "premise", "hypothesis"])["label"].transform("nunique") > 1
    if duplicate.any() or conflicting.any():
        print(f"NLI: dropped {int(duplicate.sum())} repeated pairs and every copy of {int(conflicting.sum())} "
              "labelled two ways")
    return _check_pairs(pairs[~duplicate & ~conflicting], "NLI")


def nli_splits(pairs: pd.DataFrame | None = None, validation_share: float = 0.04,
               seed: int = SPLIT_SEED) -> dict[str, pd.DataFrame]:
    """train / validation by premise, stratified by set: no premise is in both (MNLI and FEVER share premises
    between their dev and test files)."""
    pairs = load_nli() if pairs is None else pairs
    source_of = pairs.groupby("doc_id")["source"].first()
    return split_by_document(pairs, {"train": 1 - validation_share, "validation": validation_share}, source_of, seed)


def nli_accuracy(df: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """Per set: pairs, binary accuracy (entailed vs not, from P(not entailed) >= 0.5), 3-way accuracy where the set
    is 3-way (argmax of the head), and ROC AUC of P(not entailed). `probs` has one row per pair: the head's softmax
    over (contradiction, neutral, entailment)."""
    from sklearn.metrics import roc_auc_score
    rows = []
    for source, part in df.groupby("source", sort=False):
        p = probs[part.index.to_numpy()]
        not_entailed = (part["label"] != CONSISTENT).to_numpy()
        three_way = NLI_SETS[source][0] == "3-way"
        predicted = np.array([INCONSISTENT, NEUTRAL, CONSISTENT])[p.argmax(axis=1)]
        rows.append(dict(source=source, n=len(part),
                         accuracy_binary=float(np.mean((1 - p[:, 2] >= 0.5) == not_entailed)),
                         accuracy_3way=float(np.mean(predicted == part["label"].to_numpy())) if three_way else np.nan,
                         roc_auc=float(roc_auc_score(not_entailed, 1 - p[:, 2]))))
    return pd.DataFrame(rows)
