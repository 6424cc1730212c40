"""The training stages (NLI base, out-of-domain pre-finetuning, FIB): each built once, by one function, as a Stage
(its own config, training pairs and evaluator) and run by run_stage."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from .config import Config, ConfigError, SPLIT_SEED
from .device import device_description, eval_bf16_enabled
from .splits import limit_documents, shuffle_labels, subsample
from .sources import new_fib_other
from .nli import NLI_SETS, STANDARD_SETS, load_nli, nli_accuracy, nli_splits
from .model import PACKAGED_MINILM, found_or_built, load_compact_weights, load_model, save_compact_weights, save_model
from .scoring import prepare_pairs, score_prepared
from .evaluate import Evaluator
from .train import TrainResult, train
from .curve import curve_folder


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: its name, its own settings, its training pairs and the evaluator that selects (keep="best")
    or only watches (keep="last": the last update's weights, for a control that must not select on real labels)."""
    name: str
    cfg: Config
    pairs: pd.DataFrame
    evaluator: Evaluator
    keep: str = "best"


def run_stage(model, tokenizer, stage: Stage, checkpoint_dir: str | os.PathLike | None = None) -> TrainResult:
    """Train the model in place on the stage's pairs, keeping the weights its evaluator selects."""
    print(f"== stage {stage.name}: {len(stage.pairs)} pairs x {stage.cfg.epochs} epoch(s)")
    return train(model, tokenizer, stage.pairs, stage.evaluator, stage.cfg, checkpoint_dir, keep=stage.keep)


def _evaluations_every(n_pairs: int, cfg: Config, every: int | None, evaluations: int = 4) -> int:
    """Updates between evaluations: `every`, else `evaluations` spread over the stage (plus update 0)."""
    updates = math.ceil(n_pairs / cfg.batch_size / cfg.grad_accum) * cfg.epochs
    return every or max(1, math.ceil(updates / evaluations))


def fib_training_pairs(fib: dict[str, pd.DataFrame], cfg: Config) -> pd.DataFrame:
    """The FIB training split the config asks for (1:1 balanced, or every negative), plus any xsum_other sets
    over the same training documents; a pair already in FIB keeps FIB's label."""
    choices = {"balanced": "train", "all": "train_all"}
    if cfg.fib_negatives not in choices:
        raise ConfigError(f"fib_negatives must be one of {sorted(choices)}, got {cfg.fib_negatives!r}")
    pairs = fib[choices[cfg.fib_negatives]]
    if not cfg.fib_other_sets:
        return pairs
    other = new_fib_other(fib, pairs["doc_id"].unique(), cfg.fib_other_sets)
    return pd.concat([pairs, other[pairs.columns.intersection(other.columns)]], ignore_index=True)


def fib_stage(tokenizer, fib: dict[str, pd.DataFrame], cfg: Config, alone: bool = False) -> Stage:
    """The FIB stage: FIB train; a 150-pair train sample (watched) and validation (selects). `alone` (fib_only, no
    stage before it): up to cfg.fib_only_epochs, so that the baseline is trained to convergence."""
    cfg = dataclasses.replace(cfg, epochs=cfg.fib_only_epochs) if alone else cfg
    evaluator = Evaluator.from_frames(tokenizer, {"fib_train_sample": subsample(fib["train"], 150, cfg.seed),
                                                  "fib_validation_all": fib["validation_all"]}, cfg)
    return Stage("fib", cfg, fib_training_pairs(fib, cfg), evaluator)


def out_of_domain_config(cfg: Config, source: str, n_train_pairs: int) -> Config:
    """The out-of-domain stage's settings: its epochs, learning rate and evidence, its evaluations (ood_eval_every,
    else 4 over the stage), selection on the source's own validation split."""
    stage_cfg = dataclasses.replace(cfg, epochs=cfg.ood_epochs, lr=cfg.ood_lr or cfg.lr,
                                    evidence_sentences=cfg.evidence_sentences if cfg.ood_evidence else None,
                                    select_metric=f"{source}_validation/roc_auc")
    return dataclasses.replace(stage_cfg, eval_every=_evaluations_every(n_train_pairs, stage_cfg, cfg.ood_eval_every))


