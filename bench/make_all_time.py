"""How long `make all` takes from a fresh clone, from each step's own record: the latest time of every step in
results/notebook_times.csv, where make's timed steps write it: the venv installed, the two NLI bases restored, the
detector built, each notebook executed.

    python -m bench.make_all_time [--profile cpu]     # results/checks/make_all_time.csv

Exits 1, naming the step, where a step has no record for the profile; the data step is not timed (a local copy
costs nothing, a download depends on the network).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
BUILT_STEPS = ["venv", "nli_base", "nli_full", "detector"]  # make all's steps before the notebooks, as it names them


def notebooks() -> list[str]:
    """The notebooks `make all` executes, read from the Makefile so that the two never disagree."""
    match = re.search(r"^NOTEBOOKS := (.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    return match.group(1).split()


def make_all_steps(times: pd.DataFrame, profile: str) -> pd.DataFrame:
    """One row per step of make all (the latest record of each) and their total; a step without a record raises."""
    times = times[times["profile"] == profile]
    rows = []
    for step in BUILT_STEPS + notebooks():
        done = times[times["notebook"] == step]
        if done.empty:
            raise SystemExit(f"results/notebook_times.csv has no {profile!r} record of {step!r}: run make all (or "
                             f"the step that makes it) first.")
        last = done.sort_values("finished").iloc[-1]
        rows.append(dict(step=step, seconds=float(last["seconds"]), finished=last["finished"]))
    table = pd.DataFrame(rows)
    total = dict(step="total", seconds=table["seconds"].sum(), finished="")
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True).assign(minutes=lambda t: t["seconds"] / 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from vf.device import device_description
    table = make_all_steps(pd.read_csv(REPO / "results" / "notebook_times.csv"), args.profile).round(1)
    table["device"] = device_description()  # the host these records come from: run this where make all ran
    out = REPO / "results" / "checks" / "make_all_time.csv"
    table.to_csv(out, index=False)
    print(table.to_string(index=False))
    print("saved to", out)


if __name__ == "__main__":
    main()
