"""The shipped detector's stages and build: trained from the NLI base on the recipe's mix (vf/recipe.py), optionally
continued on SummEdits, its thresholds chosen on mixed validation (vf/judge.py), saved with its reading."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .config import INCONSISTENT, SPLIT_SEED, Config, ConfigError
from .device import device_description
from .splits import subsample
from .sources import load_summedits, summedits_splits
from .model import found_or_built, load_model, run_config_of, save_model
from .evaluate import Evaluator
from .stages import Stage, run_stage
from .claims import Reading
from .detector import HallucinationDetector
from .recipe import MixSources, build_mix, DETECTOR_MIX, mix_validation, recipe_parts
from .judge import choose_thresholds, never_trained_on, validation_frame


def _mix_stage(name: str, tokenizer, pairs: pd.DataFrame, frames: dict[str, pd.DataFrame], cfg: Config,
               mean_over: tuple | None = None) -> Stage:
    """A detector stage: cfg.detector_epochs over `pairs`, 3 evaluations an epoch (plus update 0), selected on the
    mean ROC AUC over the validation `frames` named in `mean_over` (default: all; the others are watched)."""
    stage_cfg = dataclasses.replace(cfg, epochs=cfg.detector_epochs, select_metric="mean/roc_auc", patience=None)
    updates = int(np.ceil(len(pairs) / cfg.batch_size / cfg.grad_accum)) * stage_cfg.epochs
    every = max(1, updates // (3 * stage_cfg.epochs))
    stage_cfg = dataclasses.replace(stage_cfg, eval_every=every, checkpoint_every=every)
    if cfg.detector_keep not in ("best", "last"):
        raise ConfigError(f"detector_keep must be 'best' or 'last', got {cfg.detector_keep!r}")
    return Stage(name, stage_cfg, pairs, Evaluator.from_frames(tokenizer, frames, stage_cfg, mean_over=mean_over),
                 keep=cfg.detector_keep)


def detector_stage(tokenizer, mix: pd.DataFrame, fib: dict, cfg: Config, selection=DETECTOR_MIX,
                   watched=()) -> Stage:
    """Train on the mix for cfg.detector_epochs; select on the mean ROC AUC over the validation sets of the
    `selection` parts, and watch those of the `watched` parts (families left out of training)."""
    selecting = mix_validation(fib, cfg, selection)
    return _mix_stage("detector", tokenizer, mix, {**selecting, **mix_validation(fib, cfg, watched)}, cfg,
                      tuple(selecting))


SUMMEDITS_DOMAINS = ("ectsum", "podcast", "qmsumm", "sales_call", "sales_email", "samsum", "scitldr")

def summedits_held_out(summedits: pd.DataFrame, held_out: str | None) -> dict[str, pd.DataFrame]:
    """SummEdits for a stage that must never see the domain `held_out`: the other domains 80/20 by document
    (train, validation) and every pair of `held_out` (test, empty when held_out is None)."""
    if held_out is not None and held_out not in SUMMEDITS_DOMAINS:
        raise ConfigError(f"unknown SummEdits domain {held_out!r}; choose one of {SUMMEDITS_DOMAINS} or None.")
    splits = summedits_splits(summedits[summedits["domain"] != held_out])
    return {**splits, "test": summedits[summedits["domain"] == held_out].reset_index(drop=True)}

def limit_summedits(summedits: pd.DataFrame, max_docs: int | None) -> pd.DataFrame:
    """At most max_docs documents of each SummEdits domain (quick runs), so that every domain stays."""
    if max_docs is None:
        return summedits
    return summedits[summedits.groupby("domain")["doc_id"].rank(method="dense") <= max_docs].reset_index(drop=True)

def replay_pairs(mix: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """The cfg.detector_replay_pairs pairs of the mix that a SummEdits stage replays."""
    return subsample(mix, cfg.detector_replay_pairs, SPLIT_SEED)

def summedits_stage(tokenizer, summedits: dict[str, pd.DataFrame], replay: pd.DataFrame, fib: dict,
                    cfg: Config) -> Stage:
    """The detector continued on SummEdits train (summedits_held_out) plus `replay`, pairs of its own mix (so that
    FIB is not forgotten); selected on the mean ROC AUC over SummEdits validation (its training domains) and FIB's."""
    columns = ["premise", "hypothesis", "label", "doc_id", "source"]
    pairs = pd.concat([summedits["train"].assign(source="summedits")[columns], replay[columns]], ignore_index=True)
    frames = {"summedits_validation": summedits["validation"], "fib_validation_all": fib["validation_all"]}
    return _mix_stage("summedits", tokenizer, pairs.sample(frac=1.0, random_state=cfg.seed).reset_index(drop=True),
                      frames, cfg)

