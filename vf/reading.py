"""How a (document, summary) pair becomes model input: sentences, evidence, the window cut and tokenising."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .config import ConfigError


SENTENCE_BREAK = re.compile(r"(\n+)|(?:(?<=[.!?])|(?<=[.!?][\"'”’)]))\s+(?=[\"'“‘(\[]?[A-Z0-9])")
# a full stop after these (or after one capital letter, an initial) ends no sentence: "Mr. Smith", "U.S. troops"
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "gen", "gov", "sen", "rep", "lt", "col", "sgt",
                 "capt", "rev", "hon", "mt", "no", "vs", "etc", "e.g", "i.e", "u.s", "u.k", "u.n", "inc", "ltd",
                 "co", "corp", "jan", "feb", "aug", "sept", "oct", "nov", "dec", "a.m", "p.m"}


def _ends_in_abbreviation(piece: str) -> bool:
    last = piece.rsplit(None, 1)[-1].lstrip("\"'“‘([").lower()
    return last.endswith(".") and (last[:-1] in ABBREVIATIONS or re.fullmatch(r"[a-z]", last[:-1]) is not None)


def split_sentences(text: str) -> list[str]:
    """Sentences at line breaks, and at . ! ? (or a closing quote after them) followed by a capitalised word or a
    number, except after an abbreviation or an initial."""
    sentences, line_break = [], True
    for piece in SENTENCE_BREAK.split(text):
        if piece is None:
            continue
        if not piece.strip():
            line_break = line_break or "\n" in piece
            continue
        if sentences and not line_break and _ends_in_abbreviation(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece.strip()}"
        else:
            sentences.append(piece.strip())
        line_break = False
    return sentences


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


_REPORTED_CUTS: set = set()


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
    if cut[1] and (name, cut[1], len(premises)) not in _REPORTED_CUTS:  # once per set and process
        _REPORTED_CUTS.add((name, cut[1], len(premises)))
        print(f"{name}: {cut[0]} documents cut; {cut[1]} of {len(premises)} summaries over 3/4 of the "
              f"{max_length}-token window")
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
