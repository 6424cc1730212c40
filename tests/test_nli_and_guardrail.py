"""The NLI sets and the general detector's data: exact counts from the real files, label mapping, splits by
premise, the binary loss, the shortcut set, CNN/DM's sentences, thresholds and the per-source table."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

import utils
from vf.nli import STANDARD_SETS
from conftest import synthetic_pairs

# ---------------------------------------------------------------- the NLI sets on the real files


@pytest.fixture(scope="module")
def nli():
    from conftest import SHARED_DATA
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    import os
    os.environ.setdefault("VF_DATA_DIR", str(SHARED_DATA))
    return utils.load_nli()


def test_nli_counts_and_label_mapping(nli):
    # 74,053 rows; 384 exact repeats and the 51 copies of pairs labelled two ways dropped (and counted)
    assert len(nli) == 73646
    counts = nli.groupby(["source", "label"]).size()
    assert counts[("snli", utils.NEUTRAL)] == 6454 and counts[("anli", utils.INCONSISTENT)] == 2124
    assert set(nli.loc[nli["source"] == "mnli", "label"]) == {utils.CONSISTENT, utils.NOT_ENTAILED}
    assert set(nli.loc[nli["source"] == "mctest_nli", "label"]) == {utils.CONSISTENT, utils.NOT_ENTAILED}
    assert not nli.duplicated(["source", "premise", "hypothesis"]).any()


def test_nli_validation_is_held_out_by_premise(nli):
    splits = utils.nli_splits(nli)
    assert {k: len(v) for k, v in splits.items()} == {"train": 70752, "validation": 2894}
    assert not set(splits["train"]["premise"]) & set(splits["validation"]["premise"])
    assert set(splits["validation"]["source"]) == set(STANDARD_SETS)  # every set it read is represented


def test_nli_training_pairs_cap_each_set_and_keep_only_the_configured_sets(nli):
    splits = utils.nli_splits(nli)
    cfg = utils.get_config("cpu", nli_sets=("rte", "anli"), nli_max_pairs_per_set=1000)
    pairs = utils.nli_training_pairs(splits, cfg)
    assert pairs.groupby("source").size().to_dict() == {"anli": 1000, "rte": 1000}
    with pytest.raises(utils.ConfigError, match="unknown set 'multinli'"):
        utils.nli_training_pairs(splits, utils.get_config("cpu", nli_sets=("multinli",)))


def test_a_draw_from_pairs_read_once_equals_a_fresh_draw(nli):
    from vf.stages import nli_data
    with_claims = pd.concat([nli, utils.load_nli(("climate_fever",))], ignore_index=True)
    fresh, shared = nli_data(()), nli_data((), loaded=with_claims)
    for split in ("train", "validation"):
        pd.testing.assert_frame_equal(fresh[split].reset_index(drop=True), shared[split].reset_index(drop=True))
    assert len(nli_data(("climate_fever",), loaded=with_claims)["validation"]) > len(fresh["validation"])
    with pytest.raises(utils.ConfigError, match="lack the set 'climate_fever'"):
        nli_data(("climate_fever",), loaded=nli)


def test_a_label_that_contradicts_label_orig_names_file_and_line(data_root):
    folder = data_root / "nli" / "rte"
    folder.mkdir(parents=True)
    rows = [dict(premise="A cat sat.", hypothesis="A cat sat.", label=0, label_orig="entailment"),
            dict(premise="A cat sat.", hypothesis="A dog ran.", label=0, label_orig="not_entailment")]
    (folder / "dev.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(utils.DataError, match=r"dev.jsonl:2: label 0 contradicts label_orig 'not_entailment'"):
        utils.load_nli(("rte",))


# ---------------------------------------------------------------- the loss for binary and 3-way labels


def test_a_binary_not_entailed_label_scores_neutral_plus_contradiction():
    logits = torch.tensor([[1.0, 0.5, -1.0], [0.2, 0.3, 2.0]])  # (contradiction, neutral, entailment)
    p = torch.softmax(logits, dim=-1)
    labels = torch.tensor([3, 2])  # NOT_ENTAILED -> id 3 (past the head), then entailment
    loss = utils.pair_loss(logits, labels, not_entailed=[0, 1])
    expected = -(torch.log(p[0, 0] + p[0, 1]) + torch.log(p[1, 2])) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    plain = torch.tensor([0, 2])  # without the merged label: ordinary cross-entropy
    assert utils.pair_loss(logits, plain).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, plain).item())


# ---------------------------------------------------------------- the detector's data


def test_cnn_dm_summaries_become_one_sentence_a_line(real_data):
    cnn = utils.load_fib_cnn_dm()
    assert len(cnn) == 547 and (cnn["label"] == utils.CONSISTENT).sum() == 96
    assert not cnn["hypothesis"].str.contains("<t>").any()
    sentences = cnn["hypothesis"].map(lambda s: len(utils.split_sentences(s)))
    assert sentences.min() >= 1 and sentences.median() >= 3
    # Penn Treebank escapes undone on both sides: 36 summaries wrote "-lrb-" where documents have "("
    text = pd.concat([cnn["premise"], cnn["hypothesis"]])
    assert not text.str.contains(r"-lrb-|-rrb-|``|''", regex=True).any()
    copied = cnn[cnn["hypothesis"].str.contains("( cnn )", regex=False)]
    first = copied["hypothesis"].str.split("\n").str[0]
    assert len(copied) > 36 and sum(s in d for s, d in zip(first, copied["premise"])) >= 0.9 * len(copied)


@pytest.mark.parametrize("text, expected", [("-lrb- cnn -rrb- said", "( cnn ) said"), ("``yes''", '"yes"'),
                                            ("-lsb-1-rsb- -lcb-x-rcb-", "[1] {x}"), ("plain", "plain")])
def test_ptb_escapes_are_undone(text, expected):
    from vf.sources import undo_ptb_escapes
    assert undo_ptb_escapes(text) == expected


def test_the_shortcut_set_has_the_held_out_documents_with_a_model_summary(real_data):
    fib = utils.fib_splits()
    frame = utils.shortcut_frame(fib)
    assert frame["kind"].value_counts().to_dict() == {"inconsistent": 273, "model_consistent": 106, "reference": 56}
    assert frame["doc_id"].nunique() == 56
    held_out = set(fib["validation_all"]["doc_id"]) | set(fib["test_all"]["doc_id"])
    assert set(frame["doc_id"]) <= held_out  # never a training document


def small_sources(fib, cfg):
    """The mix's sources with USB and NLI replaced by two synthetic documents each."""
    src = utils.MixSources(fib, cfg)
    src.usb = {"train": synthetic_pairs(2, seed=1).assign(doc_id="usb")}
    src.nli = {"train": synthetic_pairs(2, seed=2).assign(source="rte", doc_id="nli")}
    return src


