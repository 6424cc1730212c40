"""The learning curve over FIB training documents: every condition of vf.curve.CURVE_CONDITIONS at every size of
CURVE_SIZES, over seeds, all from one NLI base. Resumable: run it again and it continues where it stopped.

    python -m experiments.curve [--seeds 0 1 2 3 4] [--sizes 35 105 350] [--commit] [--summary-only]
    python -m experiments.curve --merge results/device/curve_seed5 ...   # cells run elsewhere (device_curve.sh)

The first run keeps the NLI base it starts from (`make nli-base`'s) compactly in results/study/curve/base/ (word
embeddings int8 per row, the rest fp16: 34 MB), so
that a later run, on another machine, starts every cell from the same weights; each row records their digest. Per
seed, the USB stage and its shuffled-label control are trained once (models/curve/seed<k>/) and reused at every size.
Each finished cell replaces its own rows in scores.csv (one per split and metric), test_scores.csv (FIB test_all, one
per pair) and timings.csv; --commit commits them to git after each cell. summary.csv, worth.csv and the figure are
written at the end (or alone with --summary-only).
"""
import dataclasses
import json
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import torch

import utils
from experiments import common
from vf import curve
from vf.model import restore_compact_weights

def grid_base(cfg: utils.Config, fib: dict) -> tuple[Path, dict]:
    """(folder, record) of the NLI base every cell starts from: restored from the grid's compact copy, which the first
    run takes from `make nli-base`'s model. A restored copy whose digest differs from the record is refused."""
    kept = utils.kept_nli_base(cfg)
    record_path, folder = kept / "base.json", Path(cfg.models_dir) / "curve" / "nli_base"
    if not record_path.exists():
        source = utils.ensure_nli_base(cfg, fib)
        utils.keep_nli_base(cfg, source)
        record = dict(digest=None, built_from=str(source), built_from_digest=utils.weights_digest(source))
    else:
        record = json.loads(record_path.read_text())
    if not (folder / "model.safetensors").exists():
        restore_compact_weights(utils.kept_weights(cfg), folder)
    digest = utils.weights_digest(folder)
    if record["digest"] is None:
        record["digest"] = digest
        record_path.write_text(json.dumps(record, indent=2) + "\n")
    elif digest != record["digest"]:
        raise utils.ConfigError(f"{folder} has weights {digest}, but the grid started from {record['digest']} "
                                f"({record_path}). Delete {folder} to restore it from {utils.kept_weights(cfg)}.")
    return folder, record


def start_model(name: str, cfg: utils.Config, base: Path, fib: dict, usb: list) -> tuple[Path, dict]:
    """The folder of a starting point for cfg.seed: the NLI base, or its USB stage (real or shuffled labels), trained
    here once (from its checkpoints where a run was stopped) and saved; returns it and a timing row (empty if found)."""
    if name == "nli_base":
        return base, {}
    folder = Path(cfg.models_dir) / "curve" / f"seed{cfg.seed}" / name
    if (folder / "model.safetensors").exists():
        return folder, {}
    source, shuffled = curve.CURVE_STARTS[name]
    if not usb:
        usb.append(common.load_source(source, cfg))
    utils.seed_everything(cfg.seed)
    tokenizer, model = utils.load_model(base)
    stage = utils.out_of_domain_stage(tokenizer, source, usb[0][1], fib, dataclasses.replace(cfg, resume=True),
                                      shuffled)
    # a checkpoint at each evaluation: a stopped run loses at most a quarter of the stage
    stage = dataclasses.replace(stage, cfg=dataclasses.replace(stage.cfg, checkpoint_every=stage.cfg.eval_every))
    checkpoints, start = folder.with_name(f"{name}_checkpoints"), time.time()
    latest = checkpoints / "latest.json"  # a stopped run's checkpoint: this run's minutes cover the rest only
    resumed = int(json.loads(latest.read_text())["checkpoint"].rsplit("-", 1)[1]) if latest.exists() else 0
    result = utils.run_stage(model, tokenizer, stage, checkpoints)
    utils.save_model(model, tokenizer, folder, stage.cfg, result.history)
    shutil.rmtree(checkpoints)
    return folder, dict(stage=stage.name, updates=int(result.history["update"].iloc[-1]),
                        kept_update=result.best_update, seconds=round(time.time() - start, 1),
                        resumed_from_update=resumed)


