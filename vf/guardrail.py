"""The shipped detector: its training mix (every source, from the NLI base), its thresholds, and how it is judged
out of distribution (sets never trained on) and on FIB's shortcut (who wrote a summary, not whether it is true)."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .config import CONSISTENT, INCONSISTENT, SPLIT_SEED, Config, ConfigError
from .device import device_description
from .splits import limit_documents, subsample
from .edits import synthetic_negatives
from .sources import (load_fib_cnn_dm, load_model_generated_consistent, new_fib_other, load_summedits, summedits_splits,
                      usb_splits)
from .nli import NLI_SETS, load_nli, nli_splits
from .metrics import (METRICS, balanced_accuracy_at, check_scores, precision_recall_at,
                      threshold_for_false_positive_rate, threshold_for_precision)
from .model import found_or_built, load_model, save_model
from .evaluate import Evaluator
from .results import upsert_rows
from .stages import Stage, run_stage
from .claims import Reading
from .detector import HallucinationDetector

WATCHED_PAIRS = 600  # pairs of USB and of NLI validation scored at each in-training evaluation


def mix_sources(cfg: Config) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """USB's and the NLI sets' splits as the detector's mix reads them (a few documents each for quick runs)."""
    usb, nli = usb_splits(), nli_splits(load_nli())
    if cfg.max_docs:
        usb, nli = limit_documents(usb, cfg.max_docs), limit_documents(nli, 25 * cfg.max_docs)
    return usb, nli


def detector_mix(fib: dict[str, pd.DataFrame], usb: dict[str, pd.DataFrame], nli: dict[str, pd.DataFrame],
                 cfg: Config) -> pd.DataFrame:
    """The detector's training pairs, one `source` column: FIB-XSum train (1:1), FIB's other distractor sets and
    its consistent model-written summaries over the same training documents (so that who wrote a summary says
    nothing about its label; at most cfg.detector_fib_other_pairs of the other sets' rewrites of references),
    USB train, an NLI sample (so that entailment is not forgotten), and cfg.detector_synthetic_pairs edits of the
    FIB and USB consistent summaries (vf/edits.py)."""
    train_docs = fib["train"]["doc_id"].unique()
    other = subsample(new_fib_other(fib, train_docs), cfg.detector_fib_other_pairs, SPLIT_SEED)
    columns = ["premise", "hypothesis", "label", "doc_id"]
    parts = {"fib": fib["train"], "fib_other": other, "fib_model_consistent": load_model_generated_consistent(train_docs),
             "usb": usb["train"], "nli": subsample(nli["train"], cfg.detector_nli_pairs, SPLIT_SEED)}
    if cfg.detector_synthetic_pairs:
        summaries = pd.concat([parts[name][columns] for name in ("fib", "fib_model_consistent", "usb")])
        parts["synthetic"] = synthetic_negatives(summaries[summaries["label"] == CONSISTENT].reset_index(drop=True),
                                                 cfg.detector_synthetic_pairs, SPLIT_SEED,
                                                 existing=pd.concat(parts.values()))
    mix = pd.concat([part[columns].assign(source=name) for name, part in parts.items()], ignore_index=True)
    return mix.sample(frac=1.0, random_state=cfg.seed).reset_index(drop=True)


