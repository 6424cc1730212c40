"""FIB's shortcut check: does a model read consistency, or who wrote the summary? Consistent model-written summaries
against the references of the same held-out documents (style AUC 0.5: it reads consistency). Any model, any notebook."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .config import CONSISTENT, Config
from .sources import load_model_generated_consistent
from .metrics import METRICS
from .results import upsert_rows
from .evaluate import score_splits


def shortcut_frame(fib: dict, splits=("validation_all", "test_all")) -> pd.DataFrame:
    """FIB's held-out documents (validation and test; validation alone to choose by it) that have a consistent
    model-written summary: its references, those model summaries, and FIB's inconsistent ones (`kind`)."""
    held_out = pd.concat([fib[name] for name in splits], ignore_index=True)
    model_written = load_model_generated_consistent(held_out["doc_id"].unique())
    held_out = held_out[held_out["doc_id"].isin(set(model_written["doc_id"]))]
    kind = np.where(held_out["label"] == CONSISTENT, "reference", "inconsistent")
    columns = ["premise", "hypothesis", "label", "doc_id"]
    return pd.concat([held_out[columns].assign(kind=kind), model_written[columns].assign(kind="model_consistent")],
                     ignore_index=True)

def shortcut_row(frame: pd.DataFrame, p: np.ndarray, model: str) -> dict:
    """style_auc: the AUC of P(inconsistent) between consistent model summaries (positive) and references; 0.5
    when the model reads consistency, not who wrote the summary. With the mean score of each kind."""
    kind = frame["kind"].to_numpy()
    style = np.isin(kind, ["model_consistent", "reference"])
    means = {f"mean_{k}": float(p[kind == k].mean()) for k in ("reference", "model_consistent", "inconsistent")}
    errors = {f"n_{k}": int((kind == k).sum()) for k in ("reference", "model_consistent", "inconsistent")}
    return dict(model=model, style_auc=METRICS["roc_auc"][0](kind[style] == "model_consistent", p[style]),
                **means, **errors, documents=frame["doc_id"].nunique())

def shortcut_check(model, tokenizer, fib: dict, cfg: Config, name: str) -> dict:
    """shortcut_row for a model read as cfg reads pairs (evaluate.score_splits)."""
    frame = shortcut_frame(fib)
    return shortcut_row(frame, score_splits(model, tokenizer, {"shortcut": frame}, cfg)["shortcut"], name)

SHORTCUT_FILE = Path("nli") / "shortcut.csv"  # under results/: one row per model, every notebook adds its own

# the models in the order the notebooks introduce them (0, 2, 3, 4): each notebook shows its own and those before it
SHORTCUT_ORDER = ("nli_base (zero-shot)", "fib_only", "usb_then_fib", "detector")


def shortcut_table(cfg: Config, row: dict, path: Path | None = None) -> pd.DataFrame:
    """Record a model's shortcut_row (replacing its earlier row) and return the rows of the models introduced up to
    it (SHORTCUT_ORDER), narrowed to the style AUC and the mean P(inconsistent) of each kind; the counts, the same
    for every model, are printed once."""
    table = upsert_rows(path or Path(cfg.results_dir) / SHORTCUT_FILE, pd.DataFrame([row]), "model")
    known = SHORTCUT_ORDER[:SHORTCUT_ORDER.index(row["model"])] if row["model"] in SHORTCUT_ORDER else ()
    order = [name for name in known if name in set(table["model"])] + [row["model"]]
    print(f"{row['documents']} held-out FIB documents: {row['n_reference']} references, "
          f"{row['n_model_consistent']} consistent model summaries,\n  {row['n_inconsistent']} inconsistent summaries")
    means = {"mean_reference": "reference", "mean_model_consistent": "model consistent",
             "mean_inconsistent": "inconsistent"}
    return table.set_index("model").loc[order, ["style_auc", *means]].rename(columns=means).round(3)
