"""The detector's recipe: its training mix as one table of parts (source, loader, pairs, weight), the sources they
read (each loaded once, when a part first needs it), and the validation sets that select its weights."""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import pandas as pd

from .config import CONSISTENT, SPLIT_SEED, Config, ConfigError
from .splits import limit_documents, subsample
from .edits import synthetic_negatives
from .sources import load_model_generated_consistent, new_fib_other, usb_splits
from .nli import load_nli, nli_splits
from .claim_sets import claim_splits

MIX_COLUMNS = ["premise", "hypothesis", "label", "doc_id"]
WATCHED_PAIRS = 600  # pairs of a large validation set scored at each in-training evaluation


class MixSources:
    """The splits the parts read: FIB (given) and the others, each read once, when a part first needs it, and cut to
    cfg.max_docs documents for quick runs."""

    def __init__(self, fib: dict[str, pd.DataFrame], cfg: Config):
        self.fib, self.cfg = fib, cfg

    @functools.cached_property
    def usb(self) -> dict[str, pd.DataFrame]:
        return limit_documents(usb_splits(), self.cfg.max_docs)

    @functools.cached_property
    def nli(self) -> dict[str, pd.DataFrame]:
        return limit_documents(nli_splits(load_nli()), self.cfg.max_docs and 25 * self.cfg.max_docs)

    @functools.cached_property
    def fib_train_docs(self):
        return self.fib["train"]["doc_id"].unique()

    @functools.cache
    def claims(self, name: str) -> dict[str, pd.DataFrame]:
        return limit_documents(claim_splits(name), self.cfg.max_docs)


@dataclasses.dataclass(frozen=True)
class Part:
    """One part of the mix: `load` gives its pairs (from the sources, the config and the parts built before it);
    `pairs` caps them (a number, the name of a Config field holding one, or None: all), drawn by label; `weight`
    repeats each kept pair (1: once per epoch). `validation` gives the set it is selected on, if any."""
    name: str
    load: Callable[[MixSources, Config, dict], pd.DataFrame]
    pairs: int | str | None = None
    weight: float = 1.0
    validation: Callable[[MixSources], pd.DataFrame] | None = None
    family: str = ""  # parts of one family are held out together (leave_family_out)

    def cap(self, cfg: Config) -> int | None:
        return getattr(cfg, self.pairs) if isinstance(self.pairs, str) else self.pairs


def _synthetic(src: MixSources, cfg: Config, built: dict) -> pd.DataFrame:
    """Rule-based edits (vf/edits.py) of the consistent FIB and USB summaries built so far; none repeats a mix pair."""
    if not cfg.detector_synthetic_pairs:
        return pd.DataFrame(columns=MIX_COLUMNS)
    summaries = pd.concat([built[name][MIX_COLUMNS] for name in ("fib", "fib_model_consistent", "usb")
                           if name in built])
    return synthetic_negatives(summaries[summaries["label"] == CONSISTENT].reset_index(drop=True),
                               cfg.detector_synthetic_pairs, SPLIT_SEED, existing=pd.concat(built.values()))


def claim_part(name: str, family: str, pairs: int | str | None = "detector_claim_pairs", weight: float = 1.0) -> Part:
    """A claim set's training split as a part (vf/claim_sets.py), selected on its validation split."""
    return Part(name, lambda src, cfg, built: src.claims(name)["train"], pairs=pairs, weight=weight,
                validation=lambda src: subsample(src.claims(name)["validation"], WATCHED_PAIRS, SPLIT_SEED),
                family=family)


