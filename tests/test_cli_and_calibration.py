"""The installed face: `from vf import HallucinationDetector`, `python -m vf score` on jsonl and csv files (bad lines
named, nothing skipped), and calibrate's threshold, interval and pairs-needed curve on hand-made scores."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import utils
from conftest import REPO, synthetic_pairs, tiny_bert
from vf import Calibration, HallucinationDetector
from vf.calibration import calibrate_threshold, check_labels, pairs_needed
from vf.cli import main


@pytest.fixture
def detector_folder(tmp_path):
    folder = tiny_bert(tmp_path / "detector")
    utils.Reading(max_length=64, batch_size=8).save(folder)
    return folder


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_command_line_scores_jsonl_and_csv_as_the_detector_does(tmp_path, detector_folder, capsys):
    pairs = synthetic_pairs(6, 0).rename(columns={"premise": "document", "hypothesis": "summary"})
    pairs["summary"] = pairs["summary"] + " It rained."  # two sentences: two claims each
    pairs = pairs.assign(id=[f"p{i}" for i in range(len(pairs))])[["id", "document", "summary"]]
    jsonl = write_jsonl(tmp_path / "pairs.jsonl", pairs.to_dict("records"))
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    expected = HallucinationDetector.from_pretrained(detector_folder).score(pairs["document"], pairs["summary"])
    for source in (jsonl, tmp_path / "pairs.csv"):
        out, claims = tmp_path / f"{source.stem}_{source.suffix[1:]}_scores.jsonl", tmp_path / "claims.csv"
        assert main(["score", str(source), "--model", str(detector_folder), "--out", str(out),
                     "--claims", str(claims)]) == 0
        if out.suffix == ".jsonl":
            assert out.read_text().endswith("}\n") and out.read_text().count("\n") == len(pairs)
        scored = pd.read_json(out, lines=True)
        assert list(scored.columns) == ["id", "summary", "p_inconsistent"]  # the document is not repeated
        np.testing.assert_allclose(scored["p_inconsistent"], expected, atol=1e-6)
        per_claim = pd.read_csv(claims)
        assert len(per_claim) == 2 * len(pairs) and set(per_claim["id"]) == set(pairs["id"])
        # a summary's score is its least supported sentence's
        np.testing.assert_allclose(per_claim.groupby("pair")["p_inconsistent"].max(), expected, atol=1e-6)
    assert "scored 12 pairs (24 claims)" in capsys.readouterr().err


@pytest.mark.parametrize("content, suffix, message", [
    ('{"document": "a b.", "summary": "a."}\n{"document": "c d."}\n', ".jsonl",
     r"pairs\.jsonl:2: missing field 'summary'"),
    ('{"document": "a b.", "summary": "a."}\n{"document": "c d.", "summary": "  "}\n', ".jsonl",
     r"pairs\.jsonl:2: field 'summary' is '  '; it must be a non-empty string"),
    ('{"document": "a b.", "summary": 3}\n', ".jsonl", r"pairs\.jsonl:1: field 'summary' is 3"),
    ('{"document": "a b.", "summary": "a."}\nnot json\n', ".jsonl", r"pairs\.jsonl:2: malformed JSON"),
    ('document,summary\n"a, b.",a.\n"two\nlines",\n', ".csv", r"pairs\.csv:3: field 'summary' is ''"),
    ('document,summary\na b.,a.,extra\n', ".csv", r"pairs\.csv:2: 3 cells, but the header names 2"),
    ("", ".csv", r"pairs\.csv: empty file"),
    ('{"document": "a"}', ".txt", r"expected a \.jsonl file .* or a \.csv file"),
])
def test_bad_input_is_named_by_file_line_and_field_and_nothing_is_scored(tmp_path, detector_folder, capsys,
                                                                          content, suffix, message):
    path = tmp_path / f"pairs{suffix}"
    path.write_text(content, encoding="utf-8")
    out = tmp_path / "scores.jsonl"
    assert main(["score", str(path), "--model", str(detector_folder), "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("error: ") and pytest.importorskip("re").search(message, err), err


def test_python_m_vf_runs_as_a_module(tmp_path, detector_folder):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"document": "The cat sat on the mat.", "summary": "A cat sat."}])
    done = subprocess.run([sys.executable, "-m", "vf", "score", str(pairs), "--model", str(detector_folder)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 0 <= json.loads(done.stdout)["p_inconsistent"] <= 1


def test_calibrate_finds_the_lowest_threshold_reaching_the_target_on_hand_made_scores():
    # 4 inconsistent above 0.6, one consistent at 0.7: precision 4/5 = 0.8 from threshold 0.6 up to 0.7
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0])
    p = np.array([0.9, 0.85, 0.8, 0.6, 0.7, 0.3, 0.2, 0.1, 0.25, 0.35])
    result = calibrate_threshold(y, p, target_precision=0.8, n_resamples=300)
    assert isinstance(result, Calibration)
    assert result.threshold == pytest.approx(0.6)
    assert (result.precision, result.recall) == pytest.approx((0.8, 0.8))
    assert result.threshold_low <= result.threshold <= result.threshold_high
    assert 0 < result.reachable <= 1 and (result.n_pairs, result.n_inconsistent) == (10, 5)
    lines = str(result).splitlines()  # what a user reads, in lines that fit a notebook
    assert lines[0] == "10 labelled pairs (5 inconsistent), target precision 0.8:"
    assert lines[1].startswith("  threshold 0.600 [") and "on new pairs expect precision" in lines[2]
    assert max(map(len, lines)) <= 95


def test_an_unreachable_target_gives_an_undefined_threshold_not_a_made_up_one():
    result = calibrate_threshold([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2], target_precision=0.9, n_resamples=50)
    assert np.isnan(result.threshold) and np.isnan(result.precision) and result.reachable < 0.5
    assert "no threshold reaches it on these pairs" in str(result)


@pytest.mark.parametrize("labels, message", [
    ([1, 0, 2], r"label 2 is 2 .* labels are 1 \(or True\)"),
    ([1, 1, 1], "all 3 labels are inconsistent"),
    ([0, 1], "2 labels for 3 pairs"),
    (["yes", 0, 1], "label 0 is 'yes'"),
])
def test_bad_labels_are_refused_with_what_to_give(labels, message):
    with pytest.raises(utils.DataError, match=message):
        check_labels(labels, 3)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=2, max_size=40))
def test_calibration_holds_at_extreme_inputs(rows):
    y, p = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    if y.all() or not y.any():
        with pytest.raises(utils.DataError):
            calibrate_threshold(y, p, n_resamples=20)
        return
    result = calibrate_threshold(y, p, target_precision=0.5, n_resamples=20)
    if np.isfinite(result.threshold):
        assert result.precision >= 0.5 and np.mean(y[p >= result.threshold]) == pytest.approx(result.precision)


def test_pairs_needed_grows_more_reliable_with_more_labelled_pairs():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.5
    p = np.clip(rng.normal(np.where(y, 0.65, 0.35), 0.2), 0, 1)  # a source where some threshold gives 0.8
    table = pairs_needed(y, p, sizes=(25, 400), repeats=100).set_index("pairs")
    assert table.loc[400, "within_tolerance"] > table.loc[25, "within_tolerance"]
    assert table.loc[400, "median_precision"] == pytest.approx(0.8, abs=0.03)
    assert np.isnan(pairs_needed(y[:20], p[:20], sizes=(25,)).loc[0, "within_tolerance"])  # too few pairs: undefined


def test_pairs_enough_reads_the_smallest_sufficient_size_and_says_when_it_cannot_tell():
    from vf.calibration import pairs_enough
    table = pd.DataFrame({"pairs": [25, 50, 100], "draws": [10, 10, 10], "within_tolerance": [0.5, 0.8, 0.9]})
    assert pairs_enough(table) == 50
    assert pairs_enough(table.assign(within_tolerance=[0.1, 0.2, 0.3])) == float("inf")  # more than the largest
    assert np.isnan(pairs_enough(table.assign(draws=[10, 0, 0], within_tolerance=[0.1, np.nan, np.nan])))
