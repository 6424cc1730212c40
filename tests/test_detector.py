"""HallucinationDetector: windows, aggregation, equivalence with plain scoring, input validation, pipeline."""
import json

import numpy as np
import pandas as pd
import pytest

import utils
import vf.detector
from conftest import synthetic_pairs, tiny_bert

SENTENCES = [f"Sentence number {w} talks about the {w} river." for w in
             "one two three four five six seven eight nine ten".split()]
DOCUMENT = " ".join(SENTENCES)


@pytest.fixture(scope="module")
def tokenizer():
    return utils.load_tokenizer()


@pytest.fixture
def detector(tmp_path):
    folder = tiny_bert(tmp_path / "model")
    (folder / "run_config.json").write_text(json.dumps({"max_length": 48, "evidence_sentences": None}))
    return utils.HallucinationDetector.from_pretrained(folder)


def test_windows_fit_follow_sentences_and_overlap(tokenizer):
    summary = "The river is long."
    windows = utils.document_windows(DOCUMENT, summary, tokenizer, max_length=48, overlap=1)
    assert len(windows) > 2
    for w in windows:
        assert len(tokenizer(w, summary)["input_ids"]) <= 48  # nothing is truncated
        assert w.startswith("Sentence number") and w.endswith("river.")  # whole sentences only
    for left, right in zip(windows, windows[1:]):  # neighbours share exactly one sentence
        assert utils.split_sentences(left)[-1] == utils.split_sentences(right)[0]
    covered = {s for w in windows for s in utils.split_sentences(w)}
    assert covered == set(SENTENCES)  # every sentence is seen
    no_overlap = utils.document_windows(DOCUMENT, summary, tokenizer, max_length=48, overlap=0)
    assert sum(len(utils.split_sentences(w)) for w in no_overlap) == len(SENTENCES)


def test_a_document_that_fits_is_one_unchanged_window(tokenizer):
    doc = "First line.\nSecond line."
    assert utils.document_windows(doc, "A summary.", tokenizer, max_length=64) == [doc]


def test_a_sentence_longer_than_the_window_is_its_own_window(tokenizer):
    long = "Word " + "word " * 80 + "end."
    windows = utils.document_windows(f"Short one. {long.strip()} Short two.", "Summary.", tokenizer, 48)
    assert windows == ["Short one.", long.strip(), "Short two."]


def fake_predict(model, tokenizer, df, *args, **kwargs):
    """Window scores from the text: 0.9 where the premise names 'one' or 'two', else 0.2; 0.7 for a claim with 'moon'."""
    return np.array([0.7 if "moon" in h else 0.9 if "one" in p or "two" in p else 0.2
                     for p, h in zip(df["premise"], df["hypothesis"])])


def test_chunked_score_is_the_lowest_window_score(detector, monkeypatch):
    monkeypatch.setattr(vf.detector, "predict_proba", fake_predict)
    chunked = detector.with_reading(mode="chunk", claims=False)
    p = chunked.score([DOCUMENT, "Sentence number one talks about the one river."], ["The river.", "The river."])
    assert p.tolist() == [0.2, 0.9]  # a later window supports the first; the short document has one window


def test_a_summary_is_as_unsupported_as_its_least_supported_sentence(detector, monkeypatch):
    monkeypatch.setattr(vf.detector, "predict_proba", fake_predict)
    claims = detector.with_reading(mode="chunk", claims=True, aggregate="max")
    summary = "The river is long. The moon is green."
    per_sentence = claims.score_claims([DOCUMENT], [summary])
    assert per_sentence["claim"].tolist() == ["The river is long.", "The moon is green."]
    assert per_sentence["p_inconsistent"].tolist() == [0.2, 0.7]
    assert claims.score([DOCUMENT], [summary]).tolist() == [0.7]
    assert claims.aggregate(per_sentence, 1).tolist() == [0.7]  # the summaries' scores from the sentences' rows
    assert claims.with_reading(aggregate="mean").score([DOCUMENT], [summary])[0] == pytest.approx(0.45)
    assert len(claims.with_reading(claims=False).score_claims([DOCUMENT], [summary])) == 1  # the whole summary


def test_a_reading_is_checked_when_it_is_made(detector):
    for bad, message in ((dict(aggregate="median"), "aggregate must be one of"), (dict(mode="split"), "mode must"),
                         (dict(mode="evidence", evidence_sentences=None), "needs evidence_sentences"),
                         (dict(max_length=8), "too small"), (dict(score_as="logits"), "score_as must")):
        with pytest.raises(utils.ConfigError, match=message):
            utils.Reading(**bad)
        with pytest.raises(utils.ConfigError, match=message):
            detector.with_reading(**bad)