def out_of_domain_stage(tokenizer, source: str, splits: dict[str, pd.DataFrame], fib: dict[str, pd.DataFrame],
                        cfg: Config, shuffled: bool = False) -> Stage:
    """Out-of-domain pre-finetuning (before FIB): its epochs, learning rate and evidence; selected on the source's
    validation split, FIB validation watched as the FIB stage reads it. `shuffled` permutes the training labels (a
    control): it keeps its last update, since selecting on real validation would put back the signal it removes."""
    train_pairs = shuffle_labels(splits["train"], cfg.seed) if shuffled else splits["train"]
    stage_cfg = out_of_domain_config(cfg, source, len(train_pairs))
    evaluator = Evaluator({
        f"{source}_validation": prepare_pairs(tokenizer, splits["validation"], cfg.max_length, cfg.eval_batch_size,
                                              stage_cfg.evidence_sentences, f"{source}_validation"),
        "fib_validation_all": prepare_pairs(tokenizer, fib["validation_all"], cfg.max_length, cfg.eval_batch_size,
                                            cfg.evidence_sentences, "fib_validation_all")},
        stage_cfg.select_metric, eval_bf16_enabled(cfg), cfg.score_as)
    return Stage(("shuffled " if shuffled else "") + source, stage_cfg, train_pairs, evaluator,
                 keep="last" if shuffled else "best")


def finetune_fib(model, tokenizer, fib: dict[str, pd.DataFrame], cfg: Config,
                 checkpoint_dir: str | os.PathLike | None = None, alone: bool = False) -> TrainResult:
    """Build and run the FIB stage (see fib_stage)."""
    return run_stage(model, tokenizer, fib_stage(tokenizer, fib, cfg, alone), checkpoint_dir)


# ----------------------------------------------------------------------------- the NLI base

NLI_VALIDATION_WATCHED = 2000  # pairs of NLI validation scored at each evaluation (all of it at the end)


def nli_training_pairs(splits: dict[str, pd.DataFrame], cfg: Config) -> pd.DataFrame:
    """NLI train of the configured sets, at most cfg.nli_max_pairs_per_set pairs each (drawn by label)."""
    unknown = sorted(set(cfg.nli_sets) - set(NLI_SETS))
    if unknown:
        raise ConfigError(f"nli_sets: unknown set {unknown[0]!r}; choose among {sorted(NLI_SETS)}.")
    parts = [subsample(part, cfg.nli_max_pairs_per_set, SPLIT_SEED) for name, part in splits["train"].groupby("source")
             if name in cfg.nli_sets]
    return pd.concat(parts).sample(frac=1.0, random_state=SPLIT_SEED).reset_index(drop=True)


NLI_CHECKPOINT_EVERY = 250  # updates: minutes of work lost, at most, when a long NLI stage is stopped


def nli_stage(tokenizer, splits: dict[str, pd.DataFrame], fib: dict[str, pd.DataFrame], cfg: Config) -> Stage:
    """The NLI stage: 3-way where a set is 3-way, entailed-vs-not elsewhere; selected on held-out NLI validation
    (by premise), FIB validation watched. Read as the FIB stage reads pairs (window and evidence)."""
    pairs = nli_training_pairs(splits, cfg)
    stage_cfg = dataclasses.replace(cfg, epochs=cfg.nli_epochs, batch_size=cfg.nli_batch_size, grad_accum=1,
                                    select_metric="nli_validation/roc_auc")
    # two evaluations an epoch (at least 4), so patience sees whether another epoch still helps; checkpoints more
    # often than that, as a long stage may be stopped and resumed
    every = _evaluations_every(len(pairs), stage_cfg, None, evaluations=max(4, 2 * stage_cfg.epochs))
    stage_cfg = dataclasses.replace(stage_cfg, eval_every=every, checkpoint_every=min(every, NLI_CHECKPOINT_EVERY))
    watched = subsample(splits["validation"], NLI_VALIDATION_WATCHED, SPLIT_SEED)
    evaluator = Evaluator.from_frames(tokenizer, {"nli_validation": watched,
                                                  "fib_validation_all": fib["validation_all"]}, stage_cfg)
    return Stage("nli", stage_cfg, pairs, evaluator)


