"""The summary-consistency sources (FIB, SummEdits, SICK, USB): loaders into one pair schema, and their splits."""
from __future__ import annotations

import json
import os
import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from .config import CONSISTENT, ConfigError, INCONSISTENT, NEUTRAL, PAIR_COLUMNS, SPLIT_SEED, USB_DIR_ENV
from .fetch import CHECKSUMS, sha256_of
from .io import DataError, _check_label, _check_pairs, _doc_hash, _files, _local_data, _require_fields, _require_file, data_dir, read_jsonl
from .splits import assert_no_document_leakage, balance_per_document, split_by_document


def load_fib_raw(part: str = "xsum") -> pd.DataFrame:
    """FIB rows as published: one row per (document, distractor model), from the authors' jsonl files."""
    fields = ["id", "input", "correct_choice", "list_choices", "lbl"]
    records = []
    for path in _files(_local_data(f"fib/{part}", f"FIB folder for {part!r}"), "binary_choice-using_*.jsonl"):
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


def new_fib_other(fib: dict[str, pd.DataFrame], doc_ids, sets=("factcc", "mfma", "fir")) -> pd.DataFrame:
    """load_fib_other over `doc_ids`, less the pairs FIB-XSum already has (train_all), which keep FIB's label."""
    other = load_fib_other(doc_ids, tuple(sets))
    return other[~other.set_index(["premise", "hypothesis"]).index.isin(
        fib["train_all"].set_index(["premise", "hypothesis"]).index)].reset_index(drop=True)


def load_model_generated_consistent(allowed_doc_ids) -> pd.DataFrame:
    """FIB's `factually_consistent-model_generated` set: model-written XSum summaries that annotators judged
    consistent (label 2, distractor_model = the summariser), for the given documents. With the references, they
    show whether a model reads consistency or who wrote the summary (evaluate.shortcut_table)."""
    folder = _local_data("fib/xsum_other/factually_consistent-model_generated", "FIB consistent model summaries")
    rows = []
    for path in _files(folder, "binary_choice-using_*.jsonl"):
        summariser = path.stem.removeprefix("binary_choice-using_").removesuffix("_distractors")
        for record in read_jsonl(path):
            _require_fields(record, ["id", "input", "correct_choice", "list_choices"], record["_where"])
            rows += [dict(premise=record["input"], hypothesis=choice.strip(), label=CONSISTENT, doc_id=record["id"],
                          dataset="fib_model_consistent", distractor_model=summariser, _where=record["_where"])
                     for choice in record["list_choices"] if choice.strip() != record["correct_choice"].strip()]
    pairs = _check_pairs(pd.DataFrame(rows), "FIB consistent model summaries")
    return pairs[pairs["doc_id"].isin(set(allowed_doc_ids))].drop_duplicates(["premise", "hypothesis"]) \
        .reset_index(drop=True)


CNN_DM_SENTENCE = re.compile(r"<t>(.*?)</t>", re.S)
# Penn Treebank escapes in CNN/DM's tokenised text: some summaries write "-lrb- cnn -rrb-" where the document has
# "( cnn )", so a sentence copied word for word no longer matched its source; quotes as `` and '' on both sides
PTB_ESCAPES = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}", "``": '"', "''": '"'}
PTB_PATTERN = re.compile("|".join(map(re.escape, PTB_ESCAPES)))


def undo_ptb_escapes(text: str) -> str:
    """Brackets and quotes as written, not as Penn Treebank tokens (-lrb- -> (, `` -> ")."""
    return PTB_PATTERN.sub(lambda m: PTB_ESCAPES[m.group(0)], text)


def load_fib_cnn_dm() -> pd.DataFrame:
    """FIB's CNN/DM part as pairs: summaries of 3-4 sentences, their <t>...</t> tags turned into one sentence a
    line (so that split_sentences finds them in this lower-cased text), Penn Treebank escapes undone on both sides.
    Never trained on: out of distribution."""
    pairs = fib_pairs(load_fib_raw("cnn_dm"))
    sentences = pairs["hypothesis"].map(lambda text: [s.strip() for s in CNN_DM_SENTENCE.findall(text)])
    untagged = sentences.map(len) == 0
    if untagged.any():
        raise DataError(f"FIB CNN/DM: {int(untagged.sum())} summaries have no <t>...</t> sentence, e.g. "
                        f"{pairs['hypothesis'][untagged].iloc[0][:80]!r}; the file's format changed.")
    return pairs.assign(premise=pairs["premise"].map(undo_ptb_escapes),
                        hypothesis=sentences.map("\n".join).map(undo_ptb_escapes), dataset="fib_cnn_dm")


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
    # the authors publish this file's checksum; their train split is theirs, not the one data/README.md describes
    validation = str(USB_TASK).format(domain="all", split="validation")
    if sha256_of(found[0].parent / validation) != CHECKSUMS[f"usb/{validation}"]:
        raise DataError(f"{found[0].parent / validation}: not the USB validation file this project was built on "
                        "(sha256 differs from data_checksums.json); delete the download and fetch it again.")
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


def find_or_fetch_usb() -> str | None:
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
        reason = find_or_fetch_usb()
        name = "usb" if reason is None else "summedits"
        if reason is not None:
            print(f"USB cannot be had here: {reason}. Pre-finetuning on SummEdits instead.")
    return name, OOD_SOURCES[name]()
