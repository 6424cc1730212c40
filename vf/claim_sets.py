"""The claim-level sets (web claims, long-form answers, dialogue, climate) and DialSummEval: one loader into the pair
schema, their licences, and splits by group (every premise and every claim on one side)."""
from __future__ import annotations

import pandas as pd

from .config import CONSISTENT, ConfigError, INCONSISTENT, SPLIT_SEED
from .io import _check_label, _check_pairs, _files, _local_data, _require_fields, read_jsonl
from .splits import split_by_document

# set -> (folder under the data folder, what it judges, licence); a model trained on a set inherits its terms
CLAIM_SETS = {
    "factcheck_gpt": ("claims/factcheck_gpt", "ChatGPT claims vs retrieved web passages",
                      "Apache-2.0; evidence is third-party web text (research use)"),
    "lfqa": ("claims/lfqa", "long-form answers' sentences vs the documents they cite",
             "no licence stated: research use"),
    "begin": ("claims/begin", "dialogue responses vs their knowledge snippet",
              "CC BY 4.0 (WoW, CMU-DoG) / CDLA-Sharing 1.0 (TopicalChat)"),
    "faithdial_audit": ("claims/faithdial_audit", "dialogue responses vs their knowledge snippet",
                        "MIT; source corpora as BEGIN's"),
    "climate_fever": ("claims/climate_fever", "climate claims vs Wikipedia evidence sentences",
                      "no licence stated (research use); Wikipedia CC BY-SA 3.0"),
    "dialsummeval": ("dialsummeval", "SAMSum dialogue summaries vs the dialogue (experts' consistency ratings)",
                     "no licence stated (research use); SAMSum dialogues CC BY-NC-ND 4.0 (non-commercial)"),
}
EVALUATION_ONLY = ("dialsummeval",)  # never trained or selected on
LLM_AGGREFACT_PARTS = ("factcheck_gpt", "lfqa")  # a model trained on them has seen part of LLM-AggreFact
PARTIAL_LABELS = ("partially-support", "partially")  # partly supported claims, labelled inconsistent in the files
CLAIM_FIELDS = ["premise", "hypothesis", "label", "label_orig", "doc_id", "group_id", "domain"]


def load_claim_set(name: str, partial: bool = True) -> pd.DataFrame:
    """A claim set in the pair schema: label 0 (supported) -> consistent, 1 -> inconsistent; doc_id is the set's
    group (connected premises and claims), so that a split by document keeps both on one side. partial=False drops
    the partly supported claims."""
    if name not in CLAIM_SETS:
        raise ConfigError(f"unknown claim set {name!r}; choose among {sorted(CLAIM_SETS)}.")
    folder, _, _ = CLAIM_SETS[name]
    rows = []
    for path in _files(_local_data(folder, f"{name} folder"), "*.jsonl"):
        for record in read_jsonl(path):
            where = record["_where"]
            _require_fields(record, CLAIM_FIELDS, where)
            label = _check_label(record["label"], {0, 1}, where)
            rows.append(dict(premise=record["premise"].strip(), hypothesis=record["hypothesis"].strip(),
                             label=INCONSISTENT if label else CONSISTENT, doc_id=f"{name}-{record['group_id']}",
                             dataset=name, domain=record["domain"], label_orig=record["label_orig"],
                             system=record.get("system", record.get("model", "")), _where=where))
    pairs = _check_pairs(pd.DataFrame(rows), name)
    return pairs if partial else pairs[~pairs["label_orig"].isin(PARTIAL_LABELS)].reset_index(drop=True)


def claim_splits(name: str, pairs: pd.DataFrame | None = None, seed: int = SPLIT_SEED) -> dict[str, pd.DataFrame]:
    """train / validation / test, 80/10/10 by group; an evaluation-only set is refused."""
    if name in EVALUATION_ONLY:
        raise ConfigError(f"{name} is for evaluation only: it is never split for training or selection.")
    pairs = load_claim_set(name) if pairs is None else pairs
    return split_by_document(pairs, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=seed)