def run_cell(name: str, size: int, cfg: utils.Config, start: Path, fib: dict) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                    dict]:
    """Train one cell from its starting point (a FIB stage on cfg.seed's `size` documents, if it has one) and score
    FIB validation and test; returns its metric rows, its FIB test_all scores per pair, and a timing row."""
    utils.seed_everything(cfg.seed)
    tokenizer, model = utils.load_model(start)
    timing, began = dict(stage="", updates=0, kept_update=0), time.time()
    if curve.condition(name).fib:
        subset = curve.fib_subset(fib, size, cfg.seed)
        stage_cfg = curve.fib_budget_config(cfg, len(subset["train"]), len(fib["train"]))
        stage = utils.fib_stage(tokenizer, subset, stage_cfg, alone=curve.condition(name).start == "nli_base")
        result = utils.run_stage(model, tokenizer, stage)
        timing = dict(stage="fib", updates=int(result.history["update"].iloc[-1]), kept_update=result.best_update)
    splits = {k: fib[k] for k in ("validation_all", "test", "test_all")}
    probs = utils.score_splits(model, tokenizer, splits, cfg)
    table = utils.evaluate_splits(splits, probs)
    rows = pd.DataFrame([dict(split=split, metric=metric, value=round(float(table.loc[split, metric]), 4))
                         for split, metric in curve.CURVE_METRICS])
    pairs = pd.DataFrame({"pair_id": splits["test_all"]["pair_id"].to_numpy(), "p": probs["test_all"].round(5)})
    return rows, pairs, dict(timing, seconds=round(time.time() - began, 1))


def commit(paths: list[Path], message: str, attempts: int = 5) -> None:
    """Commit the curve's files alone (other changes in the tree stay as they are); a failure (another git command
    holding the index) is retried, then reported, and never stops the grid."""
    for attempt in range(attempts):
        added = subprocess.run(["git", "add", *map(str, paths)], cwd=utils.REPO_DIR, capture_output=True, text=True)
        done = added.returncode == 0 and subprocess.run(
            ["git", "commit", "--quiet", "-m", message, "--", *map(str, paths)], cwd=utils.REPO_DIR,
            capture_output=True, text=True).returncode == 0
        if done:
            return
        time.sleep(2 * (attempt + 1))
    print(f"warning: could not commit {message!r}; the files are written, commit them by hand", flush=True)


