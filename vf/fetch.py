"""Raw data from its public origin, for a machine without a local data folder: each set's repository at a pinned
commit, the files the loaders read with their sha256 (data_checksums.json), and its licence, said at download.
A file is downloaded beside its place as <name>.part, checked, and only then renamed into data/raw/.

    python -m vf.fetch          # every set up front (make data)
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .config import DATA_DIR_ENV, GENERATED_DIR, DataError

RAW_DIR = GENERATED_DIR / "raw"  # laid out like ../shared/data; git-ignored
MIRROR_ENV = "VF_DATA_MIRROR"  # a base URL standing in for https://raw.githubusercontent.com (a mirror, or tests)
GITHUB_RAW = "https://raw.githubusercontent.com"
CHECKSUMS = json.loads((Path(__file__).with_name("data_checksums.json")).read_text())


@dataclasses.dataclass(frozen=True)
class Origin:
    """One set's public origin: a GitHub repository at a pinned commit, the folder its files come from, the folder
    under the data folder they go to (the files are those data_checksums.json lists there), and the set's licence."""
    name: str
    repo: str
    commit: str
    source: str
    target: str
    licence: str
    restricted: bool = False  # non-commercial or research use only: said before it is downloaded

    def files(self) -> list[str]:
        """The target paths of this set: the checksummed files directly in its target folder."""
        return sorted(p for p in CHECKSUMS if str(Path(p).parent) == self.target)

    def url(self, path: str) -> str:
        base = os.environ.get(MIRROR_ENV, GITHUB_RAW).rstrip("/")
        return f"{base}/{self.repo}/{self.commit}/{'/'.join(filter(None, [self.source, Path(path).name]))}"


FIB = ("r-three/fib", "53cf4364cbba14845ecdc79f8a1ee3d2c8e3e6e4")
ORIGINS = (
    Origin("FIB XSum", *FIB, "multiple_choice-dataset/xsum/fib", "fib/xsum", "CC BY 4.0"),
    Origin("FIB CNN/DM", *FIB, "multiple_choice-dataset/cnn_dm/fib", "fib/cnn_dm", "CC BY 4.0"),
    *(Origin(f"FIB XSum {part}", *FIB, f"multiple_choice-dataset/xsum/{part}", f"fib/xsum_other/{part}", "CC BY 4.0")
      for part in ("factcc", "mfma", "fir", "factually_consistent-model_generated")),
    Origin("SummEdits", "salesforce/factualNLG", "639f58a55baf34b32fe4b0137c062735fa9e360a", "data/summedits",
           "summedits", "Apache-2.0"),
    Origin("SICK", "kkalouli/SICK-processing", "b55cf253c6ae9f5b5c9b287184e34147a5d7fc67", "", "sick",
           "CC BY-NC-SA 3.0: non-commercial use only", restricted=True),
)


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def download(url: str, dest: Path, sha256: str, timeout: float = 60) -> Path:
    """Download url to dest through dest.part: renamed into place only when its sha256 is the expected one, so that
    an interrupted or altered download is never read."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        part.unlink(missing_ok=True)
        raise DataError(f"could not download {url} ({e}).") from None
    if digest.hexdigest() != sha256:
        part.unlink()
        raise DataError(f"{url}: sha256 {digest.hexdigest()[:12]}..., expected {sha256[:12]}... (data_checksums.json): "
                        "the file at the origin is not the one this project was built on. Nothing was kept.")
    os.replace(part, dest)
    return dest


def origin_of(path: str) -> Origin | None:
    return next((o for o in ORIGINS if path in o.files()), None)


def fetched(relative: str) -> Path:
    """RAW_DIR/relative, with every file of a known origin under it downloaded first (a file or a folder); a clear
    error, naming the missing files and both ways to get them, where that cannot be done."""
    wanted = [p for p in CHECKSUMS if (p == relative or p.startswith(relative.rstrip("/") + "/")) and origin_of(p)]
    missing = [p for p in wanted if not (RAW_DIR / p).exists()]
    if not wanted:
        raise DataError(f"{relative}: this repository knows no public origin it can download it from. Set "
                        f"{DATA_DIR_ENV} to a folder laid out like ../shared/data that holds it (data/README.md).")
    told = set()
    for path in missing:
        origin = origin_of(path)
        if origin.name not in told:
            told.add(origin.name)
            note = " [restricted]" if origin.restricted else ""
            print(f"fetching {origin.name} ({origin.licence}){note} from {origin.repo}@{origin.commit[:7]}",
                  file=sys.stderr)
        try:
            download(origin.url(path), RAW_DIR / path, CHECKSUMS[path])
        except DataError as e:
            still = [p for p in missing if not (RAW_DIR / p).exists()]
            raise DataError(f"{e}\n{len(still)} file(s) under {relative} are missing from {RAW_DIR}, e.g. {still[0]}. "
                            f"Either set {DATA_DIR_ENV} to a folder laid out like ../shared/data (data/README.md), "
                            f"or run `make data` on a machine with network access.") from None
    return RAW_DIR / relative


def fetch_all() -> list[Path]:
    """Every set with a known origin, into RAW_DIR (make data)."""
    return [fetched(origin.target) for origin in ORIGINS]


if __name__ == "__main__":
    for folder in fetch_all():
        print(f"ready: {folder}")