def nli_base_folder(cfg: Config, name: str = "nli_base") -> Path:
    """Where the profile's NLI base lives: <models_dir>/nli_base (or another name: nli_full)."""
    return Path(cfg.models_dir) / name


def nli_results_folder(cfg: Config, name: str = "nli_base") -> Path:
    """Where an NLI base's per-set validation, history and timing go: <results_dir>/nli (or /nli_full)."""
    return Path(cfg.results_dir) / ("nli" if name == "nli_base" else name)


def kept_nli_base(cfg: Config, name: str = "nli_base") -> Path:
    """The folder of a kept NLI base, its compact weights and, in nli_build/, the record of the run that trained it:
    nli_base is the one the learning curve started from, nli_full the detector's."""
    return curve_folder(cfg) / "base" if name == "nli_base" else nli_results_folder(cfg, name) / "kept"


def kept_weights(cfg: Config, name: str = "nli_base") -> Path:
    """A kept NLI base's weights (model.save_compact_weights: word embeddings int8, the rest fp16)."""
    return kept_nli_base(cfg, name) / f"{name}_compact.safetensors"


def rebuild_command(name: str = "nli_base") -> str:
    """The command that trains an NLI base here instead of restoring the kept one."""
    return f"python -m experiments.nli_base {'--full ' if name == 'nli_full' else ''}--rebuild"


def keep_nli_base(cfg: Config, source: Path, name: str = "nli_base") -> Path:
    """Keep a built NLI base small enough for git: its compact weights, and the record of its run beside them (both
    replaced, so that they always describe the same build)."""
    kept, results = kept_nli_base(cfg, name), nli_results_folder(cfg, name)
    if "restored_from" in json.loads((results / "timing.json").read_text()):
        raise ConfigError(f"{source} was restored from {kept}, not built here: there is no new build to keep. "
                          f"Build one first ({rebuild_command(name)}).")
    save_compact_weights(source, kept_weights(cfg, name))
    (kept / "nli_build").mkdir(exist_ok=True)
    for record in ("validation.csv", "history.csv", "timing.json"):
        shutil.copy(results / record, kept / "nli_build" / record)
    return kept


def ensure_nli_base(cfg: Config, fib: dict[str, pd.DataFrame]) -> Path:
    """The NLI base's folder: the one `make nli-base` made, else the kept one restored (restore_nli_base), else
    built now (build_nli_base)."""
    folder = nli_base_folder(cfg)
    if not (folder / "model.safetensors").exists() and kept_weights(cfg).exists():
        return restore_nli_base(cfg, fib)
    return found_or_built(folder, Path(cfg.results_dir) / "nli" / "timing.json",
                          lambda t: f"NLI base found in {folder}, built earlier:\n  {t['pairs']:,} pairs, "
                                    f"{t['updates']} updates, {t['seconds'] / 60:.1f} min on {t['device']}",
                          lambda: build_nli_base(cfg, fib))


