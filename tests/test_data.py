"""The data layer: exact counts from the real files, splits, label mappings, USB fixture, bad input."""
import json
from pathlib import Path

import pandas as pd
import pytest

import utils

USB_FIXTURE = Path(__file__).parent / "fixtures" / "usb"


# ---------------------------------------------------------------- FIB on the real files

def test_fib_counts(real_data):
    raw = utils.load_fib_raw("xsum")
    pairs = utils.fib_pairs(raw)
    assert len(raw) == 3122
    assert len(pairs) == 3534
    assert (pairs["label"] == utils.CONSISTENT).sum() == 500
    assert (pairs["label"] == utils.INCONSISTENT).sum() == 3034
    assert pairs["doc_id"].nunique() == 500
    assert not pairs.duplicated(["premise", "hypothesis"]).any()
    assert (pairs["hypothesis"] == pairs["hypothesis"].str.strip()).all()


def test_fib_label_mapping_matches_raw_records(real_data):
    pairs = utils.load_fib().set_index(["doc_id", "hypothesis"])["label"]
    path = real_data / "fib" / "xsum" / "binary_choice-using_bart-base_distractors.jsonl"
    for line in path.read_text().splitlines()[:20]:
        record = json.loads(line)
        for i, choice in enumerate(record["list_choices"]):
            expected = utils.CONSISTENT if i == record["lbl"] else utils.INCONSISTENT
            assert pairs[(record["id"], choice.strip())] == expected


def test_fib_splits_sizes_balance_and_no_leakage(real_data):
    splits = utils.fib_splits()
    assert {k: len(v) for k, v in splits.items() if not k.endswith("_all")} == \
        {"train": 700, "validation": 150, "test": 150}
    assert {k: v["doc_id"].nunique() for k, v in splits.items()} == \
        {"train": 350, "train_all": 350, "validation": 75, "validation_all": 75, "test": 75, "test_all": 75}
    assert sum(len(splits[f"{k}_all"]) for k in ("train", "validation", "test")) == 3534
    for name in ("train", "validation", "test"):
        counts = splits[name]["label"].value_counts()
        assert counts[utils.CONSISTENT] == counts[utils.INCONSISTENT]
        assert set(splits[name]["pair_id"]) <= set(splits[f"{name}_all"]["pair_id"])
    utils.assert_no_document_leakage(splits)
    docs = [set(splits[k]["doc_id"]) for k in ("train_all", "validation_all", "test_all")]
    assert not (docs[0] & docs[1] or docs[0] & docs[2] or docs[1] & docs[2])


def test_fib_splits_are_deterministic(real_data):
    a, b = utils.fib_splits(), utils.fib_splits()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])


def test_fib_other_keeps_only_allowed_documents(real_data):
    splits = utils.fib_splits()
    other = utils.load_fib_other(splits["train"]["doc_id"])
    assert set(other["doc_id"]) <= set(splits["train"]["doc_id"])
    assert not set(other["doc_id"]) & set(splits["test_all"]["doc_id"])
    assert (other["label"] == utils.INCONSISTENT).sum() > 1000


def test_leakage_check_catches_a_shared_document():
    a = pd.DataFrame({"doc_id": ["d1", "d2"]})
    b = pd.DataFrame({"doc_id": ["d2"]})
    with pytest.raises(utils.DataError, match="d2"):
        utils.assert_no_document_leakage({"train": a, "test": b})


# ---------------------------------------------------------------- SummEdits on the real files

def test_summedits_counts_and_labels(real_data):
    pairs = utils.load_summedits()
    assert len(pairs) == 3862
    assert pairs["doc_id"].nunique() == 137
    assert pairs["domain"].nunique() == 7
    raw_consistent = sum(int(item["label"]) == 1 for path in (real_data / "summedits").glob("summedits_*.json")
                         for item in json.loads(path.read_text()))
    assert (pairs["label"] == utils.CONSISTENT).sum() == raw_consistent
    assert set(pairs["label"]) == {utils.CONSISTENT, utils.INCONSISTENT}


