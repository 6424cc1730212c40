"""What runs write under results/: metrics.csv rows with run ids, configs, and the study's test scores."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config, REPO_DIR
from .device import device_description
from .io import DataError
from .metrics import METRICS
from .model import model_display_name


SUMMARY_COLUMNS = ["n_pairs", "roc_auc", "pr_auc", "choice_accuracy", "js_divergence", "threshold",
                   "precision_at_threshold", "recall_at_threshold"]
SHORT_NAMES = {"n_pairs": "pairs", "roc_auc": "ROC AUC", "pr_auc": "PR AUC", "choice_accuracy": "choice acc.",
               "js_divergence": "JS div.", "threshold": "best-F1 t", "precision_at_threshold": "precision",
               "recall_at_threshold": "recall"}
# the settings a reader needs to know which run a table comes from; run_config.json has all of them
KEY_SETTINGS = ("profile", "max_length", "evidence_sentences", "score_as", "batch_size", "epochs", "fib_only_epochs",
                "patience", "lr", "ood_epochs", "seed")


# the NLI stage's own (notebook 0): it trains the packaged MiniLM, in batches of nli_batch_size
NLI_SETTINGS = ("profile", "max_length", "evidence_sentences", "nli_sets", "nli_max_pairs_per_set", "nli_epochs",
                "nli_batch_size", "lr", "seed")


def settings(cfg: Config, stage: str = "fib") -> pd.DataFrame:
    """The model's name and the handful of settings that matter to a stage ("fib", or "nli"), as a one-column table."""
    keys = {"fib": KEY_SETTINGS, "nli": NLI_SETTINGS}[stage]
    model = "all-MiniLM-L6-v2 (packaged), a new 3-label head" if stage == "nli" else model_display_name(cfg)
    values = {"model": model, **{k: ", ".join(v) if isinstance(v := getattr(cfg, k), tuple) else v for k in keys}}
    return pd.Series(values, name="value").astype(str).to_frame()


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """A metrics table as a notebook shows it: the summary columns under short names, pairs as integers,
    choice accuracy only on the *_all splits (where it is defined), 3 decimals."""
    shown = table[SUMMARY_COLUMNS].astype(float).round(3).rename(columns=SHORT_NAMES)
    shown["pairs"] = shown["pairs"].astype(int)
    return shown.astype(object).where(shown.notna(), "")


# results/metrics.csv: who ran what, every METRICS entry, the threshold metrics, and where it ran
METRICS_COLUMNS = ["timestamp", "run_id", "condition", "ood_source", "model", "seed", "split", "n_pairs",
                   "n_inconsistent", *METRICS, "recall_at_0.8", "precision_at_0.8", "threshold", "precision_at_threshold",
                   "recall_at_threshold", "f1_at_threshold",
                   "balanced_accuracy", "profile", "config_hash", "device", "wall_seconds", "git_commit"]


def config_hash(cfg: Config | dict) -> str:
    """8 hex digits that change with any setting a run of metrics.csv reads: not the seed, where results go, or the
    detector's settings (detector_*: a detector writes no metrics rows). A dict is a config as configs.jsonl holds it."""
    fields = cfg if isinstance(cfg, dict) else dataclasses.asdict(cfg)
    settings = {k: v for k, v in fields.items()
                if k not in ("seed", "resume", "results_dir", "models_dir") and not k.startswith("detector_")}
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def new_run_id(cfg: Config, condition: str) -> str:
    """A run's id in results/: condition, profile, seed, settings and start time."""
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
    return f"{condition}-{cfg.profile}-seed{cfg.seed}-{config_hash(cfg)}-{stamp}"


def run_settings(run_id: str) -> str:
    """A run id less its start time (new_run_id): condition, profile, seed and settings, shared by reruns."""
    return run_id.rsplit("-", 1)[0]