def merge_cells(files: dict[str, Path], other: Path, digest: str) -> None:
    """Join the cells of another run's curve folder to `files`: a cell there replaces its rows here; cells and stages
    of another base than `digest` are left out."""
    timings = pd.read_csv(other / files["timings"].name)
    kept = timings.loc[timings["base_digest"] == digest, "cell"]
    for name, path in files.items():
        rows = pd.read_csv(other / path.name)
        utils.upsert_rows(path, rows[rows["cell"].isin(kept)], "cell")
    print(f"merged {len(kept)} cells and stages from {other} ({(timings['base_digest'] != digest).sum()} of another "
          "base left out)")


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(curve.CURVE_SIZES))
    parser.add_argument("--commit", action="store_true", help="commit the curve's files after each cell")
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--merge", nargs="*", type=Path, default=[],
                        help="results folders of runs elsewhere (from the same kept base): their cells join these")
    args = parser.parse_args()
    cfg = common.config_from_args(args)
    folder = curve.curve_folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / f"{name}.csv" for name in ("scores", "test_scores", "timings")}
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    base, record = grid_base(cfg, fib)
    print(f"grid base: {base} (weights {record['digest']}, from make nli-base's {record['built_from_digest']})")
    provenance = dict(base_digest=record["digest"], device=utils.device_description(), precision="bf16" if (
        cfg.bf16 if cfg.bf16 is not None else utils.bf16_fits(utils.pick_device())) else "fp32",
        threads=torch.get_num_threads())  # two jobs may share the CPU, one thread each (OMP_NUM_THREADS=1)
    commit_at_start = utils.git_commit()  # the code this process runs, whatever is edited while it runs
    usb = []  # the USB splits, read once, by the first stage that needs them
    for other in args.merge:
        merge_cells(files, other / "study" / "curve", record["digest"])
    for seed in [] if args.summary_only or args.merge else args.seeds:
        seed_cfg = dataclasses.replace(cfg, seed=seed)
        done = pd.read_csv(files["timings"]) if files["timings"].exists() else pd.DataFrame(
            columns=["cell", "kind", "base_digest", "start_digest"])
        done = done[(done["kind"] == "cell") & (done["base_digest"] == record["digest"])].set_index("cell")
        cells = curve.curve_cells(args.sizes)
        starts = {}
        for name, size in cells:
            key, start_name = curve.cell_key(name, size, seed), curve.condition(name).start
            if start_name not in starts:
                if all(curve.cell_key(n, s, seed) in done.index for n, s in cells
                       if curve.condition(n).start == start_name):
                    starts[start_name] = None  # every cell from it is done: it need not be trained again
                else:
                    starts[start_name] = start_model(start_name, seed_cfg, base, fib, usb)
                    if starts[start_name][1]:  # a starting point trained now: its time is part of the seed's cost
                        row = starts[start_name][1]
                        utils.upsert_rows(files["timings"], pd.DataFrame([dict(
                            cell=curve.cell_key(start_name, 0, seed), kind="stage", condition=start_name, size=0,
                            seed=seed, **row, minutes=round(row["seconds"] / 60, 2), **provenance,
                            start_digest=record["digest"])]), "cell")
            if starts[start_name] is None:
                print(f"== {key}: done")
                continue
            start_digest = utils.weights_digest(starts[start_name][0])
            if key in done.index and done.loc[key, "start_digest"] == start_digest:
                print(f"== {key}: done")
                continue
            print(f"== {key}: from {start_name} ({start_digest})", flush=True)
            rows, pairs, timing = run_cell(name, size, seed_cfg, starts[start_name][0], fib)
            cell = dict(cell=key, condition=name, size=size, seed=seed)
            stamp = dict(start_digest=start_digest, git_commit=commit_at_start)
            utils.upsert_rows(files["scores"], rows.assign(**cell, **provenance, **stamp), "cell")
            utils.upsert_rows(files["test_scores"], pairs.assign(**cell), "cell")
            utils.upsert_rows(files["timings"], pd.DataFrame([dict(
                **cell, kind="cell", **timing, minutes=round(timing["seconds"] / 60, 2), **provenance, **stamp)]),
                "cell")
            test_auc = rows.set_index(["split", "metric"]).loc[curve.CURVE_METRIC, "value"]
            print(f"   {key}: FIB test ROC AUC {test_auc:.3f}, {timing['seconds'] / 60:.1f} min", flush=True)
            if args.commit:
                commit(list(files.values()) + [utils.kept_nli_base(cfg)], f"Learning curve: {key} (FIB test ROC AUC "
                       f"{test_auc:.3f}, {timing['seconds'] / 60:.1f} min, {provenance['precision']})")
    write_summary(folder)


def write_summary(folder: Path) -> None:
    """summary.csv, worth.csv and the figure from the cells of the kept base (vf.curve.summarise_curve)."""
    if not (folder / "scores.csv").exists():
        print("no cells yet")
        return
    _, summary, worth, _ = curve.summarise_curve(folder)
    shown = summary[(summary["split"] == "test") & (summary["metric"] == "roc_auc")]
    print(shown[["condition", "size", "seeds", "mean", "ci_low", "ci_high"]].round(3).to_string(index=False))
    print(worth.round(3).to_string(index=False), f"\nsummary.csv, worth.csv and the figure written to {folder}")


if __name__ == "__main__":
    main()
