"""Cheap synthetic negatives: rule-based edits that leave a consistent summary unsupported by its document (FactCC's
number, date, name and negation swaps), made from training documents' consistent summaries only."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .config import CONSISTENT, INCONSISTENT

NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")  # 7, 1,200, 3.5; not the 2 of "G20" or "2nd"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DATE_WORD = re.compile(r"\b(?:" + "|".join(MONTHS + WEEKDAYS) + r")\b")
# a run of capitalised words or acronyms (a possessive 's stays outside); a sentence's opening word is dropped where
# it is one of OPENERS, which are capitalised for their place, not because they name anything
_WORD = rf"(?!{DATE_WORD.pattern})(?:[A-Z][\w-]*[a-z][\w-]*|[A-Z]{{2,}})(?![\w-])"  # months are not names
NAME = re.compile(rf"(?<![\w'’-]){_WORD}(?:\s+{_WORD})*")
OPENERS = {"A", "An", "The", "This", "That", "These", "Those", "It", "Its", "He", "She", "His", "Her", "They",
           "Their", "We", "Our", "You", "Your", "In", "On", "At", "By", "For", "From", "With", "As", "After", "Before",
           "When", "While", "If", "But", "And", "Or", "So", "There", "Here", "What", "Who", "How", "Why", "Some",
           "Many", "More", "Most", "One", "Two", "Three", "All", "No", "Not", "Now", "Then", "Also", "Police",
           "Officials"}
NEGATED = re.compile(r"\b(?:(?P<aux>\w+) not\b|(?P<contracted>\w+)n['’]t\b)")
AUXILIARY = re.compile(r"\b(?:is|are|was|were|has|have|had|will|would|can|could|should|may|might|must|does|did)\b")
IRREGULAR_NEGATIONS = {"wo": "will", "ca": "can", "sha": "shall", "ai": "is"}  # won't -> will, can't -> can


def _name_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each name in text: NAME's runs less an opening word in OPENERS."""
    spans = []
    for match in NAME.finditer(text):
        start, words = match.start(), match.group().split()
        if words[0] in OPENERS:
            if len(words) == 1:
                continue
            start = text.index(words[1], start + len(words[0]))
        spans.append((start, match.end()))
    return spans


def _names(text: str) -> list[str]:
    return [text[start:end] for start, end in _name_spans(text)]


def _replace(text: str, span: tuple[int, int], new: str) -> str:
    return text[:span[0]] + new + text[span[1]:]


def swap_number(summary: str, document: str, rng: np.random.Generator) -> str | None:
    """One number of the summary replaced by another of the document's (or, where it has none, changed by one)."""
    matches = list(NUMBER.finditer(summary))
    if not matches:
        return None
    match = matches[rng.integers(len(matches))]
    others = sorted({n for n in NUMBER.findall(document) if n != match.group()})
    if others:
        return _replace(summary, match.span(), others[rng.integers(len(others))])
    digits = match.group().replace(",", "")
    value = float(digits) if "." in digits else int(digits)
    return _replace(summary, match.span(), str(value + 1 if rng.random() < 0.5 or value < 2 else value - 1))


def swap_date(summary: str, document: str, rng: np.random.Generator) -> str | None:
    """One month or weekday of the summary replaced by another of its kind: one the document names, else any."""
    matches = list(DATE_WORD.finditer(summary))
    if not matches:
        return None
    match = matches[rng.integers(len(matches))]
    kind = MONTHS if match.group() in MONTHS else WEEKDAYS
    others = [w for w in kind if w != match.group()]
    named = sorted(set(DATE_WORD.findall(document)) & set(others))
    candidates = named or others
    return _replace(summary, match.span(), candidates[rng.integers(len(candidates))])


def swap_name(summary: str, document: str, rng: np.random.Generator) -> str | None:
    """One capitalised name of the summary replaced by another name the document mentions and the summary does not."""
    spans = _name_spans(summary)
    if not spans:
        return None
    span = spans[rng.integers(len(spans))]
    words = set(summary[span[0]:span[1]].split())
    # a name sharing a word with the one replaced may be the same one ("Trump", "Donald Trump"): not a swap
    others = sorted({n for n in _names(document) if n not in summary and not set(n.split()) & words})
    return _replace(summary, span, others[rng.integers(len(others))]) if others else None


def negate(summary: str, document: str, rng: np.random.Generator) -> str | None:
    """The first negation removed ("was not" -> "was", "won't" -> "will"), else "not" after the first auxiliary."""
    negated = NEGATED.search(summary)
    if negated:
        word = negated.group("aux") or negated.group("contracted")
        if negated.group("contracted") and word.lower() in IRREGULAR_NEGATIONS:
            plain = IRREGULAR_NEGATIONS[word.lower()]
            word = plain.capitalize() if word[0].isupper() else plain
        return _replace(summary, negated.span(), word)
    auxiliary = AUXILIARY.search(summary)
    return _replace(summary, auxiliary.span(), auxiliary.group() + " not") if auxiliary else None


EDITS = {"number": swap_number, "date": swap_date, "name": swap_name, "negation": negate}


def corrupt(summary: str, document: str, rng: np.random.Generator) -> tuple[str, str] | None:
    """(edited summary, edit name) by the first of the EDITS, in a random order, that applies and changes the
    text; None where none does."""
    for name in rng.permutation(list(EDITS)):
        edited = EDITS[name](summary, document, rng)
        if edited is not None and edited != summary:
            return edited, str(name)
    return None


def synthetic_negatives(consistent: pd.DataFrame, n: int, seed: int,
                        existing: pd.DataFrame | None = None) -> pd.DataFrame:
    """Up to n inconsistent pairs made by corrupt() from the consistent pairs given (taken in a seeded random
    order), each with its `edit`, none repeating a (premise, hypothesis) of `existing` or of another edit; says how
    many it made where fewer than n could be."""
    if not (consistent["label"] == CONSISTENT).all():
        raise ValueError("synthetic_negatives edits consistent pairs only; filter the frame on label == CONSISTENT.")
    rng = np.random.default_rng(seed)
    rows, seen = [], set() if existing is None else set(zip(existing["premise"], existing["hypothesis"]))
    for i in rng.permutation(len(consistent)):
        if len(rows) == n:
            break
        pair = consistent.iloc[i]
        edited = corrupt(pair["hypothesis"], pair["premise"], rng)
        if edited is not None and (pair["premise"], edited[0]) not in seen:  # FIB's own rewrites make some edits
            seen.add((pair["premise"], edited[0]))
            rows.append(dict(pair, hypothesis=edited[0], label=INCONSISTENT, edit=edited[1]))
    if len(rows) < n:
        print(f"synthetic negatives: {len(rows)} of the {n} asked for ({len(consistent)} consistent summaries, "
              "the rest without a number, date, name or auxiliary to edit, or with an edit the mix has)")
    return pd.DataFrame(rows, columns=[*consistent.columns, "edit"])
