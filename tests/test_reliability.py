"""Resume after a kill, atomic checkpoints, non-finite values, determinism, safe loading, bad input."""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import utils
from conftest import CROSS_ENCODER_ORDER, small_config, synthetic_pairs, tiny_bert

REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import sys, time
    import torch, utils
    from safetensors.torch import save_file
    from conftest import small_config, synthetic_pairs
    model_dir, checkpoint_dir, out, resume, slow = sys.argv[1:6]
    torch.set_num_threads(1)
    utils.seed_everything(0)
    tokenizer, model = utils.load_model(model_dir)
    if slow == "1":  # give the test time to kill it mid-run; sleeping changes no number
        model.register_forward_pre_hook(lambda *args: time.sleep(0.15) if model.training else None)
    cfg = small_config(epochs=3, eval_every=3, checkpoint_every=2, resume=resume == "1", lr=1e-3, bf16=False)
    history = utils.train(model, tokenizer, synthetic_pairs(9, 5), {"validation": synthetic_pairs(4, 6)}, cfg,
                          checkpoint_dir=checkpoint_dir).history
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out + ".safetensors")
    history.to_json(out + ".json")
""")


def run_worker(args):
    """The worker in a real subprocess; its output goes to <out>.log (a full pipe would stall it)."""
    log = open(args[2] + ".log", "w")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], stdout=log, stderr=subprocess.STDOUT, env=env)


def test_killed_run_resumes_to_the_same_weights_and_metrics(tmp_path):
    model_dir = tiny_bert(tmp_path / "model")
    # 9 docs -> 18 pairs -> 5 batches of 4 -> 5 updates per epoch, 15 in all; checkpoints every 2 updates
    reference = run_worker([str(model_dir), str(tmp_path / "ck_ref"), str(tmp_path / "ref"), "0", "0"])
    assert reference.wait(timeout=300) == 0, (tmp_path / "ref.log").read_text()

    killed = run_worker([str(model_dir), str(tmp_path / "ck"), str(tmp_path / "killed"), "0", "1"])
    deadline = time.time() + 240
    while time.time() < deadline:
        pointer = tmp_path / "ck" / "latest.json"
        # past update 6, and the older checkpoint already removed (a kill between the two steps leaves both)
        if pointer.exists() and int(json.loads(pointer.read_text())["checkpoint"][5:]) >= 6 \
                and len(list((tmp_path / "ck").glob("ckpt-*"))) == 1:
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    assert not (tmp_path / "killed.json").exists()  # it really died mid-run
    assert len(list((tmp_path / "ck").glob("ckpt-*"))) == 1

    resumed = run_worker([str(model_dir), str(tmp_path / "ck"), str(tmp_path / "resumed"), "1", "0"])
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resumed.log").read_text()
    resumed_at = re.search(r"resumed from \S+ckpt-(\d+) \(update (\d+)", (tmp_path / "resumed.log").read_text())
    assert resumed_at and int(resumed_at.group(2)) >= 6  # it continued, not started over
    ref, res = load_file(str(tmp_path / "ref.safetensors")), load_file(str(tmp_path / "resumed.safetensors"))
    assert ref.keys() == res.keys()
    for key in ref:
        assert torch.equal(ref[key], res[key]), key
    pd.testing.assert_frame_equal(pd.read_json(tmp_path / "ref.json").drop(columns="seconds"),
                                  pd.read_json(tmp_path / "resumed.json").drop(columns="seconds"))


def test_same_seed_gives_identical_losses_metrics_and_weights(tmp_path):
    runs = []
    for _ in range(2):
        utils.seed_everything(0)
        tokenizer, model = utils.load_model(tiny_bert(tmp_path / "m"))
        history = utils.train(model, tokenizer, synthetic_pairs(12, 1), {"validation": synthetic_pairs(6, 2)},
                              small_config(epochs=2, eval_every=2, bf16=False)).history
        runs.append((history.drop(columns="seconds"), {k: v.clone() for k, v in model.state_dict().items()}))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


def test_checkpoint_of_another_label_set_is_refused(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path / "mnli"))
    utils.train(model, tokenizer, synthetic_pairs(4, 1), {"validation": synthetic_pairs(4, 2)},
                small_config(checkpoint_every=1), checkpoint_dir=tmp_path / "ck")
    tokenizer, other = utils.load_model(tiny_bert(tmp_path / "ce", CROSS_ENCODER_ORDER))
    with pytest.raises(ValueError, match="written for another model or label set"):
        utils.train(other, tokenizer, synthetic_pairs(4, 1), {"validation": synthetic_pairs(4, 2)},
                    small_config(resume=True), checkpoint_dir=tmp_path / "ck")


def test_a_fresh_run_moves_an_old_checkpoint_aside(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path / "m"))
    for _ in range(2):
        utils.train(model, tokenizer, synthetic_pairs(4, 1), {"validation": synthetic_pairs(4, 2)},
                    small_config(checkpoint_every=1), checkpoint_dir=tmp_path / "ck")
    assert (tmp_path / "ck.previous" / "latest.json").exists()
    assert (tmp_path / "ck" / "latest.json").exists()


def test_non_finite_loss_stops_with_the_update_and_keeps_the_last_checkpoint(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path / "m"))
    calls = {"n": 0}

    def poison(module, inputs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] > 3:
                return output * float("nan")

    model.classifier.register_forward_hook(poison)
    with pytest.raises(FloatingPointError, match=r"non-finite loss or gradient norm at update 4 .*last good checkpoint"):
        utils.train(model, tokenizer, synthetic_pairs(12, 1), {"validation": synthetic_pairs(4, 2)},
                    small_config(checkpoint_every=1), checkpoint_dir=tmp_path / "ck")
    pointer = json.loads((tmp_path / "ck" / "latest.json").read_text())
    assert pointer["checkpoint"] == "ckpt-000003"
    weights = load_file(str(tmp_path / "ck" / pointer["checkpoint"] / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_checkpoints_are_safetensors_and_torch_load_is_weights_only():
    source = "".join(path.read_text() for path in [REPO / "utils.py", *sorted((REPO / "vf").glob("*.py"))])
    assert source.count("torch.load(") == source.count("weights_only=True") == 1
    assert "trust_remote_code=True" not in source


def test_pickled_weights_are_refused(tmp_path):
    folder = tiny_bert(tmp_path / "m")
    _, model = utils.load_model(folder)
    os.remove(folder / "model.safetensors")
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="Only safetensors weights are loaded"):
        utils.load_model(folder)


def test_empty_split_and_empty_text_are_clear_errors(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path / "m"))
    pairs = synthetic_pairs(4, 1)
    with pytest.raises(ValueError, match="training split: the split is empty"):
        utils.train(model, tokenizer, pairs.iloc[:0], {"validation": pairs}, small_config())
    blank = pairs.copy()
    blank.loc[3, "hypothesis"] = "  "
    with pytest.raises(ValueError, match="validation: empty hypothesis in row 3"):
        utils.train(model, tokenizer, pairs, {"validation": blank}, small_config())


def test_non_finite_scores_are_a_clear_error():
    with pytest.raises(ValueError, match="1 scores are NaN or infinite"):
        utils.compute_metrics([0, 1], [0.2, np.nan])


def test_a_built_model_is_reused_only_with_its_record(tmp_path, capsys):
    from vf.model import found_or_built
    folder, record = tmp_path / "m", tmp_path / "m" / "record.json"
    builds = []
    build = lambda: builds.append(1) or folder  # noqa: E731
    assert found_or_built(folder, record, str, build) == folder and builds == [1]  # nothing there: built
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    found_or_built(folder, record, str, build)
    assert builds == [1, 1] and "record.json is missing: rebuilding" in capsys.readouterr().out
    record.write_text('{"pairs": 3}')
    found_or_built(folder, record, lambda r: f"found, {r['pairs']} pairs", build)
    assert builds == [1, 1] and "found, 3 pairs\n(delete" in capsys.readouterr().out


def test_a_stages_history_is_read_back_from_its_checkpoint(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path / "m"))
    result = utils.train(model, tokenizer, synthetic_pairs(4, 1), {"validation": synthetic_pairs(4, 2)},
                         small_config(checkpoint_every=1), checkpoint_dir=tmp_path / "ck")
    history = utils.checkpoint_history(tmp_path / "ck")
    assert history["update"].tolist() == result.history["update"].tolist()
    assert np.allclose(history["validation/roc_auc"], result.history["validation/roc_auc"])
    assert (history["best_update"] == result.best_update).all()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        utils.checkpoint_history(tmp_path / "nothing")