def test_summedits_splits_by_document_and_domain(real_data):
    splits = utils.summedits_splits()
    assert len(splits["train"]) + len(splits["validation"]) == 3862
    utils.assert_no_document_leakage(splits)
    assert set(splits["validation"]["domain"]) == set(splits["train"]["domain"])  # stratified by domain
    assert splits["validation"]["doc_id"].nunique() == round(0.2 * 137)


# ---------------------------------------------------------------- USB on a fixture in its exact schema

def test_usb_fixture_mapping():
    pairs = utils.load_usb(USB_FIXTURE, online=False)
    assert len(pairs) == 8
    ada = pairs[pairs["doc_id"] == "wiki_ada"].set_index("hypothesis")["label"]
    assert ada["Ada Lovelace was born in Paris in 1815."] == utils.INCONSISTENT  # USB label 1: before the edit
    assert ada["Ada Lovelace was born in London in 1815."] == utils.CONSISTENT  # USB label 0: after the edit
    nile = pairs[pairs["doc_id"] == "wiki_nile"]["premise"].iloc[0]
    assert nile == "The Nile flows north. It empties into the Mediterranean Sea."


def test_usb_splits_keep_the_authors_splits():
    splits = utils.usb_splits(utils.load_usb(USB_FIXTURE, online=False))
    assert {k: len(v) for k, v in splits.items()} == {"train": 4, "validation": 2, "test": 2}


def test_usb_found_through_the_environment(monkeypatch):
    monkeypatch.setenv("VF_USB_DIR", str(USB_FIXTURE))
    assert utils.usb_available()
    assert len(utils.load_usb(online=False)) == 8


def test_usb_absent_offline_says_what_to_set(data_root, monkeypatch):
    monkeypatch.delenv("VF_USB_DIR", raising=False)
    assert not utils.usb_available()
    with pytest.raises(utils.DataError, match="VF_USB_DIR"):
        utils.load_usb(online=False)


# ---------------------------------------------------------------- bad input

def _write_fib(root, lines):
    folder = root / "fib" / "xsum"
    folder.mkdir(parents=True)
    path = folder / "binary_choice-using_toy_distractors.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD_FIB = json.dumps({"id": "1", "input": "A cat sat.", "correct_choice": "A cat sat.",
                       "list_choices": ["A cat sat.", "A dog sat."], "lbl": 0})


