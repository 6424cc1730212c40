"""Splitting pairs by document (no document in two splits), balancing, subsets, and saving the splits."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .config import CONSISTENT, ConfigError, GENERATED_DIR, INCONSISTENT, SPLIT_SEED
from .io import DataError


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


def subsample(df: pd.DataFrame, n: int | None, seed: int = SPLIT_SEED) -> pd.DataFrame:
    """At most n rows, stratified by label so both classes stay."""
    if n is None or len(df) <= n:
        return df
    return train_test_split(df, train_size=n, stratify=df["label"], random_state=seed)[0].sort_index()