def build_detector(cfg: Config, fib: dict, folder: Path, parts=None, selection=None) -> Path:
    """Train the detector from cfg.detector_base (else cfg.model_name) on the recipe's `parts` (default: DETECTOR_MIX
    without the families in cfg.detector_leave_out, which are watched), selected on the validation sets of
    `selection` (default: the parts'), choose its thresholds on mixed validation, and save it with its Reading
    (sentence-level claims, max over sentences) and thresholds."""
    start = time.time()
    base = cfg.detector_base or cfg.model_name
    tokenizer, model = load_model(base)
    parts, watched = recipe_parts(cfg) if parts is None else (tuple(parts), ())
    src = MixSources(fib, cfg)
    mix = build_mix(parts, src, cfg)
    checkpoints = Path(cfg.models_dir) / "checkpoints"
    stage = detector_stage(tokenizer, mix, fib, cfg, selection or parts, watched)
    result = run_stage(model, tokenizer, stage, checkpoints / folder.name)
    mix_history, later_history = result.history, None
    counts, replayed = mix["source"].value_counts().to_dict(), 0
    if cfg.detector_summedits:  # then on SummEdits, every domain (its validation documents select)
        summedits = summedits_held_out(limit_summedits(load_summedits(), cfg.max_docs), None)
        replay = replay_pairs(mix, cfg)
        result = run_stage(model, tokenizer, summedits_stage(tokenizer, summedits, replay, fib, cfg),
                           checkpoints / "detector_summedits")
        counts["summedits"], replayed, later_history = len(summedits["train"]), len(replay), result.history
    save_model(model, tokenizer, folder, cfg, mix_history)
    if later_history is not None:
        later_history.to_csv(folder / "summedits_history.csv", index=False)
    reading = Reading.from_config(cfg, claims=True, aggregate="max", **({"mode": cfg.detector_mode}
                                                                        if cfg.detector_mode else {}))
    reading.save(folder)
    validation = validation_frame(fib, src.usb)
    p = HallucinationDetector(model, tokenizer, reading).score(validation["premise"], validation["hypothesis"])
    thresholds = choose_thresholds(validation["label"] == INCONSISTENT, p)
    info = dict(thresholds=thresholds, chosen_on="FIB-XSum validation (all negatives) + USB validation",
                selected_on=list(stage.evaluator.mean_over),
                watched=sorted(set(stage.evaluator.sets) - set(stage.evaluator.mean_over)),
                training_pairs=counts, replayed_pairs=replayed, kept_update=result.best_update,
                never_trained_on=never_trained_on(cfg),
                minutes=round((time.time() - start) / 60, 1), device=device_description(), profile=cfg.profile,
                base_model=base, nli_sets=list(run_config_of(base).get("nli_sets", cfg.nli_sets)))
    (folder / "detector.json").write_text(json.dumps(info, indent=2))
    return folder


def ensure_detector(cfg: Config, fib: dict, folder: Path) -> Path:
    """The detector's folder: built now (build_detector) when it is missing, else the one `make detector` built."""
    return found_or_built(folder, folder / "detector.json",
                          lambda i: f"detector found in {folder}, built earlier on\n  {i['device']}:\n"
                                    f"  {sum(i['training_pairs'].values()):,} pairs, kept update {i['kept_update']}, "
                                    f"{i['minutes']} min",
                          lambda: build_detector(cfg, fib, folder))
