"""The learning curve: its table of cells, nested subsets without leakage, the FIB budget in updates, seed-level
intervals and paired lifts on hand-made scores, the documents-worth reading, a control that keeps its last update,
and the kept base restored to the same weights."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st

import utils
from conftest import small_config, synthetic_pairs, tiny_bert
from vf import curve


def test_every_fib_condition_runs_at_every_size_and_each_start_has_a_zero_document_point():
    cells = curve.curve_cells((35, 105, 350))
    fib_conditions = [c.name for c in curve.CURVE_CONDITIONS if c.fib]
    assert len(cells) == len(set(cells)) == 3 + 3 * len(fib_conditions)
    assert {(name, n) for name in fib_conditions for n in (35, 105, 350)} <= set(cells)
    assert [curve.zero_document_point(n) for n in fib_conditions] == ["zero_shot", "usb_only", "shuffled_usb_only"]
    # grouped by starting point, so a seed's USB stage is trained once, when first needed
    starts = [curve.condition(name).start for name, _ in cells]
    assert starts == sorted(starts, key=["nli_base", "usb", "shuffled_usb"].index)


@given(seed=st.integers(0, 2**31 - 1), small=st.integers(1, 349))
def test_subsets_nest_and_never_touch_validation_or_test(seed, small):
    docs = [f"d{i}" for i in range(350)]
    fib = {"train": pd.DataFrame({"doc_id": docs * 2, "label": [0] * 350 + [2] * 350}),
           "train_all": pd.DataFrame({"doc_id": docs * 3}),
           "validation": pd.DataFrame({"doc_id": ["v1", "v2"]}), "test": pd.DataFrame({"doc_id": ["t1"]})}
    smaller, larger = curve.fib_subset(fib, small, seed), curve.fib_subset(fib, small + 1, seed)
    kept = set(smaller["train"]["doc_id"])
    assert len(kept) == small and kept < set(larger["train"]["doc_id"])
    assert len(smaller["train"]) == 2 * small and len(smaller["train_all"]) == 3 * small  # whole documents
    assert set(smaller["train_all"]["doc_id"]) == kept
    assert smaller["validation"] is fib["validation"] and smaller["test"] is fib["test"]
    assert curve.nested_documents(docs, seed) == curve.nested_documents(list(reversed(docs)), seed)  # order-free


def test_a_subset_size_outside_the_training_documents_is_refused():
    fib = {"train": pd.DataFrame({"doc_id": ["a", "b"]})}
    with pytest.raises(ValueError, match="between 1 and the 2 FIB training documents, got 3"):
        curve.fib_subset(fib, 3, 0)


def test_a_small_subset_gets_the_full_sets_budget_in_updates_and_is_evaluated_as_often():
    cfg = utils.get_config("cpu")  # 700 pairs / 16 = 44 updates per epoch: 8 epochs = 352, fib_only 22 = 968
    small = curve.fib_budget_config(cfg, n_pairs=70, full_pairs=700)  # 5 updates per epoch
    assert (small.epochs, small.fib_only_epochs) == (71, 194)  # 355 and 970 updates: at least the full budget
    assert small.epochs * 5 - 352 < 5 and small.fib_only_epochs * 5 - 968 < 5
    assert small.eval_every == cfg.eval_every == 44 and small.patience == cfg.patience
    assert curve.fib_budget_config(cfg, 700, 700) == cfg


def scores_frame(values: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    """Hand-made scores.csv rows: FIB test ROC AUC per (condition, size), one value per seed."""
    return pd.DataFrame([dict(condition=c, size=n, seed=s, split="test", metric="roc_auc", value=v)
                         for (c, n), vs in values.items() for s, v in enumerate(vs)])


def test_summary_gives_t_intervals_over_seeds_and_lifts_paired_by_seed():
    scores = scores_frame({("fib_only", 35): [0.60, 0.70, 0.80], ("usb_then_fib", 35): [0.70, 0.75, 0.90],
                           ("shuffled_usb_then_fib", 35): [0.60, 0.70, 0.80], ("zero_shot", 0): [0.6] * 3})
    summary = curve.curve_summary(scores, metrics=(("test", "roc_auc"),)).set_index(["condition", "size"])
    fib = summary.loc[("fib_only", 35)]
    # mean 0.7, sd 0.1, t(0.975, 2) = 4.303: 0.7 +- 4.303 x 0.1 / sqrt(3)
    assert fib["mean"] == pytest.approx(0.7) and fib["sd"] == pytest.approx(0.1)
    assert fib["ci_high"] - fib["mean"] == pytest.approx(4.3027 * 0.1 / math.sqrt(3), abs=1e-4)
    lift = summary.loc[("usb_then_fib - fib_only", 35)]  # per seed: 0.10, 0.05, 0.10
    assert lift["mean"] == pytest.approx(0.25 / 3) and lift["seeds"] == 3
    assert lift["sd"] == pytest.approx(np.std([0.10, 0.05, 0.10], ddof=1))
    zero = summary.loc[("zero_shot", 0)]  # every seed equal: no spread, not an undefined interval
    assert zero["ci_low"] == zero["ci_high"] == pytest.approx(0.6)


def test_one_seed_has_no_interval():
    summary = curve.curve_summary(scores_frame({("fib_only", 35): [0.7]}), metrics=(("test", "roc_auc"),))
    assert summary["seeds"].iloc[0] == 1 and summary[["ci_low", "ci_high"]].isna().all(axis=None)


@pytest.mark.parametrize("target, expected", [
    (0.55, 0.0),                      # reached with no document at all
    (0.65, 17.5),                     # halfway from 0 to 35, linear in size
    (0.75, math.sqrt(35 * 105)),      # halfway from 35 to 105, linear in log size
    (0.80, 105.0),
    (0.90, math.inf),                 # never reached
])
def test_equivalent_documents_reads_the_curve(target, expected):
    assert curve.equivalent_documents([0, 35, 105, 350], [0.6, 0.7, 0.8, 0.85], target) == pytest.approx(expected)


def test_equivalent_documents_takes_the_first_crossing_of_a_curve_that_dips():
    assert curve.equivalent_documents([0, 35, 105], [0.6, 0.8, 0.7], 0.7) == pytest.approx(17.5)


def test_usb_is_worth_the_documents_fib_only_needs_to_catch_up():
    scores = scores_frame({("zero_shot", 0): [0.6] * 4, ("fib_only", 35): [0.7] * 4, ("fib_only", 105): [0.8] * 4,
                           ("fib_only", 350): [0.85] * 4, ("usb_only", 0): [0.7] * 4,
                           ("usb_then_fib", 35): [0.78, 0.82, 0.80, 0.80], ("usb_then_fib", 105): [0.9] * 4,
                           ("usb_then_fib", 350): [0.9] * 4})
    worth = curve.documents_worth(scores, n_resamples=200).set_index(["condition", "size"])
    assert worth.loc[("usb_only", 0), "documents"] == pytest.approx(35)
    assert worth.loc[("usb_then_fib", 35), "documents"] == pytest.approx(105)  # mean 0.80 = fib_only at 105
    assert worth.loc[("usb_then_fib", 35), "worth"] == pytest.approx(70)
    low, high = worth.loc[("usb_then_fib", 35), ["documents_low", "documents_high"]]
    assert 35 < low < 105 < high < 350  # seeds resampled: 0.78 and 0.82 move the mean both ways
    assert math.isinf(worth.loc[("usb_then_fib", 105), "documents"])  # beyond the largest size


def test_a_stage_kept_at_its_last_update_ignores_its_validation_score(tmp_path):
    utils.seed_everything(0)
    tokenizer, model = utils.load_model(tiny_bert(tmp_path))
    cfg = small_config(batch_size=16, epochs=2, lr=2e-3, eval_every=5, patience=1)
    train, validation = synthetic_pairs(80, 1), synthetic_pairs(20, 2)
    # labels permuted: validation will not improve steadily, yet nothing stops and the last update is kept
    result = utils.train(model, tokenizer, utils.shuffle_labels(train, 0), {"validation": validation}, cfg,
                         keep="last")
    last = int(result.history["update"].iloc[-1])
    assert last == 20 and result.best_update == last  # 80 pairs / 16 = 5 updates x 2 epochs, no early stop
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(utils.ConfigError, match="keep must be 'best' or 'last'"):
        utils.train(model, tokenizer, train, {"validation": validation}, cfg, keep="first")
    assert all(torch_equal(kept[k], v) for k, v in model.state_dict().items())


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_the_shuffled_usb_stage_keeps_its_last_update_and_the_real_one_selects():
    cfg = utils.get_config("smoke")
    splits = {"train": synthetic_pairs(10, 0), "validation": synthetic_pairs(4, 1)}
    fib = {"validation_all": synthetic_pairs(4, 2)}
    tokenizer = utils.load_tokenizer()
    real = utils.out_of_domain_stage(tokenizer, "usb", splits, fib, cfg, shuffled=False)
    control = utils.out_of_domain_stage(tokenizer, "usb", splits, fib, cfg, shuffled=True)
    assert (real.keep, control.keep) == ("best", "last")
    assert not control.pairs["label"].equals(real.pairs["label"])


def test_a_kept_compact_base_restores_to_the_same_weights_every_time(tmp_path):
    from vf.model import restore_compact_weights, save_compact_weights
    tokenizer, model = utils.load_model(utils.PACKAGED_MINILM)
    utils.save_model(model, tokenizer, tmp_path / "built", utils.get_config("smoke"))
    kept = save_compact_weights(tmp_path / "built", tmp_path / "kept" / "nli_base_compact.safetensors")
    assert kept.stat().st_size < 0.4 * (tmp_path / "built" / "model.safetensors").stat().st_size  # 34 of 91 MB
    first, second = restore_compact_weights(kept, tmp_path / "a"), restore_compact_weights(kept, tmp_path / "b")
    assert utils.weights_digest(first) == utils.weights_digest(second)  # every run starts from the same weights
    _, restored = utils.load_model(first)
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert a.dtype == b.dtype and torch_allclose(a, b, name), name  # fp32 again, within the rounding


def test_keeping_a_base_writes_its_weights_and_the_record_of_its_run(tmp_path):
    cfg = utils.get_config("smoke", results_dir=str(tmp_path / "results"))
    tokenizer, model = utils.load_model(utils.PACKAGED_MINILM)
    utils.save_model(model, tokenizer, tmp_path / "built", cfg)
    record = utils.nli_results_folder(cfg, "nli_full")
    record.mkdir(parents=True)
    for name in ("validation.csv", "history.csv"):
        (record / name).write_text(name)
    (record / "timing.json").write_text('{"pairs": 7}')
    kept = utils.keep_nli_base(cfg, tmp_path / "built", "nli_full")
    assert kept == tmp_path / "results" / "nli_full" / "kept"
    assert utils.kept_weights(cfg, "nli_full").name == "nli_full_compact.safetensors"
    assert utils.kept_weights(cfg, "nli_full").exists()
    assert sorted(p.read_text() for p in (kept / "nli_build").iterdir()) == ["history.csv", "validation.csv",
                                                                              '{"pairs": 7}']
    (record / "timing.json").write_text('{"pairs": 8}')  # a new build replaces the record with the weights
    utils.keep_nli_base(cfg, tmp_path / "built", "nli_full")
    assert (kept / "nli_build" / "timing.json").read_text() == '{"pairs": 8}'
    (record / "timing.json").write_text('{"pairs": 8, "restored_from": "kept"}')
    with pytest.raises(utils.ConfigError, match="not built here"):
        utils.keep_nli_base(cfg, tmp_path / "built", "nli_full")


def test_the_repository_keeps_both_bases_so_make_all_restores_rather_than_trains():
    cfg = utils.get_config("cpu")
    for name, pairs in (("nli_base", 32197), ("nli_full", 76336)):
        assert utils.kept_weights(cfg, name).stat().st_size < 40e6  # small enough for git
        assert utils.read_json(utils.kept_nli_base(cfg, name) / "nli_build" / "timing.json")["pairs"] == pairs


def torch_allclose(a, b, name: str) -> bool:
    """fp16 rounding, or int8 per row for the word embeddings (half a step of the row's largest / 127)."""
    import torch
    a, b = a.float(), b.float()
    if name.endswith("word_embeddings.weight"):
        return bool(((a - b).abs() <= a.abs().amax(dim=1, keepdim=True) / 254 + 1e-7).all())
    return bool(torch.allclose(a, b, rtol=1e-3, atol=1e-4))


def test_cells_run_elsewhere_join_the_grid_and_another_bases_are_left_out(tmp_path):
    from experiments.curve import merge_cells
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    files = {name: here / f"{name}.csv" for name in ("scores", "test_scores", "timings")}
    pd.DataFrame({"cell": ["fib_only/35/0"], "value": [0.7], "base_digest": ["a"]}).to_csv(files["scores"], index=False)
    cells = ["fib_only/35/0", "fib_only/35/5", "fib_only/35/6"]
    bases = ["a", "a", "b"]  # seed 6 ran from another base
    for name in files:
        pd.DataFrame({"cell": cells, "value": [0.8, 0.75, 0.9], "base_digest": bases}).to_csv(there / f"{name}.csv",
                                                                                        index=False)
    merge_cells(files, there, "a")
    merged = pd.read_csv(files["scores"]).set_index("cell")["value"]
    assert merged.to_dict() == {"fib_only/35/0": 0.8, "fib_only/35/5": 0.75}  # replaced, joined; seed 6 left out
    assert len(pd.read_csv(files["timings"])) == 2
