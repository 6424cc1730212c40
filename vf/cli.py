"""The command line: score a file of (document, summary) pairs with a saved detector.

    python -m vf score PAIRS.jsonl --model models/detector [--out scores.jsonl] [--claims CLAIMS.jsonl]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .io import DataError, read_pair_records
from .config import ConfigError

PROGRESS_FROM = 200  # pairs: a progress bar on stderr from this many on


def _write(frame: pd.DataFrame, path: str | None) -> None:
    """jsonl to stdout, or to `path` as .jsonl or .csv by its extension."""
    if path is None or Path(path).suffix != ".csv":
        text = frame.to_json(orient="records", lines=True, force_ascii=False).rstrip("\n") + "\n"  # one line each
        if path is None:
            sys.stdout.write(text)
        else:
            Path(path).write_text(text, encoding="utf-8")
    else:
        frame.to_csv(path, index=False)


def score_file(args) -> None:
    from .detector import HallucinationDetector
    records = read_pair_records(args.pairs, [args.document_field, args.summary_field])
    detector = HallucinationDetector.from_pretrained(args.model)
    documents = [r[args.document_field] for r in records]
    summaries = [r[args.summary_field] for r in records]
    claims = detector.score_claims(documents, summaries, progress=len(records) >= PROGRESS_FROM)
    p = detector.aggregate(claims, len(records))
    kept = [k for k in records[0] if k not in ("_where", args.document_field)]  # the document is not repeated
    out = pd.DataFrame([{k: r.get(k) for k in kept} for r in records]).assign(p_inconsistent=p.round(6))
    _write(out, args.out)
    if args.claims:
        ids = [r.get("id", i) for i, r in enumerate(records)]
        _write(claims.assign(id=[ids[i] for i in claims["pair"]], p_inconsistent=claims["p_inconsistent"].round(6))
               [["id", "pair", "sentence", "claim", "p_inconsistent"]], args.claims)
    print(f"scored {len(records)} pairs ({len(claims)} claims) from {args.pairs} with {args.model}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="P(inconsistent) for each pair of a .jsonl or .csv file")
    score.add_argument("pairs", help="a .jsonl file (one JSON object a line) or a .csv file with a header")
    score.add_argument("--model", default="models/detector", help="a folder saved by make detector")
    score.add_argument("--out", default=None, help="where the pair scores go (.jsonl or .csv); default stdout")
    score.add_argument("--claims", default=None, help="also write one row per claim (summary sentence) here")
    score.add_argument("--document-field", default="document")
    score.add_argument("--summary-field", default="summary")
    args = parser.parse_args(argv)
    try:
        score_file(args)
    except (DataError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
