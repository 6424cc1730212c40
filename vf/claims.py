"""Summaries read as claims: every choice of how the detector reads a (document, summary) pair, in one value.

A Reading fixes the window, how a long document is read (MODES), whether a summary is split into sentences, how
the sentences' scores make the summary's (AGGREGATIONS), the batch and how the head is read; it is checked when
made and saved with a model (reading.json).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config, ConfigError
from .io import DataError, blank_positions
from .reading import document_windows, select_evidence, split_sentences
from .scoring import HEAD_READINGS

# a summary's score from its sentences' scores: "max" (one unsupported sentence makes it unsupported), or the mean
AGGREGATIONS = {"max": np.max, "mean": np.mean}


@dataclasses.dataclass(frozen=True)
class Reading:
    """How the detector reads pairs; every field is checked here, when the reading is made."""
    max_length: int = 160  # tokens per (document part, claim) pair
    mode: str = "evidence"  # one of MODES
    evidence_sentences: int | None = 3  # for mode "evidence"
    overlap: int = 1  # sentences shared by neighbouring windows, for mode "chunk"
    claims: bool = True  # split each summary into sentences and score each against its own evidence
    aggregate: str = "max"  # one of AGGREGATIONS: the summary's score from its sentences'
    score_as: str = "contradiction_vs_entailment"  # one of scoring.HEAD_READINGS
    batch_size: int = 64

    def __post_init__(self):
        checks = [(self.mode in MODES, f"mode must be one of {sorted(MODES)}, got {self.mode!r}"),
                  (self.aggregate in AGGREGATIONS, f"aggregate must be one of {sorted(AGGREGATIONS)}, "
                                                   f"got {self.aggregate!r}"),
                  (self.score_as in HEAD_READINGS and self.score_as != "class_probabilities",
                   f"score_as must be one of {sorted(set(HEAD_READINGS) - {'class_probabilities'})}, "
                   f"got {self.score_as!r}"),
                  (self.mode != "evidence" or (self.evidence_sentences or 0) >= 1,
                   "mode 'evidence' needs evidence_sentences >= 1 (the sentences kept per claim)"),
                  (self.max_length >= 16, f"max_length={self.max_length} is too small; use at least 16"),
                  (self.batch_size >= 1 and self.overlap >= 0, "batch_size must be >= 1 and overlap >= 0")]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"Reading: {message}.")

    @classmethod
    def from_config(cls, cfg: Config, **overrides) -> "Reading":
        """The reading a model trained with cfg was trained and selected with: whole summaries, its window, its
        evidence (or the document cut at the window) and its head reading."""
        mode = "evidence" if cfg.evidence_sentences else "truncate"
        return cls(**{**dict(max_length=cfg.max_length, mode=mode, evidence_sentences=cfg.evidence_sentences,
                             claims=False, score_as=cfg.score_as, batch_size=cfg.eval_batch_size), **overrides})

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / "reading.json"
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, folder: str | Path, **overrides) -> "Reading | None":
        path = Path(folder) / "reading.json"
        return cls(**{**json.loads(path.read_text()), **overrides}) if path.exists() else None


def check_texts(documents, summaries) -> tuple[list[str], list[str]]:
    """Lists of documents and summaries, one of each per pair, none empty; else a DataError naming the first."""
    documents, summaries = list(documents), list(summaries)
    if len(documents) != len(summaries):
        raise DataError(f"{len(documents)} documents but {len(summaries)} summaries; pass one of each per pair.")
    for name, texts in (("document", documents), ("summary", summaries)):
        bad = blank_positions(texts)
        if bad:
            raise DataError(f"{name} {bad[0]} is empty or not a string ({len(bad)} in all); every pair needs "
                            "a non-empty document and summary.")
    return documents, summaries


def claim_rows(documents: list[str], summaries: list[str], reading: Reading) -> pd.DataFrame:
    """One row per claim (a summary sentence, or the whole summary without claims): pair, sentence, claim."""
    rows = []
    for i, summary in enumerate(summaries):
        sentences = split_sentences(summary) if reading.claims else [summary.strip()]
        rows += [dict(pair=i, sentence=j, claim=s) for j, s in enumerate(sentences or [summary.strip()])]
    return pd.DataFrame(rows).assign(document=lambda df: [documents[i] for i in df["pair"]])


def _truncated(pairs: pd.DataFrame, reading: Reading, tokenizer) -> pd.DataFrame:
    return pairs  # fit_pairs cuts the document at the window when tokenising


def _evidence(pairs: pd.DataFrame, reading: Reading, tokenizer) -> pd.DataFrame:
    return select_evidence(pairs, reading.evidence_sentences)


def _windows(pairs: pd.DataFrame, reading: Reading, tokenizer) -> pd.DataFrame:
    windows = [(r, w) for r, d, c in zip(pairs["row"], pairs["premise"], pairs["hypothesis"])
               for w in document_windows(d, c, tokenizer, reading.max_length, reading.overlap)]
    rows = np.array([r for r, _ in windows], dtype=int)
    return pd.DataFrame({"premise": [w for _, w in windows], "hypothesis": pairs["hypothesis"].to_numpy()[rows],
                         "row": rows})


# how the document is read next to one claim: cut at the window; the k sentences most similar to the claim; or
# windows over the whole document, the claim supported where any window supports it (claim_scores takes the lowest)
MODES = {"truncate": _truncated, "evidence": _evidence, "chunk": _windows}


def model_inputs(claims: pd.DataFrame, reading: Reading, tokenizer) -> pd.DataFrame:
    """The (premise, hypothesis) pairs the model scores for the claims, each with its claim's row: one per claim,
    or one per window of the document in mode "chunk"."""
    pairs = pd.DataFrame({"premise": claims["document"].to_numpy(), "hypothesis": claims["claim"].to_numpy(),
                          "row": np.arange(len(claims))})
    return MODES[reading.mode](pairs, reading, tokenizer)


def claim_scores(claims: pd.DataFrame, inputs: pd.DataFrame, p: np.ndarray) -> np.ndarray:
    """One score per claim: its input's, or the lowest over its windows (supported where any window supports it)."""
    return pd.Series(p).groupby(inputs["row"].to_numpy()).min().reindex(range(len(claims))).to_numpy()


def summary_scores(claims: pd.DataFrame, scores: np.ndarray, reading: Reading, n_pairs: int) -> np.ndarray:
    """One score per summary from its claims' scores, by the reading's aggregation."""
    return pd.Series(scores).groupby(claims["pair"].to_numpy()).agg(AGGREGATIONS[reading.aggregate]) \
        .reindex(range(n_pairs)).to_numpy()