def _mix_stage(name: str, tokenizer, pairs: pd.DataFrame, frames: dict[str, pd.DataFrame], cfg: Config) -> Stage:
    """A detector stage: cfg.detector_epochs over `pairs`, 4 evaluations (plus update 0), selected on the mean
    ROC AUC over the validation `frames`."""
    stage_cfg = dataclasses.replace(cfg, epochs=cfg.detector_epochs, select_metric="mean/roc_auc", patience=None)
    updates = int(np.ceil(len(pairs) / cfg.batch_size / cfg.grad_accum)) * stage_cfg.epochs
    stage_cfg = dataclasses.replace(stage_cfg, eval_every=max(1, updates // 4), checkpoint_every=max(1, updates // 4))
    return Stage(name, stage_cfg, pairs, Evaluator.from_frames(tokenizer, frames, stage_cfg))


def mix_validation(fib: dict, usb: dict, nli: dict) -> dict[str, pd.DataFrame]:
    """What the mix is selected on: FIB validation (every negative), and 600 pairs each of USB and NLI validation."""
    return {"fib_validation_all": fib["validation_all"],
            "usb_validation": subsample(usb["validation"], WATCHED_PAIRS, SPLIT_SEED),
            "nli_validation": subsample(nli["validation"], WATCHED_PAIRS, SPLIT_SEED)}


def detector_stage(tokenizer, mix: pd.DataFrame, fib: dict, usb: dict, nli: dict, cfg: Config) -> Stage:
    """Train on the mix for cfg.detector_epochs; select on the mean ROC AUC over FIB, USB and NLI validation."""
    return _mix_stage("detector", tokenizer, mix, mix_validation(fib, usb, nli), cfg)


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


def held_out_domain_table(rows: pd.DataFrame) -> pd.DataFrame:
    """experiments/detector_domains.py's rows as one line per SummEdits domain: ROC AUC of the shipped detector, of
    the control (its own mix, more updates) and of the model trained on the six other domains, which never saw this
    one; the lift of the last over the control; and a mean line. FIB-XSum validation ROC AUC as its own line."""
    rows = rows.assign(model=rows["model"].where(~rows["model"].str.startswith("held_out_"), "six_other_domains"))
    summedits = rows[rows["set"] == "summedits"]
    table = summedits.pivot_table(index="domain", columns="model", values="roc_auc")
    table = table.reindex(columns=["shipped", "control", "six_other_domains"])
    table.insert(0, "n", summedits.groupby("domain")["n"].first())
    table["lift_over_control"] = table["six_other_domains"] - table["control"]
    folds_done = table.dropna(subset=["six_other_domains"])  # the mean over the domains whose fold has run
    table.loc["mean"] = folds_done.drop(columns="n").mean().reindex(table.columns)  # n: left empty on this line
    fib = rows[rows["set"] == "fib_validation"]
    table.loc["fib_xsum_validation"] = fib.groupby("model")["roc_auc"].mean().reindex(table.columns)
    table.loc["fib_xsum_validation", "n"] = fib["n"].iloc[0] if len(fib) else np.nan
    table.loc["fib_xsum_validation", "lift_over_control"] = (table.loc["fib_xsum_validation", "six_other_domains"]
                                                             - table.loc["fib_xsum_validation", "control"])
    return table.astype({"n": "Int64"})


def validation_frame(fib: dict, usb: dict) -> pd.DataFrame:
    """The mixed-source validation set the thresholds are chosen on: FIB validation (all negatives) and USB's."""
    return pd.concat([fib["validation_all"].assign(source="fib_xsum"), usb["validation"].assign(source="usb")],
                     ignore_index=True)


def choose_thresholds(is_inconsistent, p, precision_targets=(0.8, 0.9), fpr_target: float = 0.1) -> dict:
    """Thresholds on P(inconsistent) chosen on validation: the lowest reaching each target precision (NaN where
    none does), and the lowest flagging at most fpr_target of the consistent summaries."""
    thresholds = {}
    for target in precision_targets:
        try:
            thresholds[f"precision_{target:g}"] = threshold_for_precision(is_inconsistent, p, target)
        except ValueError:
            thresholds[f"precision_{target:g}"] = float("nan")
    thresholds[f"fpr_{fpr_target:g}"] = threshold_for_false_positive_rate(is_inconsistent, p, fpr_target)
    return thresholds


def build_detector(cfg: Config, fib: dict, folder: Path) -> Path:
    """Train the detector from the NLI base on every source, choose its thresholds on mixed validation, and save
    it with its Reading (sentence-level claims, max over sentences) and thresholds."""
    start = time.time()
    tokenizer, model = load_model(cfg.model_name)
    usb, nli = mix_sources(cfg)
    mix = detector_mix(fib, usb, nli, cfg)
    checkpoints = Path(cfg.models_dir) / "checkpoints"
    result = run_stage(model, tokenizer, detector_stage(tokenizer, mix, fib, usb, nli, cfg), checkpoints / "detector")
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
    reading = Reading.from_config(cfg, claims=True, aggregate="max")
    reading.save(folder)
    validation = validation_frame(fib, usb)
    p = HallucinationDetector(model, tokenizer, reading).score(validation["premise"], validation["hypothesis"])
    thresholds = choose_thresholds(validation["label"] == INCONSISTENT, p)
    info = dict(thresholds=thresholds, chosen_on="FIB-XSum validation (all negatives) + USB validation",
                training_pairs=counts, replayed_pairs=replayed, kept_update=result.best_update,
                never_trained_on=never_trained_on(cfg),
                minutes=round((time.time() - start) / 60, 1), device=device_description(), profile=cfg.profile,
                base_model=cfg.model_name, nli_sets=list(cfg.nli_sets))
    (folder / "detector.json").write_text(json.dumps(info, indent=2))
    return folder


def never_trained_on(cfg: Config) -> list[str]:
    """The evaluation sets (evaluation_sets) a detector built with cfg never saw in training or selection."""
    return ["fib_cnn_dm"] + ([] if cfg.detector_summedits else ["summedits"])


def evaluation_sets(fib: dict) -> dict[str, pd.DataFrame]:
    """What the detector is judged on, each with a `domain`: FIB-XSum test (in distribution), and never trained on:
    FIB's CNN/DM part and SummEdits' seven domains."""
    summedits = load_summedits()
    return {"fib_xsum_test": fib["test_all"].assign(domain="xsum"),
            "fib_cnn_dm": load_fib_cnn_dm().assign(domain="cnn_dm"),
            "summedits": summedits}


def source_table(sets: dict[str, pd.DataFrame], probs: dict[str, np.ndarray], threshold: float) -> pd.DataFrame:
    """Per set and domain, then pooled per set: pairs, inconsistent pairs, ROC and PR AUC, and balanced accuracy,
    precision and recall at the shipped threshold. Pooled numbers hide offsets between domains: both are shown."""
    rows = []
    for name, df in sets.items():
        y_all, p_all = (df["label"] == INCONSISTENT).to_numpy(), probs[name]
        groups = [(d, (df["domain"] == d).to_numpy()) for d in sorted(df["domain"].unique())]
        for domain, mask in groups + ([("pooled", np.ones(len(df), bool))] if len(groups) > 1 else []):
            y, p = check_scores(y_all[mask], p_all[mask])
            precision, recall = precision_recall_at(y, p, threshold)
            rows.append(dict(set=name, domain=domain, n=int(mask.sum()), n_inconsistent=int(y.sum()),
                             roc_auc=METRICS["roc_auc"][0](y, p), pr_auc=METRICS["pr_auc"][0](y, p),
                             balanced_accuracy=balanced_accuracy_at(y, p, threshold), precision=precision,
                             recall=recall))
    return pd.DataFrame(rows)


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
    from .evaluate import score_splits
    frame = shortcut_frame(fib)
    return shortcut_row(frame, score_splits(model, tokenizer, {"shortcut": frame}, cfg)["shortcut"], name)


SHORTCUT_FILE = Path("nli") / "shortcut.csv"  # under results/: one row per model, every notebook adds its own


def shortcut_table(cfg: Config, row: dict, path: Path | None = None) -> pd.DataFrame:
    """Record a model's shortcut_row (replacing its earlier row) and return every model's row, narrowed to the
    style AUC and the mean P(inconsistent) of each kind; the counts, the same for every model, are printed once."""
    table = upsert_rows(path or Path(cfg.results_dir) / SHORTCUT_FILE, pd.DataFrame([row]), "model")
    print(f"{row['documents']} held-out FIB documents: {row['n_reference']} references, "
          f"{row['n_model_consistent']} consistent model summaries, {row['n_inconsistent']} inconsistent summaries")
    means = {"mean_reference": "reference", "mean_model_consistent": "model consistent",
             "mean_inconsistent": "inconsistent"}
    return table.set_index("model")[["style_auc", *means]].rename(columns=means).round(3)


def threshold_table(sets: dict[str, pd.DataFrame], probs: dict[str, np.ndarray], thresholds: dict) -> pd.DataFrame:
    """For each threshold chosen on validation, its precision, recall and false-positive rate per set and domain."""
    rows = []
    for label, t in thresholds.items():
        for name, df in sets.items():
            y_all, p_all = (df["label"] == INCONSISTENT).to_numpy(), probs[name]
            for domain in sorted(df["domain"].unique()):
                mask = (df["domain"] == domain).to_numpy()
                y, p = y_all[mask], p_all[mask]
                precision, recall = precision_recall_at(y, p, t)
                rows.append(dict(threshold_for=label, threshold=t, set=name, domain=domain, n=int(mask.sum()),
                                 precision=precision, recall=recall,
                                 false_positive_rate=float(np.mean(p[~y] >= t)) if (~y).any() else float("nan")))
    return pd.DataFrame(rows)


def _each_reading(detector: HallucinationDetector, sets: dict[str, pd.DataFrame], readings: dict[str, dict]):
    """(reading's name, set's name, set, detector read that way) for every named reading and set."""
    for label, changes in readings.items():
        reader = detector.with_reading(**changes)
        for name, df in sets.items():
            yield label, name, df, reader


def reading_table(detector: HallucinationDetector, sets: dict[str, pd.DataFrame], readings: dict[str, dict],
                  claims: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """ROC AUC per set and domain for each named reading (changes to the detector's): an analysis on sets the
    reading was not chosen on, not a selection. Readings that differ only in aggregation share their claims' scores;
    `claims` may hold the detector's own (score_claims per set), already computed."""
    rows = []
    scored = {(name, dataclasses.replace(detector.reading, aggregate="max")): c for name, c in (claims or {}).items()}
    for label, name, df, reader in _each_reading(detector, sets, readings):
        key = (name, dataclasses.replace(reader.reading, aggregate="max"))
        if key not in scored:
            scored[key] = reader.score_claims(df["premise"], df["hypothesis"])
        p = reader.aggregate(scored[key], len(df))
        table = source_table({name: df}, {name: p}, 0.5)
        rows += [dict(reading=label, set=r["set"], domain=r["domain"], n=r["n"], roc_auc=r["roc_auc"])
                 for _, r in table.iterrows()]
    return pd.DataFrame(rows)


def model_card(info: dict, out_of_distribution: pd.DataFrame, shortcut: dict, speed: pd.DataFrame) -> str:
    """The detector's README: data and licences, per-source results, thresholds, speed, known failure modes."""
    def table(frame: pd.DataFrame) -> list[str]:
        return (["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
                + ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |"
                   for row in frame.itertuples(index=False)])
    licences = [f"- {name}: {NLI_SETS[name][1]}" for name in info["nli_sets"]]
    lines = ["# Hallucination detector (MiniLM-L6 NLI cross-encoder, 22.7M parameters)", "",
             "Scores P(inconsistent) for (document, summary) pairs, one summary sentence at a time against its own "
             "3 evidence sentences, the summary's score being its least supported sentence's.", "",
             "## Training data", "", f"From the NLI base ({info['base_model']}), trained on:", "",
             *[f"- {k}: {v:,} pairs" + (" (rule-based number, date, name and negation edits of the FIB and USB "
                                         "consistent summaries)" if k == "synthetic" else "")
               for k, v in info["training_pairs"].items()], "",
             "Licences: FIB CC BY 4.0, USB Apache-2.0, and the NLI base's sets:", *licences,
             "ANLI is CC BY-NC 4.0: this model is for non-commercial use.", "",
             f"## Results (never trained on: {', '.join(info.get('never_trained_on', ['fib_cnn_dm', 'summedits']))})",
             "", *table(out_of_distribution.round(3)), "",
             f"Thresholds (chosen on {info['chosen_on']}): "
             + ", ".join(f"{k} = {v:.3f}" for k, v in info["thresholds"].items()), "",
             f"Shortcut check (FIB held-out documents): style AUC {shortcut['style_auc']:.3f} (0.5 = reads "
             "consistency, not who wrote the summary).", "", "## Speed", "", *table(speed.round(2)), "",
             "## Known failure modes", "",
             "- Copied (extractive) sentences read as supported even when FIB's annotators called the summary "
             "inconsistent (FIB CNN/DM).",
             "- Dialogue and meeting transcripts (SummEdits) are far from its training text.",
             "- Sentence splitting is rule-based: lower-cased text without line breaks is read as one sentence."]
    return "\n".join(lines) + "\n"


def ensure_detector(cfg: Config, fib: dict, folder: Path) -> Path:
    """The detector's folder: built now (build_detector) when it is missing, else the one `make detector` built."""
    return found_or_built(folder, folder / "detector.json",
                          lambda i: f"detector found in {folder}, built earlier on {i['device']}:\n"
                                    f"  {sum(i['training_pairs'].values()):,} pairs, kept update {i['kept_update']}, "
                                    f"{i['minutes']} min",
                          lambda: build_detector(cfg, fib, folder))


def speed_table(detector: HallucinationDetector, sets: dict[str, pd.DataFrame], readings: dict[str, dict],
                rounds: int = 3) -> pd.DataFrame:
    """Summaries and sentences scored per second, per reading and set: the median of `rounds` timings (and the
    slowest and fastest), every reading timed once per round so that a slow spell of a shared host hits them all."""
    from .results import git_commit
    if rounds < 1:
        raise ConfigError(f"speed_table: rounds={rounds}; time each reading at least once (rounds >= 1)")
    runs = list(_each_reading(detector, sets, readings))
    for _, _, df, reader in runs:  # warm-up: first calls allocate and build caches
        reader.score(df["premise"].head(8), df["hypothesis"].head(8))
    seconds, sentences = [[] for _ in runs], [0] * len(runs)
    for _ in range(rounds):
        for i, (_, _, df, reader) in enumerate(runs):
            start = time.perf_counter()
            sentences[i] = len(reader.score_claims(df["premise"], df["hypothesis"], progress=False))
            seconds[i].append(time.perf_counter() - start)
    rows = []
    for (label, name, df, _), times, n_sentences in zip(runs, seconds, sentences):
        median = float(np.median(times))
        rows.append(dict(reading=label, set=name, summaries=len(df), sentences=n_sentences,
                         summaries_per_s=len(df) / median, sentences_per_s=n_sentences / median,
                         summaries_per_s_slowest=len(df) / max(times), summaries_per_s_fastest=len(df) / min(times),
                         rounds=rounds, device=device_description(), git_commit=git_commit()))
    return pd.DataFrame(rows).round(2)
