"""torchrun with 2 CPU processes (gloo) against one process with the same global batch: same losses, same weights."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

from conftest import synthetic_pairs, tiny_bert

WORKER = Path(__file__).with_name("ddp_worker.py")


def launch(n_processes: int, batch_size: int, model_dir, pairs_path, out_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n_processes}",
           str(WORKER), str(model_dir), str(pairs_path), str(out_dir), str(batch_size)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    latest = json.loads((out_dir / "ckpt" / "latest.json").read_text())["checkpoint"]
    weights = load_file(str(out_dir / "ckpt" / latest / "model.safetensors"))
    return pd.read_csv(out_dir / "history.csv"), weights, int((out_dir / "world.txt").read_text())


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    model_dir = tiny_bert(tmp_path / "model")
    config_path = model_dir / "config.json"  # no dropout, so both runs compute the same function
    config = json.loads(config_path.read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config_path.write_text(json.dumps(config))
    pairs_path = tmp_path / "pairs.jsonl"
    synthetic_pairs(20, seed=5).to_json(pairs_path, orient="records", lines=True)  # 40 pairs

    # one process: 8 pairs per batch x 2 batches per update; two processes: 4 + 4 pairs per batch x 2
    single, single_weights, world_1 = launch(1, 8, model_dir, pairs_path, tmp_path / "one")
    double, double_weights, world_2 = launch(2, 4, model_dir, pairs_path, tmp_path / "two")
    assert (world_1, world_2) == (1, 2)
    assert list(single["update"]) == list(double["update"]) == list(range(7))  # 40 / 16 -> 3 updates x 2 epochs
    pd.testing.assert_series_equal(single["train_loss"], double["train_loss"], rtol=1e-4, atol=1e-5)
    assert single["train_loss"].iloc[1:].notna().all()
    assert set(single_weights) == set(double_weights)
    for name in single_weights:
        torch.testing.assert_close(double_weights[name], single_weights[name], rtol=1e-4, atol=1e-5, msg=name)
    # and training moved the weights: the comparison is not between two untouched models
    untouched = load_file(str(model_dir / "model.safetensors"))
    moved = max((single_weights[k] - untouched[k]).abs().max().item() for k in untouched if k in single_weights)
    assert moved > 1e-3
