"""The claim sets and DialSummEval: exact counts from the real files, labels the right way round, splits by group
without leakage, partial claims on request, and DialSummEval refused for training."""
import pytest

import utils
from vf.claim_sets import CLAIM_SETS, claim_splits, load_claim_set

# (pairs, consistent, inconsistent, groups), as ../shared/data/README.md counts them
EXPECTED = {"factcheck_gpt": (3078, 636, 2442, 321), "lfqa": (3799, 2248, 1551, 97),
            "begin": (4643, 1601, 3042, 1244), "faithdial_audit": (1957, 325, 1632, 441),
            "climate_fever": (7475, 1892, 5583, 1489), "dialsummeval": (415, 230, 185, 99)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_claim_set_loads_every_row_with_its_label(real_data, name):
    pairs = load_claim_set(name)
    labels = pairs["label"].value_counts()
    assert (len(pairs), labels[utils.CONSISTENT], labels[utils.INCONSISTENT], pairs["doc_id"].nunique()) == \
        EXPECTED[name]
    assert set(pairs["dataset"]) == {name} and name in CLAIM_SETS


def test_partly_supported_claims_are_inconsistent_unless_dropped(real_data):
    factcheck = load_claim_set("factcheck_gpt")
    assert (factcheck.loc[factcheck["label_orig"] == "partially-support", "label"] == utils.INCONSISTENT).sum() == 356
    assert len(load_claim_set("factcheck_gpt", partial=False)) == 3078 - 356
    assert len(load_claim_set("lfqa", partial=False)) == 3799 - 234


@pytest.mark.parametrize("name", ["lfqa", "begin", "climate_fever"])
def test_splits_keep_every_group_on_one_side(real_data, name):
    splits = claim_splits(name)
    utils.assert_no_document_leakage(splits)
    assert sum(len(s) for s in splits.values()) == EXPECTED[name][0]
    claims = {k: set(v["hypothesis"]) for k, v in splits.items()}
    assert not claims["train"] & (claims["validation"] | claims["test"])  # no claim on both sides


def test_dialsummeval_is_never_split_for_training(real_data):
    with pytest.raises(utils.ConfigError, match="dialsummeval is for evaluation only"):
        claim_splits("dialsummeval")


def test_a_bad_claim_record_is_named_by_file_and_line(data_root):
    folder = data_root / "claims" / "lfqa"
    folder.mkdir(parents=True)
    good = ('{"premise": "p", "hypothesis": "h", "label": 0, "label_orig": "supported", "doc_id": "d", '
            '"group_id": "g", "domain": "lfqa"}')
    (folder / "a.jsonl").write_text(good + "\n" + good.replace('"label": 0', '"label": 2') + "\n")
    with pytest.raises(utils.DataError, match=r"a\.jsonl:2: label 2 is outside \[0, 1\]"):
        load_claim_set("lfqa")
    with pytest.raises(utils.ConfigError, match="unknown claim set 'wice'"):
        load_claim_set("wice")


def test_climate_fever_is_a_three_way_nli_set_split_by_claim(real_data):
    pairs = utils.load_nli(("climate_fever",))
    assert len(pairs) == 7475 and pairs["doc_id"].nunique() == 1489
    assert pairs["label"].value_counts().to_dict() == {utils.NEUTRAL: 4822, utils.CONSISTENT: 1892,
                                                        utils.INCONSISTENT: 761}
    assert pairs["premise"].str.contains(" . ", regex=False).all()  # the article's title before the sentence
    splits = utils.nli_splits(pairs)
    utils.assert_no_document_leakage(splits)
    assert not set(splits["train"]["hypothesis"]) & set(splits["validation"]["hypothesis"])  # no claim on both sides


def test_the_standard_nli_sets_are_what_load_nli_reads_unless_asked(real_data):
    from vf.nli import NLI_SETS, STANDARD_SETS
    assert "climate_fever" in NLI_SETS and "climate_fever" not in STANDARD_SETS and len(STANDARD_SETS) == 7
