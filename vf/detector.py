"""HallucinationDetector: score(documents, summaries), a guardrail's scorer, with its reading (claims.Reading)
fixed and checked when the detector is made."""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config
from .device import pick_device
from .model import load_model
from .scoring import predict_proba
from .claims import Reading, check_texts, claim_rows, claim_scores, model_inputs, summary_scores
from .calibration import Calibration, calibrate_threshold, check_labels
from .uncertainty import bootstrap_study


class HallucinationDetector:
    """P(inconsistent) for (document, summary) pairs from a saved model, read as its Reading says."""

    def __init__(self, model, tokenizer, reading: Reading | None = None, device=None):
        self.model, self.tokenizer = model.to(device or pick_device()), tokenizer
        self.reading = reading or Reading()

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **reading) -> "HallucinationDetector":
        """Load a saved model with the reading saved beside it (reading.json), else the one it was trained with
        (run_config.json); keyword arguments change single fields of it (e.g. mode="chunk")."""
        tokenizer, model = load_model(path)
        saved = Reading.load(path, **reading)
        if saved is None:
            run_config = Path(path) / "run_config.json"
            trained = json.loads(run_config.read_text()) if run_config.exists() else {}
            known = {f.name for f in dataclasses.fields(Config)}
            saved = Reading.from_config(Config(**{k: v for k, v in trained.items() if k in known and
                                                  not isinstance(v, list)}), **reading)
        return cls(model, tokenizer, saved)

    def with_reading(self, **changes) -> "HallucinationDetector":
        """The same model read another way (a new, checked Reading)."""
        return HallucinationDetector(self.model, self.tokenizer, dataclasses.replace(self.reading, **changes))

    def score_claims(self, documents, summaries, progress: bool | None = None) -> pd.DataFrame:
        """One row per claim (summary sentence): pair, sentence, claim, P(inconsistent); the summary's score is
        their aggregate (score)."""
        documents, summaries = check_texts(documents, summaries)
        claims = claim_rows(documents, summaries, self.reading)
        inputs = model_inputs(claims, self.reading, self.tokenizer)
        progress = len(inputs) > 2048 if progress is None else progress
        p = predict_proba(self.model, self.tokenizer, inputs, self.reading.max_length, self.reading.batch_size,
                          progress, score_as=self.reading.score_as)
        return claims.drop(columns="document").assign(p_inconsistent=claim_scores(claims, inputs, p))

    def score(self, documents, summaries, progress: bool | None = None) -> np.ndarray:
        """P(inconsistent) per (document, summary) pair."""
        documents, summaries = list(documents), list(summaries)  # counted below: an iterator would be spent
        return self.aggregate(self.score_claims(documents, summaries, progress), len(summaries))

    def calibrate(self, documents, summaries, labels, target_precision: float = 0.8, n_resamples: int = 1000,
                  progress: bool | None = None) -> Calibration:
        """The threshold on P(inconsistent) that reaches target_precision on your own labelled pairs (label 1 or
        True: inconsistent), with its bootstrap interval and the precision and recall to expect on new pairs."""
        documents, summaries = check_texts(documents, summaries)
        labels = check_labels(labels, len(summaries))
        return calibrate_threshold(labels, self.score(documents, summaries, progress), target_precision, n_resamples)

    def aggregate(self, claims: pd.DataFrame, n_summaries: int) -> np.ndarray:
        """Each summary's P(inconsistent) from score_claims' rows, by the reading's aggregation (for a caller who
        wants both the sentences' scores and the summaries')."""
        return summary_scores(claims, claims["p_inconsistent"].to_numpy(), self.reading, n_summaries)


def compare_readings(detector: HallucinationDetector, full: pd.DataFrame, balanced_pair_ids,
                     readings: dict[str, dict], n_resamples: int = 1000) -> pd.DataFrame:
    """ROC AUC (1:1) and binary-choice accuracy (all) per named reading (changes to the detector's), with
    document-bootstrap intervals, each reading's lift over the first, and the scoring time per pair."""
    runs, seconds = {}, {}
    for name, changes in readings.items():
        reader = detector.with_reading(**changes)
        start = time.time()
        runs[name] = [reader.score(full["premise"], full["hypothesis"], progress=False)]
        seconds[name] = (time.time() - start) / len(full)
    names = list(readings)
    table = bootstrap_study(full, balanced_pair_ids, runs, [(name, names[0]) for name in names[1:]], n_resamples)
    table = table[table["metric"].isin(["roc_auc", "choice_accuracy"])].drop(columns="seeds")
    numbers = table[["estimate", "ci_low", "ci_high"]].round(4) + 0.0  # + 0.0: no "-0.0" on a lift of zero
    per_pair = table["condition"].map(seconds).map(lambda s: f"{s * 1000:.1f}" if s == s else "")  # lifts: none
    return table[["condition", "metric"]].join(numbers).assign(ms_per_pair=per_pair).reset_index(drop=True)