def mix_of(fib, **settings):
    cfg = utils.get_config("cpu", detector_nli_pairs=4, **settings)
    return utils.build_mix(utils.DETECTOR_MIX, small_sources(fib, cfg), cfg)


def test_the_detector_mix_uses_training_documents_only(real_data):
    fib = utils.fib_splits()
    mix = mix_of(fib, detector_fib_other_pairs=None)
    fib_rows = mix[mix["source"].str.startswith("fib")]
    assert set(fib_rows["doc_id"]) <= set(fib["train"]["doc_id"])
    assert (mix.loc[mix["source"] == "fib_model_consistent", "label"] == utils.CONSISTENT).all()
    once = mix.drop_duplicates(["premise", "hypothesis", "source"])
    assert not once.duplicated(["premise", "hypothesis"]).any()  # no pair in two parts
    assert len(mix) - len(once) == 700  # FIB's weight 2: each of its 700 pairs twice, nothing else repeated
    counts = mix["source"].value_counts()
    assert counts["fib_other"] == 1661 and counts["fib"] == 1400 and counts["fib_model_consistent"] == 255
    assert counts["usb"] == 4 and counts["nli"] == 4  # all of the small sources: under their caps
    capped = mix_of(fib)  # the default: 350
    other = capped[capped["source"] == "fib_other"]
    assert len(other) == 350 and (other["label"] == utils.INCONSISTENT).all()
    assert set(other["hypothesis"]) <= set(mix.loc[mix["source"] == "fib_other", "hypothesis"])
    assert capped["source"].value_counts().drop("fib_other").to_dict() == counts.drop("fib_other").to_dict()
    edited = mix_of(fib, detector_synthetic_pairs=40)
    synthetic = edited[edited["source"] == "synthetic"]
    assert len(synthetic) == 40 and (synthetic["label"] == utils.INCONSISTENT).all()
    assert set(synthetic["doc_id"]) <= set(fib["train"]["doc_id"]) | {"usb"}  # training documents only
    assert not set(synthetic["hypothesis"]) & set(edited.loc[edited["label"] == utils.CONSISTENT, "hypothesis"])
    assert not edited.drop_duplicates(["premise", "hypothesis", "source"]).duplicated(["premise", "hypothesis"]).any()
    others = edited[edited["source"] != "synthetic"]
    assert others["source"].value_counts().to_dict() == capped["source"].value_counts().to_dict()


