"""How the detector is judged: the sets it never saw, per-source and per-domain tables, thresholds chosen on
validation and how they transfer, readings compared, speed, and the model card."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from .config import INCONSISTENT, Config, ConfigError
from .device import device_description
from .sources import load_fib_cnn_dm, load_summedits
from .nli import NLI_SETS
from .claim_sets import CLAIM_SETS, EVALUATION_ONLY, LLM_AGGREFACT_PARTS, load_claim_set
from .metrics import (METRICS, balanced_accuracy_at, check_scores, precision_recall_at,
                      threshold_for_false_positive_rate, threshold_for_precision)
from .detector import HallucinationDetector
from .recipe import DETECTOR_MIX


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


def never_trained_on(cfg: Config) -> list[str]:
    """The evaluation sets (evaluation_sets) a detector built with cfg never saw in training or selection."""
    return ["fib_cnn_dm"] + ([] if cfg.detector_summedits else ["summedits"]) + list(EVALUATION_ONLY)


# DialSummEval's systems whose summaries are the reference or copied dialogue lines: nearly all rated consistent, so
# its pooled ROC AUC partly rewards telling them from abstractive ones; the "abstractive" domain leaves them out
DIALSUMMEVAL_NOT_ABSTRACTIVE = ("GOLD", "LEAD_3", "LONGEST_3")


def evaluation_sets(fib: dict) -> dict[str, pd.DataFrame]:
    """What the detector is judged on, each with a `domain`: FIB-XSum test (in distribution), and never trained on:
    FIB's CNN/DM part, SummEdits' seven domains and DialSummEval (abstractive systems, and the rest)."""
    dialogue = load_claim_set("dialsummeval")
    not_abstractive = dialogue["system"].isin(DIALSUMMEVAL_NOT_ABSTRACTIVE)
    return {"fib_xsum_test": fib["test_all"].assign(domain="xsum"),
            "fib_cnn_dm": load_fib_cnn_dm().assign(domain="cnn_dm"),
            "summedits": load_summedits(),
            "dialsummeval": dialogue.assign(domain=np.where(not_abstractive, "gold_or_extractive", "abstractive"))}


# the licence of each part of the recipe that is not a claim set (those are in claim_sets.CLAIM_SETS)
PART_LICENCES = {"fib": "CC BY 4.0", "fib_other": "CC BY 4.0", "fib_model_consistent": "CC BY 4.0",
                 "usb": "Apache-2.0", "nli": "each NLI set's (the NLI base's model card)",
                 "synthetic": "edits of FIB (CC BY 4.0) and USB (Apache-2.0) summaries"}


def recipe_table(info: dict) -> pd.DataFrame:
    """What a built detector trained on (detector.json): per part its family, pairs (repeats counted) and licence."""
    families = {p.name: p.family for p in DETECTOR_MIX}
    rows = [dict(part=name, family=families.get(name, ""), pairs=n,
                 licence=CLAIM_SETS[name][2] if name in CLAIM_SETS else PART_LICENCES.get(name, ""))
            for name, n in info["training_pairs"].items()]
    order = [p.name for p in DETECTOR_MIX]
    table = pd.DataFrame(rows).set_index("part")
    table = table.loc[sorted(table.index, key=lambda name: order.index(name) if name in order else len(order))]
    return table.assign(share=(table["pairs"] / table["pairs"].sum()).round(3))[["family", "pairs", "share", "licence"]]


def decision_table(levers: dict, readings: dict | None = None) -> pd.DataFrame:
    """The recipe's decisions as one row per rule: what was measured on validation, and what it decided
    (experiments/detector_levers.py's levers_decision.json, detector_readings.py's readings_decision.json)."""
    rows = []
    if "base" in levers:
        b = levers["base"]
        rows.append(dict(rule="base", measured=f"mean over families: nli-full {b['full']:.3f}, "
                                               f"kept base {b['kept']:.3f}", decided=b["chosen"]))
    for family, f in levers.get("families", {}).items():
        rows.append(dict(rule=f"family {family}", measured=f"others {f['others_gain_when_left_out']:+.3f} without it;"
                                                           f" FIB cost {f['fib_cost_of_keeping']:+.3f}",
                         decided="kept" if f["kept"] else "left out"))
    if "selection" in levers:
        s = levers["selection"]
        rows.append(dict(rule="update kept", measured=f"left-out shortfall: selected {s['mean_shortfall_of_kept']:.3f},"
                                                      f" last {s['mean_shortfall_of_last']:.3f}", decided=s["chosen"]))
    if readings:
        means, speed = readings["mean_over_families"], readings["summaries_per_s"]
        windows, evidence = "windows (claims, max)", "evidence (claims, max)"
        rows.append(dict(rule="reading", measured=f"windows {means[windows]:.3f} ({speed[windows]:.0f}/s), evidence "
                                                  f"{means[evidence]:.3f} ({speed[evidence]:.0f}/s)",
                         decided=readings["chosen_mode"]))
    return pd.DataFrame(rows, columns=["rule", "measured", "decided"]).set_index("rule")


def system_table(df: pd.DataFrame, p: np.ndarray) -> pd.DataFrame:
    """Per summariser (DialSummEval's `system`): consistent and inconsistent summaries and the mean P(inconsistent)
    of each; a label a system never got shows as empty."""
    frame = df.assign(p=p, kind=np.where(df["label"] == INCONSISTENT, "inconsistent", "consistent"))
    table = frame.pivot_table(index="system", columns="kind", values="p", aggfunc=["size", "mean"])
    table.columns = [f"{'n' if stat == 'size' else 'mean P'} {kind}" for stat, kind in table.columns]
    counts = [c for c in table.columns if c.startswith("n ")]
    table[counts] = table[counts].fillna(0).astype(int)
    return table.sort_values(counts[0], ascending=False).round(3)


def unsupported_examples(detector: HallucinationDetector, sets: dict[str, pd.DataFrame], per_set: int = 2,
                         min_sentences: int = 2) -> pd.DataFrame:
    """The first `per_set` inconsistent summaries of `min_sentences` or more sentences in each set, one row per
    sentence with its P(inconsistent); the least supported sentence of each summary marked."""
    rows = []
    for name, df in sets.items():
        bad = df[df["label"] == INCONSISTENT].head(200)
        claims = detector.score_claims(bad["premise"], bad["hypothesis"], progress=False)
        long = [pair for pair, part in claims.groupby("pair") if len(part) >= min_sentences][:per_set]
        for k, pair in enumerate(long):
            part = claims[claims["pair"] == pair]
            worst = part["p_inconsistent"].idxmax()
            rows += [dict(set=name, summary=k + 1, sentence=r.claim, p_inconsistent=round(r.p_inconsistent, 3),
                          least_supported="yes" if i == worst else "") for i, r in part.iterrows()]
    return pd.DataFrame(rows).set_index(["set", "summary"])


# pairs of each class below which a domain's ranking is not reported: a ROC AUC over one inconsistent summary is
# that summary's rank, not the detector's
MIN_PER_CLASS = 10


def source_table(sets: dict[str, pd.DataFrame], probs: dict[str, np.ndarray], threshold: float) -> pd.DataFrame:
    """Per set and domain, then pooled per set: pairs, inconsistent pairs, ROC and PR AUC, and balanced accuracy,
    precision and recall at the shipped threshold. Pooled numbers hide offsets between domains: both are shown. A
    domain with fewer than MIN_PER_CLASS pairs of either class gets a row of undefined (NaN) metrics."""
    rows = []
    for name, df in sets.items():
        y_all, p_all = (df["label"] == INCONSISTENT).to_numpy(), probs[name]
        groups = [(d, (df["domain"] == d).to_numpy()) for d in sorted(df["domain"].unique())]
        for domain, mask in groups + ([("pooled", np.ones(len(df), bool))] if len(groups) > 1 else []):
            if min(y_all[mask].sum(), (~y_all[mask]).sum()) < MIN_PER_CLASS:  # a rank of a few pairs: undefined
                rows.append(dict(set=name, domain=domain, n=int(mask.sum()), n_inconsistent=int(y_all[mask].sum()),
                                 **dict.fromkeys(["roc_auc", "pr_auc", "balanced_accuracy", "precision", "recall"],
                                                 np.nan)))
                continue
            y, p = check_scores(y_all[mask], p_all[mask])
            precision, recall = precision_recall_at(y, p, threshold)
            rows.append(dict(set=name, domain=domain, n=int(mask.sum()), n_inconsistent=int(y.sum()),
                             roc_auc=METRICS["roc_auc"][0](y, p), pr_auc=METRICS["pr_auc"][0](y, p),
                             balanced_accuracy=balanced_accuracy_at(y, p, threshold), precision=precision,
                             recall=recall))
    return pd.DataFrame(rows)


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


def model_card(info: dict, out_of_distribution: pd.DataFrame, shortcut: dict, speed: pd.DataFrame) -> str:
    """The detector's README: data and licences, per-source results, thresholds, speed, known failure modes."""
    def table(frame: pd.DataFrame) -> list[str]:
        return (["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
                + ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |"
                   for row in frame.itertuples(index=False)])
    licences = [f"- {name}: {NLI_SETS[name][1]}" for name in info["nli_sets"]]
    claim_licences = [f"- {name} ({CLAIM_SETS[name][1]}): {CLAIM_SETS[name][2]}"
                      for name in info["training_pairs"] if name in CLAIM_SETS]
    seen = [name for name in LLM_AGGREFACT_PARTS if name in info["training_pairs"]]
    lines = ["# Hallucination detector (MiniLM-L6 NLI cross-encoder, 22.7M parameters)", "",
             "Scores P(inconsistent) for (document, summary) pairs, one summary sentence at a time against its own "
             "3 evidence sentences, the summary's score being its least supported sentence's.", "",
             "## Training data", "", f"From the NLI base ({info['base_model']}), trained on:", "",
             *[f"- {k}: {v:,} pairs" + (" (rule-based number, date, name and negation edits of the FIB and USB "
                                         "consistent summaries)" if k == "synthetic" else "")
               for k, v in info["training_pairs"].items()], "",
             "Licences: FIB CC BY 4.0, USB Apache-2.0, and the NLI base's sets:", *licences,
             *(["", "The claim sets it trained on:"] + claim_licences if claim_licences else []),
             "", "ANLI is CC BY-NC 4.0: this model is for non-commercial use.",
             *([f"It trained on {' and '.join(seen)}, the sources of LLM-AggreFact's subsets of those names: "
                "LLM-AggreFact is not an unseen benchmark for it."] if seen else []), "",
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
