"""Evaluating a model: the in-training Evaluator, per-split metric tables, and the guardrail's thresholds."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import torch

from .config import Config, ConfigError, INCONSISTENT
from .device import eval_bf16_enabled
from .metrics import (IN_TRAINING_METRICS, METRICS, best_f1_threshold, check_scores, compute_metrics,
                      precision_recall_at, threshold_for_precision)
from .scoring import HEAD_READINGS, PreparedPairs, predict_proba, prepare_pairs, score_prepared
from .results import append_metrics, record_test_scores


class Evaluator:
    """Built once per stage from prepared validation sets; called with the model, it returns named metrics
    ("<set>/<metric>"), and `select_metric` names the one that picks the kept weights; "mean/<metric>" averages
    the sets in `mean_over` (default: all; the others are only watched). Test sets are refused."""

    def __init__(self, sets: dict[str, PreparedPairs], select_metric: str, bf16: bool = False,
                 score_as: str = "contradiction_vs_entailment", mean_over: tuple | None = None):
        self.check_sets(list(sets), select_metric, mean_over)
        self.sets, self.select_metric, self.bf16, self.score_as = sets, select_metric, bf16, score_as
        self.mean_over = tuple(mean_over or sets)

    @staticmethod
    def check_sets(names: list[str], select_metric: str, mean_over: tuple | None = None) -> None:
        """Refuse a test set, a select_metric that names none of the sets, and a mean over sets that are not here."""
        tests = [name for name in names if "test" in name]
        if tests or select_metric.split("/")[0] not in [*names, "mean"]:
            raise ConfigError(f"select_metric {select_metric!r} must name a validation set among {names}"
                              + (f", and no test set may steer training (got {tests})" if tests else ""))
        missing = sorted(set(mean_over or ()) - set(names))
        if missing or (mean_over is not None and not len(mean_over)):
            raise ConfigError(f"mean_over must name one or more of the evaluated sets {names}; got {mean_over}")

    @classmethod
    def from_frames(cls, tokenizer, frames: dict[str, pd.DataFrame], cfg: Config,
                    select_metric: str | None = None, mean_over: tuple | None = None) -> "Evaluator":
        """Prepare each frame with the config's window, batch size and evidence."""
        select_metric = select_metric or cfg.select_metric
        cls.check_sets(list(frames), select_metric, mean_over)  # before any tokenising
        return cls({name: prepare_pairs(tokenizer, df, cfg.max_length, cfg.eval_batch_size, cfg.evidence_sentences,
                                        name) for name, df in frames.items()}, select_metric,
                   eval_bf16_enabled(cfg), cfg.score_as, mean_over)

    def __call__(self, model) -> dict[str, float]:
        metrics = {}
        for name, prepared in self.sets.items():
            y, p = check_scores(prepared.is_inconsistent,
                                score_prepared(model, prepared, bf16=self.bf16, score_as=self.score_as))
            metrics.update({f"{name}/{key}": METRICS[key][0](y, p) for key in IN_TRAINING_METRICS})
        if self.select_metric.startswith("mean/"):  # the mean over the selecting sets, for a stage with many sources
            key = self.select_metric.split("/")[1]
            metrics[self.select_metric] = float(np.mean([metrics[f"{name}/{key}"] for name in self.mean_over]))
        return metrics


def guardrail_table(splits: dict[str, pd.DataFrame], probs: dict[str, np.ndarray], targets=(0.8, 0.9),
                    chosen_on: str = "validation", applied_to: str = "test") -> pd.DataFrame:
    """For each target precision: the threshold chosen on one split, and its precision, recall and share flagged
    (of all pairs and of the consistent ones) on another."""
    y_ref = splits[chosen_on]["label"] == INCONSISTENT
    y, p = (splits[applied_to]["label"] == INCONSISTENT).to_numpy(), probs[applied_to]
    rows = []
    for target in targets:
        try:
            t = threshold_for_precision(y_ref, probs[chosen_on], target)
        except ValueError:  # out of reach on this model: no threshold, nothing flagged
            t = float("nan")
        precision, recall = precision_recall_at(y, p, t)
        rows.append({"target precision": target, f"threshold (from {chosen_on})": t,
                     f"precision on {applied_to}": precision, f"recall on {applied_to}": recall,
                     "share flagged": float(np.mean(p >= t)), "consistent flagged": float(np.mean(p[~y] >= t))})
    return pd.DataFrame(rows).set_index("target precision").round(3)