def test_a_held_out_summedits_domain_is_never_trained_or_selected_on(real_data):
    summedits = utils.load_summedits()
    splits = utils.summedits_held_out(summedits, "podcast")
    assert len(splits["test"]) == 500 and set(splits["test"]["domain"]) == {"podcast"}
    assert len(splits["train"]) + len(splits["validation"]) == 3862 - 500
    assert "podcast" not in set(splits["train"]["domain"]) | set(splits["validation"]["domain"])
    utils.assert_no_document_leakage(splits)
    assert set(splits["validation"]["domain"]) == set(utils.SUMMEDITS_DOMAINS) - {"podcast"}
    every = utils.summedits_held_out(summedits, None)
    assert every["test"].empty and len(every["train"]) + len(every["validation"]) == 3862
    with pytest.raises(utils.ConfigError, match="unknown SummEdits domain 'news'"):
        utils.summedits_held_out(summedits, "news")


def test_the_summedits_stage_adds_the_replay_and_selects_on_validation_only(real_data):
    summedits = utils.summedits_held_out(utils.load_summedits(), "samsum")
    replay = synthetic_pairs(3, seed=4).assign(source="fib")
    fib = {"validation_all": synthetic_pairs(2, seed=5)}
    stage = utils.summedits_stage(utils.load_tokenizer(), summedits, replay, fib, utils.get_config("cpu"))
    assert len(stage.pairs) == len(summedits["train"]) + len(replay)
    assert stage.pairs["source"].value_counts()["fib"] == len(replay)
    assert set(stage.evaluator.sets) == {"summedits_validation", "fib_validation_all"}
    assert stage.evaluator.select_metric == "mean/roc_auc" and stage.cfg.patience is None


def test_detector_settings_leave_the_hash_of_fib_runs_alone():
    cfg = utils.get_config("cpu")
    assert utils.config_hash(cfg) == utils.config_hash(utils.get_config("cpu", detector_replay_pairs=5,
                                                                        detector_summedits=True))
    assert utils.config_hash(cfg) == utils.config_hash(dataclasses.asdict(cfg))  # as configs.jsonl stores it


def test_the_shortcut_on_validation_alone_has_only_validation_documents(real_data):
    fib = utils.fib_splits()
    frame = utils.shortcut_frame(fib, splits=("validation_all",))
    assert frame["kind"].value_counts().to_dict() == {"inconsistent": 125, "model_consistent": 53, "reference": 26}
    assert set(frame["doc_id"]) <= set(fib["validation_all"]["doc_id"])


def test_the_shortcut_table_replaces_a_models_row_and_fits_a_page(tmp_path, capsys):
    row = dict(model="m", style_auc=0.5, mean_reference=0.2, mean_model_consistent=0.3, mean_inconsistent=0.8,
               n_reference=2, n_model_consistent=3, n_inconsistent=4, documents=2)
    path = tmp_path / "shortcut.csv"
    for model in ("detector", "fib_only", "nli_base (zero-shot)"):  # recorded out of the notebooks' order
        utils.shortcut_table(utils.Config(), {**row, "model": model}, path)
    table = utils.shortcut_table(utils.Config(), {**row, "model": "usb_then_fib", "style_auc": 0.6}, path)
    table = utils.shortcut_table(utils.Config(), {**row, "model": "usb_then_fib", "style_auc": 0.7}, path)
    # the models introduced up to this one, in the notebooks' order; not the detector, which comes later
    assert table.index.tolist() == ["nli_base (zero-shot)", "fib_only", "usb_then_fib"]
    assert table.loc["usb_then_fib", "style_auc"] == 0.7
    assert table.columns.tolist() == ["style_auc", "reference", "model consistent", "inconsistent"]
    assert "2 held-out FIB documents: 2 references, 3 consistent model summaries" in capsys.readouterr().out
    assert len(pd.read_csv(path)) == 4  # every model and every column kept in the file
    assert utils.shortcut_table(utils.Config(), {**row, "model": "other"}, path).index.tolist() == ["other"]