# The mix, one part a row; a new training source is one row here (its loader lives with its source)
DETECTOR_MIX = (
    # FIB-XSum train, 1:1, twice an epoch: the home benchmark, in a mix where news is otherwise a small share
    Part("fib", lambda src, cfg, built: src.fib["train"], weight=2.0,
         validation=lambda src: src.fib["validation_all"], family="news"),
    # FIB's other distractor sets over the same training documents: rewrites of references, capped so that a
    # reference-like summary does not lean inconsistent
    Part("fib_other", lambda src, cfg, built: new_fib_other(src.fib, src.fib_train_docs),
         pairs="detector_fib_other_pairs", family="news"),
    # consistent model-written summaries of those documents: who wrote a summary says nothing about its label
    Part("fib_model_consistent", lambda src, cfg, built: load_model_generated_consistent(src.fib_train_docs),
         family="news"),
    # USB's Wikipedia sentences, capped: all 5,050 made 60% of the first mix and decided what "consistent" looks like
    Part("usb", lambda src, cfg, built: src.usb["train"], pairs="detector_usb_pairs",
         validation=lambda src: subsample(src.usb["validation"], WATCHED_PAIRS, SPLIT_SEED), family="wikipedia"),
    # NLI replayed, so that entailment is not forgotten
    Part("nli", lambda src, cfg, built: src.nli["train"], pairs="detector_nli_pairs",
         validation=lambda src: subsample(src.nli["validation"], WATCHED_PAIRS, SPLIT_SEED), family="nli"),
    Part("synthetic", _synthetic, family="news"),
    # claims against their evidence, none from news: LLM claims vs web passages, long-form answers' sentences vs the
    # documents they cite, dialogue responses vs their knowledge snippet
    claim_part("factcheck_gpt", "web"),
    claim_part("lfqa", "lfqa"),
    claim_part("begin", "dialogue"),
    claim_part("faithdial_audit", "dialogue"),
)
CLAIM_FAMILIES = ("web", "lfqa", "dialogue")
CLAIM_PARTS = tuple(p for p in DETECTOR_MIX if p.family in CLAIM_FAMILIES)


def leave_family_out(parts, family: str) -> tuple[tuple, tuple]:
    """(the parts trained on, the parts left out): everything but `family`, and `family` alone, whose validation
    sets then show how the detector reads a source it never trained on."""
    if family not in {p.family for p in parts}:
        raise ConfigError(f"no part of family {family!r}; the families are {sorted({p.family for p in parts})}")
    return tuple(p for p in parts if p.family != family), tuple(p for p in parts if p.family == family)


def recipe_parts(cfg: Config, parts=DETECTOR_MIX) -> tuple[tuple, tuple]:
    """(the parts trained on, the parts only watched): `parts` without the families in cfg.detector_leave_out."""
    trained, watched = tuple(parts), ()
    for family in cfg.detector_leave_out:
        trained, out = leave_family_out(trained, family)
        watched += out
    return trained, watched


def weighted(part: pd.DataFrame, weight: float, seed: int = SPLIT_SEED) -> pd.DataFrame:
    """Each pair `weight` times: whole repeats, then a draw (by label) for the fraction; weight 1 leaves it as it is."""
    if weight < 0:
        raise ConfigError(f"a part's weight must be >= 0, got {weight}")
    whole, fraction = divmod(weight, 1)
    extra = round(fraction * len(part))
    return pd.concat([part] * int(whole) + ([subsample(part, extra, seed)] if extra else []), ignore_index=True)


def build_mix(parts, src: MixSources, cfg: Config) -> pd.DataFrame:
    """The training pairs of `parts` with a `source` column (each part capped and weighted), shuffled by cfg.seed."""
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise ConfigError(f"the mix names a part twice: {names}")
    built = {}
    for part in parts:
        built[part.name] = weighted(subsample(part.load(src, cfg, built), part.cap(cfg), SPLIT_SEED), part.weight)
    mix = pd.concat([frame[MIX_COLUMNS].assign(source=name) for name, frame in built.items() if len(frame)],
                    ignore_index=True)
    return mix.sample(frac=1.0, random_state=cfg.seed).reset_index(drop=True)


def detector_mix(fib: dict[str, pd.DataFrame], cfg: Config, parts=DETECTOR_MIX) -> pd.DataFrame:
    """The detector's training pairs: every part of the recipe."""
    return build_mix(parts, MixSources(fib, cfg), cfg)


def mix_validation(fib: dict[str, pd.DataFrame], cfg: Config, parts=DETECTOR_MIX) -> dict[str, pd.DataFrame]:
    """What the mix is selected on: each part's validation set, named <part>_validation (FIB's: every negative)."""
    src = MixSources(fib, cfg)
    names = mix_validation_names(parts)
    return {names[p.name]: p.validation(src) for p in parts if p.validation}


def mix_validation_names(parts) -> dict[str, str]:
    """Part name -> its validation set's name (FIB's: fib_validation_all, every negative), for parts that have one."""
    return {p.name: "fib_validation_all" if p.name == "fib" else f"{p.name}_validation" for p in parts if p.validation}
