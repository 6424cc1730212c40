"""Reading raw files: DataError, the local data folder, jsonl with file:line errors, and the checks loaders share."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from .config import DATA_DIR_ENV, REPO_DIR, DataError
from .fetch import fetched


def data_dir() -> Path | None:
    """The local raw-data folder ($VF_DATA_DIR, else ../shared/data), or None: then the loaders fetch each set from
    its public origin (vf/fetch.py)."""
    if os.environ.get(DATA_DIR_ENV):
        path = Path(os.environ[DATA_DIR_ENV]).expanduser()
        if not path.is_dir():
            raise DataError(f"{DATA_DIR_ENV}={path} is not a folder. Point {DATA_DIR_ENV} at a folder laid out "
                            f"like ../shared/data (see data/README.md), or unset it to fetch the public origins.")
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


def read_csv_records(path: Path) -> list[dict]:
    """Read a CSV file with a header line as dicts, each with its `_where` (file:line, counting quoted line breaks)."""
    import csv
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise DataError(f"{path}: empty file; a CSV of pairs needs a header line, then one pair a line.")
        records, start = [], reader.line_num + 1
        for record in reader:
            if None in record:  # more cells than the header names
                raise DataError(f"{path}:{start}: {len(reader.fieldnames) + len(record[None])} cells, but the header "
                                f"names {len(reader.fieldnames)}; quote fields that hold commas.")
            record["_where"] = f"{path}:{start}"
            records.append(record)
            start = reader.line_num + 1
    return records


def read_pair_records(path: str | os.PathLike, fields: list[str]) -> list[dict]:
    """Records of a .jsonl or .csv file of pairs; every record must hold each of `fields` as a non-empty string,
    else a DataError names the file, line and field. Nothing is skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    readers = {".jsonl": read_jsonl, ".csv": read_csv_records}
    if path.suffix not in readers:
        raise DataError(f"{path}: expected a .jsonl file (one JSON object a line) or a .csv file with a header; "
                        f"got {path.suffix or 'no extension'}.")
    records = readers[path.suffix](path)
    if not records:
        raise DataError(f"{path}: no pairs in the file.")
    for record in records:
        _require_fields(record, fields, record["_where"])
        for field in fields:
            if blank_positions([record[field]]):
                raise DataError(f"{record['_where']}: field {field!r} is {record[field]!r}; it must be a non-empty "
                                "string.")
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


def _files(folder: Path, pattern: str) -> list[Path]:
    """The files matching `pattern` in `folder`, sorted; a clear error where there are none."""
    files = sorted(folder.glob(pattern))
    if not files:
        raise DataError(f"No {pattern} files in {folder}. Set {DATA_DIR_ENV} to a folder laid out like ../shared/data.")
    return files


def _local_data(relative: str, what: str) -> Path:
    """A file or folder under the local raw-data folder; without one, fetched from its public origin (vf/fetch.py)
    into data/raw/."""
    root = data_dir()
    return fetched(relative) if root is None else _require_file(root / relative, what)


def check_pairs_frame(df: pd.DataFrame, name: str) -> None:
    """A clear error for an empty split or an empty premise or hypothesis, before any tokenizing."""
    if len(df) == 0:
        raise DataError(f"{name}: the split is empty; check the split names and the max_docs setting.")
    for column in ("premise", "hypothesis"):
        blank = blank_positions(df[column])
        if blank:
            raise DataError(f"{name}: empty {column} in row {df.index[blank[0]]}; remove the row or fill in the text.")