def test_style_auc_by_hand():
    frame = pd.DataFrame({"kind": ["reference", "reference", "model_consistent", "model_consistent", "inconsistent"],
                          "doc_id": ["a", "b", "a", "b", "a"]})
    row = utils.shortcut_row(frame, np.array([0.1, 0.4, 0.3, 0.5, 0.9]), "m")
    # model summaries (0.3, 0.5) against references (0.1, 0.4): 3 of 4 comparisons won
    assert row["style_auc"] == pytest.approx(0.75) and row["mean_inconsistent"] == pytest.approx(0.9)
    assert (row["n_reference"], row["n_model_consistent"], row["documents"]) == (2, 2, 2)


def test_thresholds_for_precision_and_false_positive_rate_by_hand():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=bool)
    p = np.array([0.1, 0.2, 0.3, 0.8, 0.4, 0.7, 0.85, 0.9])
    t = utils.choose_thresholds(y, p, precision_targets=(0.75, 1.0), fpr_target=0.25)
    assert t["precision_1"] == pytest.approx(0.85)  # 0.85 and 0.9 flagged, both inconsistent
    assert t["precision_0.75"] == pytest.approx(0.4)  # from 0.4: 4 of 5 flagged are inconsistent
    assert np.mean(p[~y] >= t["fpr_0.25"]) <= 0.25 and t["fpr_0.25"] <= 0.8  # one consistent (0.8) may pass
    assert np.isnan(utils.choose_thresholds(y, 1 - p, precision_targets=(1.0,))["precision_1"])


def test_the_per_source_table_pools_and_splits_by_domain():
    from vf.judge import MIN_PER_CLASS as n
    # a: every inconsistent summary (0.9) above every consistent one (0.1); b: all scored 0.6
    df = pd.DataFrame({"label": [0] * n + [2] * n + [0] * n + [2] * n, "domain": ["a"] * 2 * n + ["b"] * 2 * n})
    p = np.r_[np.full(n, 0.9), np.full(n, 0.1), np.full(2 * n, 0.6)]
    table = utils.source_table({"s": df}, {"s": p}, threshold=0.5).set_index("domain")
    assert table.loc["a", "roc_auc"] == 1.0 and table.loc["b", "roc_auc"] == 0.5
    assert table.loc["pooled", "n"] == 4 * n and table.loc["pooled", "n_inconsistent"] == 2 * n
    assert table.loc["a", "balanced_accuracy"] == 1.0 and table.loc["b", "balanced_accuracy"] == 0.5
    # c: one class only; d: one inconsistent summary among many, whose rank alone would be its "ROC AUC"
    few = pd.DataFrame({"label": [2, 2] + [0] + [2] * (n + 2), "domain": ["c", "c"] + ["d"] * (n + 3)})
    table = utils.source_table({"s": pd.concat([df, few], ignore_index=True)},
                               {"s": np.r_[p, 0.4, 0.7, 0.9, np.linspace(0, 0.8, n + 2)]}, threshold=0.5)
    table = table.set_index("domain")
    assert table.loc["c", ["n", "n_inconsistent"]].tolist() == [2, 0]  # counted, and every metric undefined
    assert table.loc["d", ["n", "n_inconsistent"]].tolist() == [n + 3, 1]
    for domain in ("c", "d"):
        assert table.loc[domain, ["roc_auc", "pr_auc", "balanced_accuracy", "precision", "recall"]].isna().all()
    assert table.loc["pooled", "n"] == 4 * n + n + 5 and table.loc["a", "roc_auc"] == 1.0


