"""Metrics against cases computed by hand."""
import numpy as np
import pytest

import utils

# y = 1 means inconsistent (the positive class); p = P(inconsistent)
Y = np.array([0, 0, 1, 1])
P = np.array([0.10, 0.40, 0.35, 0.80])


def test_roc_and_pr_auc_by_hand():
    m = utils.compute_metrics(Y, P)
    # positive/negative pairs ranked right: (0.35>0.10), (0.80>0.10), (0.80>0.40); wrong: (0.35<0.40) -> 3/4
    assert m["roc_auc"] == pytest.approx(0.75)
    # ranked: 0.80 (+) P=1 R=.5; 0.40 (-); 0.35 (+) P=2/3 R=1 -> AP = .5*1 + .5*2/3
    assert m["pr_auc"] == pytest.approx(0.5 + 1 / 3)


def test_precision_recall_on_the_threshold_grid():
    m = utils.compute_metrics(Y, P)
    assert (m["precision_at_0.8"], m["recall_at_0.8"]) == (1.0, 0.5)  # only 0.80 is flagged
    assert (m["precision_at_0.95"], m["recall_at_0.95"]) == (0.0, 0.0)  # nothing flagged: zero_division=0
    assert len(utils.THRESHOLDS) == len(set(utils.THRESHOLDS)) == 8
    table = utils.threshold_table(Y, P)
    assert table.loc[0.8, "flagged"] == 0.25


def test_best_f1_threshold_and_its_application():
    # F1 at 0.80: .667; at 0.40: .5; at 0.35: P=2/3 R=1 -> .8; at 0.10: P=.5 R=1 -> .667
    assert utils.best_f1_threshold(Y, P) == pytest.approx(0.35)
    m = utils.compute_metrics(Y, P, threshold=0.35)
    assert m["f1_at_threshold"] == pytest.approx(0.8)


def test_choice_accuracy_by_hand():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.2, 0.5, 0.1, 0.3, 0.3])
    docs = np.array(["a", "a", "a", "b", "b"])
    # doc a: consistent 0.2 vs 0.5 (right) and 0.1 (wrong); doc b: 0.3 vs 0.3 (tie, half) -> 1.5 / 3
    assert utils.choice_accuracy(y, p, docs) == pytest.approx(0.5)
    assert utils.compute_metrics(y, p, docs)["choice_accuracy"] == pytest.approx(0.5)


def test_js_divergence_extremes_and_shared_bins():
    rng = np.random.default_rng(0)
    same = rng.uniform(size=200)
    assert utils.js_divergence(same, same) == pytest.approx(0.0)
    assert utils.js_divergence([0.01, 0.02, 0.03], [0.97, 0.98]) == pytest.approx(1.0)
    # shared bins, not paired values: two samples of different sizes from one distribution are close
    assert utils.js_divergence(rng.uniform(size=2000), rng.uniform(size=3000)) < 0.01


def test_one_class_is_a_clear_error():
    with pytest.raises(ValueError, match="one class only"):
        utils.compute_metrics([1, 1, 1], [0.2, 0.5, 0.9])
