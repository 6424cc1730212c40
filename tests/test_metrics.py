"""Metrics against cases computed by hand."""
import numpy as np
import pandas as pd
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
    assert np.isnan(m["precision_at_0.95"]) and m["recall_at_0.95"] == 0.0  # nothing flagged: precision undefined
    assert len(utils.THRESHOLDS) == len(set(utils.THRESHOLDS)) == 8
    assert utils.precision_recall_at(Y, P, 0.35) == (pytest.approx(2 / 3), 1.0)


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


def _study_split():
    """Two documents: a has 1 consistent + 2 inconsistent pairs, b has 1 + 1; the 1:1 pairs are ids 0, 1, 3, 4."""
    return pd.DataFrame({"pair_id": [0, 1, 2, 3, 4], "doc_id": ["a", "a", "a", "b", "b"],
                         "label": [utils.CONSISTENT, utils.INCONSISTENT, utils.INCONSISTENT,
                                   utils.CONSISTENT, utils.INCONSISTENT]})


def test_bootstrap_point_estimates_match_the_plain_metrics():
    full = _study_split()
    p = np.array([0.2, 0.9, 0.1, 0.6, 0.5])
    table = utils.bootstrap_study(full, [0, 1, 3, 4], {"m": [p]}, n_resamples=20).set_index("metric")
    # 1:1 pairs: consistent 0.2, 0.6; inconsistent 0.9, 0.5 -> right (0.9>0.2, 0.9>0.6, 0.5>0.2), wrong 0.5<0.6
    assert table.loc["roc_auc", "estimate"] == pytest.approx(0.75)
    # all pairs: doc a 0.9>0.2 right, 0.1<0.2 wrong; doc b 0.5<0.6 wrong -> 1/3
    assert table.loc["choice_accuracy", "estimate"] == pytest.approx(1 / 3)
    assert table.loc["recall_at_0.8", "estimate"] == 0.5 and table.loc["precision_at_0.8", "estimate"] == 1.0
    assert (table["ci_low"] <= table["estimate"] + 1e-12).all() and (table["estimate"] <= table["ci_high"] + 1e-12).all()


def test_bootstrap_averages_seeds_and_pairs_the_lift():
    full = _study_split()
    good, bad = np.array([0.1, 0.9, 0.8, 0.2, 0.7]), np.array([0.9, 0.1, 0.2, 0.8, 0.3])
    table = utils.bootstrap_study(full, [0, 1, 3, 4], {"a": [good, bad], "b": [bad, bad]},
                                  lifts=[("a", "b")], n_resamples=50).set_index(["condition", "metric"])
    assert table.loc[("a", "roc_auc"), "estimate"] == pytest.approx(0.5)  # mean of 1.0 and 0.0
    assert table.loc[("a - b", "roc_auc"), "estimate"] == pytest.approx(0.5)
    # every document resample still has a perfect and a perfectly wrong seed, so the lift never moves
    assert table.loc[("a - b", "roc_auc"), ["ci_low", "ci_high"]].tolist() == pytest.approx([0.5, 0.5])
    assert table.loc[("a", "roc_auc"), "seeds"] == 2


def test_per_seed_metrics_score_each_seed_and_pair_lifts_on_shared_seeds():
    full = _study_split()
    good, bad = np.array([0.1, 0.9, 0.8, 0.2, 0.7]), np.array([0.9, 0.1, 0.2, 0.8, 0.3])
    table = utils.per_seed_metrics(full, [0, 1, 3, 4], {"a": {0: good, 1: bad}, "b": {1: good, 2: bad}},
                                   lifts=[("a", "b")]).set_index(["condition", "seed"])
    assert table.loc[("a", 0), "roc_auc"] == 1.0 and table.loc[("a", 1), "roc_auc"] == 0.0
    assert table.loc[("a - b", 1), "roc_auc"] == -1.0  # seed 1 only: the one seed both conditions ran
    assert ("a - b", 0) not in table.index and ("a - b", 2) not in table.index


def test_seed_interval_is_the_student_t_interval():
    mean, low, high = utils.seed_interval([1.0, 2.0, 3.0])
    # sd 1, standard error 1/sqrt(3), t(0.975, 2 df) = 4.3027
    assert mean == 2.0 and (low, high) == pytest.approx((2 - 4.3027 / 3 ** 0.5, 2 + 4.3027 / 3 ** 0.5), abs=1e-4)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        utils.seed_interval([0.5])