def nli_data(sets, max_docs: int | None = None, loaded: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """NLI train / validation as a stage training on `sets` draws them: the standard sets and any other of `sets`
    (which moves the split). `loaded`: load_nli's pairs of these sets or more, read once for several draws."""
    wanted = tuple(dict.fromkeys([*STANDARD_SETS, *sets]))
    if loaded is None:
        pairs = load_nli(wanted)
    else:
        missing = sorted(set(wanted) - set(loaded["source"]))
        if missing:
            raise ConfigError(f"nli_data: the loaded pairs lack the set {missing[0]!r}; load it with the others.")
        pairs = loaded[loaded["source"].isin(wanted)].reset_index(drop=True)
    splits = nli_splits(pairs)
    return limit_documents(splits, 25 * max_docs) if max_docs else splits  # quick runs: a few hundred


def build_nli_base(cfg: Config, fib: dict[str, pd.DataFrame], name: str = "nli_base") -> Path:
    """Train the packaged MiniLM on the NLI stage and save it (safetensors, history, model card) in
    <models_dir>/<name>; per-set validation accuracy goes to <results_dir>/nli/validation.csv (nli_full/ for the
    full stage)."""
    start = time.time()
    tokenizer, model = load_model(PACKAGED_MINILM)
    splits = nli_data(cfg.nli_sets, cfg.max_docs)
    stage = nli_stage(tokenizer, splits, fib, cfg)
    checkpoints = Path(cfg.models_dir) / "checkpoints" / name
    result = run_stage(model, tokenizer, stage, checkpoints)
    timing = dict(pairs=len(stage.pairs), updates=int(result.history["update"].iloc[-1]),
                  seconds=round(time.time() - start, 1), kept_update=result.best_update, device=device_description(),
                  threads=torch.get_num_threads(), profile=cfg.profile)
    return _save_nli_base(model, tokenizer, cfg, splits, stage, result.history, timing, name)


def restore_nli_base(cfg: Config, fib: dict[str, pd.DataFrame], name: str = "nli_base") -> Path:
    """A kept NLI base (keep_nli_base) restored in <models_dir>/<name>, so that every notebook, the curve and the
    detector share it; per-set validation is scored again on the restored weights."""
    kept, weights = kept_nli_base(cfg, name), kept_weights(cfg, name)
    print(f"{name} restored from {weights} (delete it, or run {rebuild_command(name)}, to train one "
          "here)")
    tokenizer, model = load_compact_weights(weights)
    splits = nli_data(cfg.nli_sets, cfg.max_docs)
    timing = {**json.loads((kept / "nli_build" / "timing.json").read_text()), "restored_from": str(weights)}
    history = pd.read_csv(kept / "nli_build" / "history.csv")
    return _save_nli_base(model, tokenizer, cfg, splits, nli_stage(tokenizer, splits, fib, cfg), history, timing, name)


def _save_nli_base(model, tokenizer, cfg: Config, splits: dict[str, pd.DataFrame], stage: Stage,
                   history: pd.DataFrame, timing: dict, name: str = "nli_base") -> Path:
    """Save the NLI base with its model card; its per-set validation, history and timing go to <results_dir>/nli/
    (nli_full/ for another name)."""
    folder = save_model(model, tokenizer, nli_base_folder(cfg, name),
                        dataclasses.replace(stage.cfg, model_name=PACKAGED_MINILM), history)
    results = nli_results_folder(cfg, name)
    results.mkdir(parents=True, exist_ok=True)
    validation = splits["validation"]
    prepared = prepare_pairs(tokenizer, validation, cfg.max_length, cfg.eval_batch_size, cfg.evidence_sentences,
                             "nli validation")
    table = nli_accuracy(validation, score_prepared(model, prepared, score_as="class_probabilities"))
    table = table.assign(trained_on=table["source"].isin(cfg.nli_sets)).round(4)
    table.to_csv(results / "validation.csv", index=False)
    history.to_csv(results / "history.csv", index=False)
    (results / "timing.json").write_text(json.dumps(timing, indent=2))
    (folder / "README.md").write_text(_nli_model_card(table, stage.pairs["source"].value_counts(), timing))
    return folder


def _nli_model_card(table: pd.DataFrame, counts: pd.Series, timing: dict) -> str:
    """The NLI base's model card: what it was trained on, under which licences, and how well it reads NLI."""
    lines = ["# NLI base: all-MiniLM-L6-v2 after one NLI stage", "",
             "A 3-label NLI cross-encoder (contradiction / neutral / entailment), built by `make nli-base` "
             "(`vf.stages.build_nli_base`).", "", "## Training data (and the terms it inherits)", "",
             "| set | pairs | labels | licence |", "|---|---|---|---|"]
    lines += [f"| {name} | {counts.get(name, 0):,} | {NLI_SETS[name][0]} | {NLI_SETS[name][1]} |" for name in counts.index]
    lines += ["", "A model trained on a non-commercial set (ANLI: CC BY-NC 4.0) is for non-commercial use.", "",
              f"{timing['pairs']:,} pairs, {timing['updates']} updates, kept update {timing['kept_update']}, "
              f"{timing['seconds'] / 60:.1f} min on {timing['device']}"
              + (f"; restored from its compact copy {timing['restored_from']} (word embeddings int8, the rest fp16)."
                 if "restored_from" in timing else "."),
              "",
              "## Held-out NLI validation (by premise)", "", "| " + " | ".join(table.columns) + " |",
              "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"