def test_missing_data_folder_names_path_and_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("VF_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(utils.DataError, match=r"VF_DATA_DIR=.*nowhere"):
        utils.load_fib()


def test_missing_fib_folder_names_path(data_root):
    with pytest.raises(utils.DataError, match=r"fib/xsum.*VF_DATA_DIR"):
        utils.load_fib()


def test_malformed_json_names_file_and_line(data_root):
    path = _write_fib(data_root, [GOOD_FIB, GOOD_FIB, '{"id": "2", "input": '])
    with pytest.raises(utils.DataError, match=rf"{path}:3: malformed JSON"):
        utils.load_fib()


def test_missing_field_is_named(data_root):
    record = json.loads(GOOD_FIB)
    del record["list_choices"]
    _write_fib(data_root, [GOOD_FIB, json.dumps(record)])
    with pytest.raises(utils.DataError, match=r":2: missing field 'list_choices'"):
        utils.load_fib()


def test_fib_label_outside_its_set(data_root):
    _write_fib(data_root, [GOOD_FIB.replace('"lbl": 0', '"lbl": 5')])
    with pytest.raises(utils.DataError, match=r":1: label 5 is outside \[0, 1\]"):
        utils.load_fib()


def test_empty_summary_is_rejected(data_root):
    _write_fib(data_root, [GOOD_FIB.replace('"A dog sat."', '"  "')])
    with pytest.raises(utils.DataError, match=r":1: empty hypothesis"):
        utils.load_fib()


def test_summedits_label_outside_its_set(data_root):
    (data_root / "summedits").mkdir()
    (data_root / "summedits" / "summedits_toy.json").write_text(json.dumps(
        [{"id": "a", "doc": "d", "summary": "s", "label": "1"}, {"id": "b", "doc": "d", "summary": "t", "label": 3}]))
    with pytest.raises(utils.DataError, match=r"item 1 \(id='b'\): label 3 is outside \[0, 1\]"):
        utils.load_summedits()


def test_usb_label_outside_its_set_and_missing_file(tmp_path):
    folder = tmp_path / "task_datasets" / "all" / "factuality_classification"
    folder.mkdir(parents=True)
    row = {"id": "w", "summ_idx": 0, "input_lines": ["x."], "summary_sent": "y.", "label": 2}
    (folder / "train.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(utils.DataError, match=r"train.jsonl:1: label 2 is outside \[0, 1\]"):
        utils.load_usb(tmp_path, online=False)
    (folder / "train.jsonl").write_text(json.dumps({**row, "label": 0}) + "\n")
    with pytest.raises(utils.DataError, match=r"USB validation file not found: .*validation.jsonl"):
        utils.load_usb(tmp_path, online=False)


def test_save_splits_keeps_a_changed_previous_version(tmp_path):
    first = {"train": pd.DataFrame({"a": [1]})}
    utils.save_splits(first, "toy", tmp_path)
    utils.save_splits({"train": pd.DataFrame({"a": [2]})}, "toy", tmp_path)
    assert (tmp_path / "toy_train.jsonl.previous").read_text().strip() == '{"a":1}'
    assert (tmp_path / "toy_train.jsonl").read_text().strip() == '{"a":2}'


# ---------------------------------------------------------------- SICK

def test_sick_counts_and_three_way_labels(real_data):
    pairs = utils.load_sick()
    assert len(pairs) == 9840
    assert pairs["label"].value_counts().to_dict() == {utils.NEUTRAL: 5595, utils.CONSISTENT: 2821,
                                                       utils.INCONSISTENT: 1424}
    splits = utils.sick_splits(pairs)
    assert len(splits["train"]) == 4439
    assert utils.NEUTRAL not in set(splits["validation"]["label"])  # ROC AUC needs a two-way validation set


def test_sick_label_outside_its_set(data_root):
    (data_root / "sick").mkdir()
    header = "pair_ID\tsentence_A\tsentence_B\tentailment_label\tSemEval_set"
    (data_root / "sick" / "SICK.txt").write_text(f"{header}\n1\tA man.\tA person.\tENTAILMENT\tTRAIN\n"
                                                 f"2\tA cat.\tA dog.\tMAYBE\tTRAIN\n")
    with pytest.raises(utils.DataError, match=r"SICK.txt:3: label 'MAYBE' is outside"):
        utils.load_sick()


def test_split_sentences_at_line_breaks_and_sentence_ends():
    text = 'He said "No." Then he left.\nA 3.5% rise followed! 2020 was worse.'
    assert utils.split_sentences(text) == ['He said "No."', "Then he left.", "A 3.5% rise followed!",
                                           "2020 was worse."]


def test_select_evidence_keeps_the_closest_sentences_in_document_order():
    doc = "The match was played in Leeds.\nRain fell all day.\nThe striker scored twice for Leeds United."
    df = pd.DataFrame({"premise": [doc, "One sentence only."],
                       "hypothesis": ["Leeds United's striker scored twice.", "Anything."]})
    out = utils.select_evidence(df, 2)
    assert out["premise"].tolist() == ["The match was played in Leeds. The striker scored twice for Leeds United.",
                                       "One sentence only."]
    assert df["premise"].iloc[0] == doc  # the input frame is left alone


def test_shuffle_labels_keeps_texts_and_balance_and_breaks_the_pairing():
    df = pd.DataFrame({"premise": [f"doc {i}" for i in range(200)], "hypothesis": [f"sum {i}" for i in range(200)],
                       "label": [utils.CONSISTENT] * 120 + [utils.INCONSISTENT] * 80})
    shuffled = utils.shuffle_labels(df, seed=0)
    assert shuffled[["premise", "hypothesis"]].equals(df[["premise", "hypothesis"]])
    assert shuffled["label"].value_counts().equals(df["label"].value_counts())
    assert (shuffled["label"] != df["label"]).sum() > 40  # a permutation, not a no-op
    assert shuffled["label"].equals(utils.shuffle_labels(df, seed=0)["label"])  # deterministic per seed
    assert df["label"].iloc[0] == utils.CONSISTENT and df["label"].iloc[-1] == utils.INCONSISTENT  # input untouched
