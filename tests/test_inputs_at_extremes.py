"""No input crashes scoring or training: pairs are cut to fit (the document first), at every length, in any script."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import utils
from conftest import synthetic_pairs, tiny_bert

WORDS = st.sampled_from(["the", "court", "ruled", "Zürich", "naïve", "東京", "🙂", "x" * 40, "3.5%", "—", "\u200b",
                         "", ".", "Mr.", "U.S.", "e.g.", "\n"])
SENTENCE = st.lists(WORDS, min_size=0, max_size=12).map(lambda ws: " ".join(ws) + ".")
TEXT = st.lists(SENTENCE, min_size=1, max_size=40).map(" ".join)  # from one empty sentence to ~500 tokens


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path_factory.mktemp("tiny")))
    return utils.HallucinationDetector(model, tokenizer, utils.Reading(max_length=48, mode="truncate", batch_size=4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=6))
def test_scoring_never_raises_and_gives_one_probability_per_pair(detector, pairs):
    documents, summaries = [d for d, _ in pairs], [s for _, s in pairs]
    if any(not t.strip() for t in documents + summaries):  # blank texts are refused with a clear error instead
        with pytest.raises(ValueError, match="is empty or not a string"):
            detector.score(documents, summaries)
        return
    for reading in ({}, dict(claims=True), dict(mode="evidence", claims=True), dict(mode="chunk", claims=True)):
        p = detector.with_reading(**reading).score(documents, summaries)
        assert p.shape == (len(pairs),) and np.all((p >= 0) & (p <= 1))
    for k in (None, 2):  # evidence selection as well
        q = utils.predict_proba(detector.model, detector.tokenizer, pd.DataFrame(
            {"premise": documents, "hypothesis": summaries}), 48, 4, False, k)
        assert q.shape == (len(pairs),) and np.all((q >= 0) & (q <= 1))


@settings(max_examples=60, deadline=None)
@given(premise=TEXT, hypothesis=TEXT, max_length=st.integers(16, 96))
def test_fit_pairs_cuts_the_document_first_and_always_fits(premise, hypothesis, max_length):
    tokenizer = utils.load_tokenizer()
    (p,), (h,) = utils.fit_pairs(tokenizer, [premise], [hypothesis], max_length)
    assert premise.startswith(p) and hypothesis.startswith(h)  # cut at the end, never rewritten
    n_p, n_h = (len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in (premise, hypothesis))
    budget = max_length - 3  # [CLS] premise [SEP] hypothesis [SEP]
    assert len(tokenizer(p, h)["input_ids"]) <= max_length
    if n_p + n_h <= budget:
        assert (p, h) == (premise, hypothesis)
    elif h != hypothesis:  # the summary is cut only where it would leave the document under a quarter of the window
        assert n_h > budget - min(n_p, budget // 4)


def test_a_summary_longer_than_the_window_is_cut_and_counted_once(capsys):
    tokenizer = utils.load_tokenizer()
    long_summary = " ".join(["the court ruled in favour of the city"] * 40)  # ~320 tokens
    pairs = pd.DataFrame({"premise": ["The court met.", "A short document."] * 2,
                          "hypothesis": [long_summary, "short.", long_summary, "short."], "label": [0, 2, 0, 2]})
    features = utils.tokenize_pairs(tokenizer, pairs, 64, name="long summaries")
    assert [len(f["input_ids"]) for f in features] == [64, 9, 64, 9]
    assert tokenizer.decode(features[0]["input_ids"]).startswith("[CLS] the court met. [SEP] the court ruled")
    out = capsys.readouterr().out
    assert out.count("long summaries:") == 1 and "documents cut; 2 of 4 summaries over 3/4 of the 64-token" in out


def test_training_on_summaries_longer_than_the_window_runs(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path))
    pairs = synthetic_pairs(6, 0)
    pairs.loc[::3, "hypothesis"] = pairs.loc[::3, "hypothesis"] + " and so on" * 40
    cfg = utils.get_config("smoke", max_length=32, batch_size=4, grad_accum=1, epochs=1, eval_every=1,
                           select_metric="validation/roc_auc")
    result = utils.train(model, tokenizer, pairs, {"validation": pairs}, cfg)
    assert result.history["update"].iloc[-1] == 3


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_sentence_splitting_loses_no_text_and_gives_no_empty_sentence(text):
    sentences = utils.split_sentences(text)
    assert all(s.strip() == s and s for s in sentences)
    assert " ".join(" ".join(sentences).split()) == " ".join(text.split())


@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith went to Washington. He arrived at 3.5 p.m. on Monday.",
     ["Mr. Smith went to Washington.", "He arrived at 3.5 p.m. on Monday."]),
    ('He said "It is over." Then he left.', ['He said "It is over."', "Then he left."]),
    ("The U.S. Senate voted 52-48. It passed.", ["The U.S. Senate voted 52-48.", "It passed."]),
    ("Sales rose 3.5% to $1.2 billion. 2020 was worse.", ["Sales rose 3.5% to $1.2 billion.", "2020 was worse."]),
    ("J. K. Rowling wrote it.\nA new line", ["J. K. Rowling wrote it.", "A new line"]),
    ("the cat sat .\nthe dog ran .", ["the cat sat .", "the dog ran ."]),  # FIB CNN/DM: one sentence a line
    ("No full stop at all", ["No full stop at all"]),
])
def test_sentence_splitting_handles_quotes_abbreviations_and_numbers(text, expected):
    assert utils.split_sentences(text) == expected


EDIT_DOCUMENT = "Red Funnel said 3 ferries ran in 2016. Donald Trump visited Cowes on Friday."


@pytest.mark.parametrize("edit, summary, expected", [
    ("number", "After 1,200 complaints the ferry closed.", "After 2016 complaints the ferry closed."),
    ("number", "The G20 met in its 2nd year.", None),  # digits inside words are not numbers
    ("date", "The ferry will close on Monday.", "The ferry will close on Friday."),  # the document's weekday
    ("date", "It opened in March.", "It opened in January."),  # the document names no month: the first other
    ("name", "The Isle of Wight's ferry was run by Cowes Ferry Company.",  # "Cowes" is in the summary: no candidate
     "The Donald Trump of Wight's ferry was run by Cowes Ferry Company."),
    ("name", "Trump said the ferry would close.", "Cowes said the ferry would close."),  # never "Donald Trump"
    ("name", "In May the ferry closed.", None),  # an opening "In" and a month are not names
    ("negation", "It can't fly.", "It can fly."),
    ("negation", "Ferries won't run.", "Ferries will run."),
    ("negation", "The ferry was not late.", "The ferry was late."),
    ("negation", "The ferry has closed.", "The ferry has not closed."),
    ("negation", "A ferry.", None),
])
def test_each_edit_on_hand_made_summaries(edit, summary, expected):
    assert utils.EDITS[edit](summary, EDIT_DOCUMENT, FirstChoice()) == expected


class FirstChoice:
    """A random generator that always picks the first: the first match and the first candidate, sorted."""
    def integers(self, n):
        return 0

    def random(self):
        return 0.0


@settings(max_examples=200, deadline=None)
@given(summary=TEXT, document=TEXT, seed=st.integers(0, 2**32 - 1))
def test_an_edit_always_changes_the_summary_or_says_none_applies(summary, document, seed):
    edited = utils.corrupt(summary, document, np.random.default_rng(seed))
    assert edited is None or (edited[0] != summary and edited[1] in utils.EDITS)


def test_synthetic_negatives_are_inconsistent_edits_of_consistent_pairs_and_say_when_short(capsys):
    consistent = pd.DataFrame({"premise": [EDIT_DOCUMENT] * 3, "label": utils.CONSISTENT, "doc_id": ["a", "b", "c"],
                               "hypothesis": ["The ferry closed on Monday.", "A ferry.", "It had 4 decks."]})
    made = utils.synthetic_negatives(consistent, 3, seed=0)
    assert len(made) == 2 and (made["label"] == utils.INCONSISTENT).all() and set(made["doc_id"]) == {"a", "c"}
    assert not set(made["hypothesis"]) & set(consistent["hypothesis"])
    assert "2 of the 3 asked for" in capsys.readouterr().out
    assert utils.synthetic_negatives(consistent, 1, seed=0).shape[0] == 1
    with pytest.raises(ValueError, match="consistent pairs only"):
        utils.synthetic_negatives(consistent.assign(label=utils.INCONSISTENT), 1, seed=0)