def append_metrics(table: pd.DataFrame, cfg: Config, condition: str, ood_source: str = "",
                   wall_seconds: float = float("nan"), run_id: str | None = None) -> str:
    """Append one row per split to results/metrics.csv, and the config to results/configs.jsonl; returns the run id."""
    path = Path(cfg.results_dir) / "metrics.csv"
    run_id = run_id or new_run_id(cfg, condition)
    rows = table.rename_axis("split").reset_index().assign(
        timestamp=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"), run_id=run_id, condition=condition,
        ood_source=ood_source, model=model_display_name(cfg), seed=cfg.seed, profile=cfg.profile,
        config_hash=config_hash(cfg), device=device_description(), wall_seconds=round(wall_seconds, 1),
        git_commit=git_commit())
    rows = rows.reindex(columns=METRICS_COLUMNS).astype({"n_pairs": int, "n_inconsistent": int}).round(4)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",") if path.exists() else METRICS_COLUMNS
    if header == METRICS_COLUMNS:
        rows.to_csv(path, mode="a", header=not path.exists(), index=False)
    else:  # a metric added or removed since the file was started: rewrite it with the union of the columns
        old = pd.read_csv(path)
        columns = METRICS_COLUMNS + [c for c in old.columns if c not in METRICS_COLUMNS]
        pd.concat([old, rows], ignore_index=True).reindex(columns=columns).to_csv(path, index=False)
    with open(path.with_name("configs.jsonl"), "a", encoding="utf-8") as f:  # the config behind those rows
        f.write(json.dumps(dict(run_id=run_id, config_hash=config_hash(cfg), config=dataclasses.asdict(cfg))) + "\n")
    return run_id


def latest_run(cfg: Config, condition: str) -> pd.DataFrame:
    """The metrics rows (one per split) of the latest run of `condition` with this config's settings and seed."""
    path = Path(cfg.results_dir) / "metrics.csv"
    if not path.exists():
        return pd.DataFrame(columns=METRICS_COLUMNS).set_index("split")
    rows = pd.read_csv(path)
    rows = rows[(rows["condition"] == condition) & (rows["seed"] == cfg.seed)
                & (rows["config_hash"] == config_hash(cfg))]
    rows = rows.reindex(columns=list(dict.fromkeys([*METRICS_COLUMNS, *rows.columns])))  # metrics added since
    return rows[rows["run_id"] == rows["run_id"].iloc[-1]].set_index("split") if len(rows) else rows.set_index("split")


def study_folder(cfg: Config) -> Path:
    """Where a profile's study keeps its test scores and summaries: results/study/<profile>/."""
    return Path(cfg.results_dir) / "study" / cfg.profile


def record_test_scores(cfg: Config, condition: str, test_all: pd.DataFrame, p: np.ndarray,
                       ood_source: str = "", run_id: str = "") -> Path:
    """Add one run's FIB test_all scores to results/study/<profile>/scores.csv, which experiments/study.py
    summarises (the latest run of a condition and seed counts). They replace an earlier run with the same settings
    (its run id up to the start time), so that rerunning a notebook does not grow the file."""
    path = study_folder(cfg) / "scores.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame({"condition": condition, "seed": cfg.seed, "ood_source": ood_source, "run_id": run_id,
                         "pair_id": test_all["pair_id"].to_numpy(), "p": np.round(p, 6), "git_commit": git_commit()})
    if path.exists():
        old = pd.read_csv(path, keep_default_na=False)
        same_settings = (old["run_id"].map(run_settings) == run_settings(run_id)) & (old["ood_source"] == ood_source)
        rows = pd.concat([old[~same_settings], rows], ignore_index=True)
    rows.to_csv(path, index=False)
    return path


def git_commit() -> str:
    """The current commit, with '-dirty' when code (anything outside results/) has uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR, capture_output=True,
                             text=True, check=True).stdout.strip()
        # results/ is what runs write, not code
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
                               cwd=REPO_DIR, capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def upsert_rows(path: str | os.PathLike, rows: pd.DataFrame, key: str) -> pd.DataFrame:
    """Write rows to a small results table, replacing the rows with the same `key` (e.g. a model's earlier row);
    new columns join the old ones. Returns the whole table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=rows.columns)
    table = pd.concat([old[~old[key].isin(rows[key])], rows], ignore_index=True)
    table.to_csv(path, index=False)
    return table


def latest_scores(cfg: Config, condition: str, frame: pd.DataFrame) -> np.ndarray | None:
    """The FIB test scores of the latest run of `condition` with this config's settings and seed (latest_run),
    aligned with `frame`'s pair_id (a test split); None when there is no such run."""
    run = latest_run(cfg, condition)
    path = study_folder(cfg) / "scores.csv"
    if not len(run) or not path.exists():
        return None
    scores = pd.read_csv(path)
    scores = scores[scores["run_id"] == run["run_id"].iloc[0]].set_index("pair_id")["p"]
    return scores.reindex(frame["pair_id"]).to_numpy() if len(scores) else None


def read_json(path: str | os.PathLike) -> dict:
    """A small JSON results file, with a clear error where it is missing."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} not found; it is written when the model beside it is built (make nli-base, "
                        "make detector).")
    return json.loads(path.read_text())