def score_splits(model, tokenizer, splits: dict[str, pd.DataFrame], cfg: Config) -> dict[str, np.ndarray]:
    """P(inconsistent) for every split; a balanced split reuses the scores of its *_all version."""
    probs = {}
    for name in sorted(splits, key=lambda n: not n.endswith("_all")):
        full, source = probs.get(f"{name}_all"), splits.get(f"{name}_all")
        if full is not None and "pair_id" in splits[name] and splits[name]["pair_id"].isin(source["pair_id"]).all():
            lookup = pd.Series(full, index=source["pair_id"].to_numpy())
            probs[name] = lookup.loc[splits[name]["pair_id"]].to_numpy()
        else:
            probs[name] = predict_proba(model, tokenizer, splits[name], cfg.max_length, cfg.eval_batch_size, False,
                                        evidence_sentences=cfg.evidence_sentences, score_as=cfg.score_as)
    return {name: probs[name] for name in splits}


def evaluate_splits(splits: dict[str, pd.DataFrame], probs: dict[str, np.ndarray]) -> pd.DataFrame:
    """Metrics per split; the best-F1 threshold comes from the validation split of the same kind (1:1 or all)."""
    rows = {}
    for name, df in splits.items():
        kind = "_all" if name.endswith("_all") else ""
        ref = f"validation{kind}" if f"validation{kind}" in splits else None
        threshold = best_f1_threshold(splits[ref]["label"] == INCONSISTENT, probs[ref]) if ref else None
        # FIB's binary-choice accuracy is defined over all of a document's wrong summaries
        doc_ids = df["doc_id"] if kind else None
        rows[name] = compute_metrics(df["label"] == INCONSISTENT, probs[name], doc_ids, threshold)
    return pd.DataFrame(rows).T


@dataclasses.dataclass
class Evaluation:
    """One condition's scores and metrics per split, and the run id its rows carry in results/."""
    table: pd.DataFrame
    probs: dict[str, np.ndarray]
    run_id: str


def evaluate_condition(model, tokenizer, splits: dict[str, pd.DataFrame], cfg: Config, condition: str,
                       ood_source: str = "", wall_seconds: float = float("nan"),
                       for_study: bool = True) -> Evaluation:
    """Score the splits, compute their metrics and append them to results/metrics.csv; with for_study, FIB's test_all
    scores also go to the study's scores.csv."""
    start = time.time()
    probs = score_splits(model, tokenizer, splits, cfg)
    table = evaluate_splits(splits, probs)
    run_id = append_metrics(table, cfg, condition, ood_source, wall_seconds + time.time() - start)
    if for_study and "test_all" in splits:
        record_test_scores(cfg, condition, splits["test_all"], probs["test_all"], ood_source, run_id)
    return Evaluation(table, probs, run_id)


def split_sizes(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Pairs, documents and inconsistent pairs per split."""
    return pd.DataFrame({name: {"pairs": len(df), "documents": df["doc_id"].nunique(),
                                "inconsistent": int((df["label"] == INCONSISTENT).sum())}
                         for name, df in splits.items()}).T


def compare_head_readings(model, tokenizer, frames: dict[str, pd.DataFrame], cfg: Config) -> pd.DataFrame:
    """ROC AUC of every way of reading P(inconsistent) from the head (scoring.HEAD_READINGS), per set: the sets
    are scored once, and each reading is computed from the same class probabilities."""
    rows = []
    for name, df in frames.items():
        prepared = prepare_pairs(tokenizer, df, cfg.max_length, cfg.eval_batch_size, cfg.evidence_sentences, name)
        probs = score_prepared(model, prepared, score_as="class_probabilities")  # contradiction, neutral, entailment
        logits = torch.log(torch.as_tensor(probs).clamp_min(1e-12))  # log-probabilities act as logits
        ids = {"contradiction": 0, "entailment": 2}
        for reading, read in HEAD_READINGS.items():
            if read is not None:
                p = read(logits, ids).numpy()
                rows.append(dict(set=name, score_as=reading, n=len(df), roc_auc=METRICS["roc_auc"][0](
                    prepared.is_inconsistent, p)))
    return pd.DataFrame(rows).pivot(index="set", columns="score_as", values="roc_auc").round(4)