def test_a_new_source_is_one_part_and_weights_repeat_or_thin_its_pairs():
    fib = {"train": synthetic_pairs(10, seed=0), "validation_all": synthetic_pairs(3, seed=3)}
    cfg = utils.get_config("cpu", detector_nli_pairs=4)
    src = small_sources(fib, cfg)
    parts = [utils.Part("fib", lambda s, c, b: s.fib["train"], validation=lambda s: s.fib["validation_all"]),
             utils.Part("claims", lambda s, c, b: synthetic_pairs(8, seed=5).assign(doc_id="c"), pairs=10,
                        weight=1.5)]
    mix = utils.build_mix(parts, src, cfg)
    assert mix["source"].value_counts().to_dict() == {"fib": 20, "claims": 15}  # 16 capped at 10, then x 1.5
    claims = mix[mix["source"] == "claims"]
    assert sorted(claims["label"].value_counts()) == [7, 8]  # 5 of the 10 drawn again, by label
    assert mix.equals(utils.build_mix(parts, src, cfg))  # deterministic
    assert list(utils.mix_validation(fib, cfg, parts)) == ["fib_validation_all"]
    thinned = utils.weighted(synthetic_pairs(10, seed=0), 0.5)
    assert len(thinned) == 10 and thinned["label"].value_counts().nunique() == 1  # drawn by label
    with pytest.raises(utils.ConfigError, match="names a part twice"):
        utils.build_mix(parts + parts[:1], src, cfg)
    with pytest.raises(utils.ConfigError, match="weight must be >= 0"):
        utils.weighted(synthetic_pairs(2, 0), -1)


def test_claim_parts_train_on_their_train_split_and_a_family_is_held_out_whole(real_data):
    fib = utils.fib_splits()
    cfg = utils.get_config("cpu", detector_nli_pairs=4)
    src = small_sources(fib, cfg)
    mix = utils.build_mix(utils.CLAIM_PARTS, src, cfg)
    counts = mix["source"].value_counts()
    assert counts.max() <= 2000 and set(counts.index) == {"factcheck_gpt", "lfqa", "begin", "faithdial_audit"}
    for name in counts.index:  # training documents (groups) only
        splits = src.claims(name)
        assert set(mix.loc[mix["source"] == name, "doc_id"]) <= set(splits["train"]["doc_id"])
    trained, selected = utils.leave_family_out(utils.DETECTOR_MIX, "dialogue")
    assert [p.name for p in selected] == ["begin", "faithdial_audit"]
    assert not {p.family for p in trained} & {"dialogue"} and len(trained) + 2 == len(utils.DETECTOR_MIX)
    frames = utils.mix_validation(fib, cfg, selected)
    assert list(frames) == ["begin_validation", "faithdial_audit_validation"]
    assert all(len(f) <= 600 for f in frames.values())
    with pytest.raises(utils.ConfigError, match="no part of family 'climate'"):
        utils.leave_family_out(utils.DETECTOR_MIX, "climate")
    # the config's left-out families: trained on the rest, watched on theirs
    trained, watched = utils.recipe_parts(utils.get_config("cpu", detector_leave_out=("web", "dialogue")))
    assert [p.name for p in watched] == ["factcheck_gpt", "begin", "faithdial_audit"]
    assert {p.family for p in trained} == {"news", "wikipedia", "nli", "lfqa"}
    with pytest.raises(utils.ConfigError, match="no part of family 'climate'"):
        utils.recipe_parts(utils.get_config("cpu", detector_leave_out=("climate",)))


def test_the_decision_table_states_each_rule_with_its_numbers():
    levers = {"base": dict(full=0.84, kept=0.82, chosen="nli-full"),
              "families": {"web": dict(others_gain_when_left_out=-0.009, fib_cost_of_keeping=0.02, kept=False)},
              "selection": dict(mean_shortfall_of_kept=0.017, mean_shortfall_of_last=0.014, chosen="last")}
    readings = dict(mean_over_families={"windows (claims, max)": 0.813, "evidence (claims, max)": 0.807},
                    summaries_per_s={"windows (claims, max)": 15.3, "evidence (claims, max)": 52.3},
                    chosen_mode="evidence")
    table = utils.decision_table(levers, readings)
    assert table["decided"].to_dict() == {"base": "nli-full", "family web": "left out", "update kept": "last",
                                          "reading": "evidence"}
    assert table.loc["family web", "measured"] == "others -0.009 without it; FIB cost +0.020"
    assert table.loc["reading", "measured"] == "windows 0.813 (15/s), evidence 0.807 (52/s)"
    assert list(utils.decision_table({}).index) == []  # nothing decided yet: no rows
