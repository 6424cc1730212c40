"""HallucinationDetector: windows, aggregation, equivalence with plain scoring, input validation, pipeline."""
import json

import numpy as np
import pytest

import utils
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


def test_chunked_score_is_the_lowest_window_score(detector, monkeypatch):
    # fake window scores: the pair's score is its best-supported (lowest P(inconsistent)) window
    def fake_predict(model, tokenizer, df, *args, **kwargs):
        return np.array([0.9 if "one" in p or "two" in p else 0.2 for p in df["premise"]])
    monkeypatch.setattr(utils, "predict_proba", fake_predict)
    p = detector.score([DOCUMENT, "Sentence number one talks about the one river."], ["The river.", "The river."])
    assert p.tolist() == [0.2, 0.9]  # a later window supports the first; the short document has one window
    assert detector.score([DOCUMENT], ["The river."], aggregate="mean")[0] == pytest.approx(
        np.mean([0.9 if "one" in w or "two" in w else 0.2
                 for w in utils.document_windows(DOCUMENT, "The river.", detector.tokenizer, 48)]))


def test_chunking_equals_plain_scoring_when_documents_fit(detector):
    pairs = synthetic_pairs(6, seed=3)
    chunked = detector.score(pairs["premise"], pairs["hypothesis"])
    plain = utils.predict_proba(detector.model, detector.tokenizer, pairs, max_length=48)
    np.testing.assert_allclose(chunked, plain, rtol=1e-6)
    truncating = utils.HallucinationDetector(detector.model, detector.tokenizer, 48, long_documents="truncate")
    np.testing.assert_allclose(truncating.score(pairs["premise"], pairs["hypothesis"]), plain, rtol=1e-6)


def test_inputs_are_validated(detector):
    with pytest.raises(ValueError, match="2 documents but 1 summaries"):
        detector.score(["a.", "b."], ["c."])
    with pytest.raises(ValueError, match="summary 1 is empty"):
        detector.score(["a.", "b."], ["c.", "  "])
    with pytest.raises(ValueError, match="document 0 is empty or not a string"):
        detector.score([None], ["c."])
    with pytest.raises(ValueError, match="long_documents"):
        utils.HallucinationDetector(detector.model, detector.tokenizer, long_documents="split")


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


def test_long_document_comparison_reports_each_mode_and_the_lift(detector):
    pairs = synthetic_pairs(6, seed=4).assign(pair_id=range(12))
    table = utils.compare_long_document_modes(detector, pairs, pairs["pair_id"], ("truncate", "chunk"), 20)
    assert set(table["condition"]) == {"truncate", "chunk", "chunk - truncate"}
    # these documents fit in one window, so both modes score alike and the lift is exactly 0
    lift = table[table["condition"] == "chunk - truncate"]
    assert np.allclose(lift[["estimate", "ci_low", "ci_high"]].to_numpy(), 0.0, atol=1e-6)
    assert (table.loc[table["condition"] != "chunk - truncate", "seconds_per_pair"] > 0).all()


def test_default_reading_is_evidence_for_an_evidence_trained_model_else_chunk(detector):
    assert utils.HallucinationDetector(detector.model, detector.tokenizer, 48, evidence_sentences=3).long_documents \
        == "evidence"
    assert utils.HallucinationDetector(detector.model, detector.tokenizer, 48).long_documents == "chunk"