def test_claims_and_truncation_equal_plain_scoring_for_one_sentence_summaries(detector):
    pairs = synthetic_pairs(6, seed=3)
    plain = utils.predict_proba(detector.model, detector.tokenizer, pairs, max_length=48)
    for reading in (dict(mode="chunk"), dict(mode="truncate"), dict(mode="chunk", claims=True)):
        scored = detector.with_reading(**reading).score(pairs["premise"], pairs["hypothesis"])
        np.testing.assert_allclose(scored, plain, rtol=1e-6)


def test_inputs_are_validated(detector):
    with pytest.raises(ValueError, match="2 documents but 1 summaries"):
        detector.score(["a.", "b."], ["c."])
    with pytest.raises(ValueError, match="summary 1 is empty"):
        detector.score(["a.", "b."], ["c.", "  "])
    with pytest.raises(ValueError, match="document 0 is empty or not a string"):
        detector.score([None], ["c."])


def test_a_mistyped_local_path_fails_at_once(tmp_path):
    import time
    start = time.time()
    with pytest.raises(utils.ConfigError, match="does not exist"):
        utils.HallucinationDetector.from_pretrained(tmp_path / "nope")
    with pytest.raises(utils.ConfigError, match="does not exist"):
        utils.load_model("tests/no_such_model")  # tests/ exists: a local path, not a hub id
    assert time.time() - start < 5


def test_the_reading_is_saved_with_the_model_and_loaded_back(detector, tmp_path):
    folder = tmp_path / "saved"
    detector.model.save_pretrained(folder)
    detector.tokenizer.save_pretrained(folder)
    utils.Reading(max_length=48, claims=True, aggregate="mean", mode="chunk").save(folder)
    loaded = utils.HallucinationDetector.from_pretrained(folder)
    assert loaded.reading == utils.Reading(max_length=48, claims=True, aggregate="mean", mode="chunk")
    assert utils.HallucinationDetector.from_pretrained(folder, aggregate="max").reading.aggregate == "max"


def test_saved_model_loads_in_a_transformers_pipeline(detector, tmp_path):
    from transformers import pipeline
    folder = tmp_path / "saved"
    detector.model.save_pretrained(folder)
    detector.tokenizer.save_pretrained(folder)
    classify = pipeline("text-classification", model=str(folder), device="cpu", top_k=None)
    out = classify({"text": "The cat sat on the mat.", "text_pair": "A cat sat."})
    scores = {d["label"]: d["score"] for d in (out[0] if isinstance(out[0], list) else out)}
    assert set(scores) == {"contradiction", "neutral", "entailment"}
    p = detector.score(["The cat sat on the mat."], ["A cat sat."])[0]
    assert p == pytest.approx(scores["contradiction"] / (scores["contradiction"] + scores["entailment"]), rel=1e-4)


def test_reading_comparison_reports_each_reading_and_the_lift(detector):
    pairs = synthetic_pairs(6, seed=4).assign(pair_id=range(12))
    table = utils.compare_readings(detector, pairs, pairs["pair_id"], {"truncate": dict(mode="truncate"),
                                                                       "chunk": dict(mode="chunk")}, 20)
    assert set(table["condition"]) == {"truncate", "chunk", "chunk - truncate"}
    # these documents fit in one window, so both readings score alike and the lift is exactly 0
    lift = table[table["condition"] == "chunk - truncate"]
    assert np.allclose(lift[["estimate", "ci_low", "ci_high"]].to_numpy(), 0.0, atol=1e-6)
    assert (table.loc[table["condition"] != "chunk - truncate", "ms_per_pair"].astype(float) > 0).all()
    assert (lift["ms_per_pair"] == "").all()


def test_the_default_reading_is_the_one_the_model_was_trained_with(detector):
    assert detector.reading == utils.Reading(max_length=48, mode="truncate", evidence_sentences=None, claims=False,
                                             batch_size=utils.Config().eval_batch_size)


def test_the_speed_table_times_every_reading_each_round_and_reports_the_median(detector):
    sets = {"one": pd.DataFrame({"premise": [DOCUMENT] * 3, "hypothesis": ["The river is long. It is wide."] * 3})}
    readings = {"claims": dict(claims=True), "whole": dict(claims=False)}
    table = utils.speed_table(detector, sets, readings, rounds=3).set_index("reading")
    assert table.loc["claims", "sentences"] == 6 and table.loc["whole", "sentences"] == 3  # 2 claims a summary
    assert (table["rounds"] == 3).all() and (table["summaries"] == 3).all()
    assert (table["summaries_per_s_slowest"] <= table["summaries_per_s"]).all()
    assert (table["summaries_per_s"] <= table["summaries_per_s_fastest"]).all()
    with pytest.raises(utils.ConfigError, match="rounds=0"):
        utils.speed_table(detector, sets, readings, rounds=0)
