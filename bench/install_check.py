"""The package as a user installs it: `pip install .` into a new, empty venv, then `python -m vf score` on a jsonl of
FIB-XSum validation pairs, run outside the repository so that the installed package (not the checkout) scores them;
its scores are compared with `HallucinationDetector.score` in this environment, as the notebooks call it.

    python -m bench.install_check [--model models/detector] [--pairs 60]

Writes results/checks/install_check.json (Python, pip-install seconds, pairs, the largest difference) and exits 1
when any score differs by more than TOLERANCE.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5  # the CLI writes scores rounded to 6 decimals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "detector")
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "checks" / "install_check.json")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import utils

    model = args.model.resolve()
    pairs = utils.fib_splits()["validation_all"].sample(args.pairs, random_state=0)
    expected = utils.HallucinationDetector.from_pretrained(model).score(pairs["premise"], pairs["hypothesis"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "venv", tmp / "venv"], check=True)
        start = time.time()
        subprocess.run([tmp / "venv" / "bin" / "pip", "install", "--quiet", str(REPO)], check=True)
        install_seconds = round(time.time() - start, 1)
        records = pd.DataFrame({"id": pairs["pair_id"].to_numpy(), "document": pairs["premise"].to_numpy(),
                                "summary": pairs["hypothesis"].to_numpy()})
        records.to_json(tmp / "pairs.jsonl", orient="records", lines=True, force_ascii=False)
        subprocess.run([tmp / "venv" / "bin" / "python", "-m", "vf", "score", "pairs.jsonl", "--model", str(model),
                        "--out", "scores.jsonl"], check=True, cwd=tmp)  # cwd outside the checkout: the installed vf
        installed, torch_version = subprocess.run(
            [tmp / "venv" / "bin" / "python", "-c", "import torch, vf; print(vf.__file__); print(torch.__version__)"],
            check=True, cwd=tmp, capture_output=True, text=True).stdout.split()
        scores = pd.read_json(tmp / "scores.jsonl", lines=True)
    if str(REPO) in installed:
        raise SystemExit(f"the venv imported vf from the checkout ({installed}), not the installed package")
    if scores["id"].tolist() != records["id"].tolist():
        raise SystemExit("the command line's output is not in the input's order")
    difference = float(np.max(np.abs(scores["p_inconsistent"].to_numpy() - expected)))
    result = dict(python=platform.python_version(), torch=torch_version, pip_install_seconds=install_seconds,
                  pairs=len(pairs),
                  model=str(model.relative_to(REPO)) if model.is_relative_to(REPO) else str(model),
                  max_abs_difference=difference, tolerance=TOLERANCE, equal=difference <= TOLERANCE)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
