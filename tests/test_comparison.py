"""Paired comparisons against scipy (statistics and its paired percentile bootstrap)."""

import numpy as np
import pytest
import scipy.stats

from speechbrain_alld.comparison import (
    ab_accuracy_difference,
    accuracy_by_gap,
    mos_differences,
    paired_difference,
    swap_consistency,
)
from speechbrain_alld.metrics import pearson


@pytest.fixture(scope="module")
def systems():
    rng = np.random.default_rng(3)
    target = rng.uniform(1, 5, 300)
    a = target + rng.normal(0, 0.8, 300)  # the weaker system
    b = target + rng.normal(0, 0.5, 300)
    return a, b, target


def test_lcc_difference_and_interval_match_scipy(systems):
    a, b, t = systems
    out = paired_difference(pearson, a, b, t, n_resamples=2000, seed=1)
    expected = scipy.stats.pearsonr(b, t)[0] - scipy.stats.pearsonr(a, t)[0]
    assert out["difference"] == pytest.approx(expected, abs=1e-12)
    reference = scipy.stats.bootstrap(
        (a, b, t), lambda x, y, z: scipy.stats.pearsonr(y, z)[0] - scipy.stats.pearsonr(x, z)[0],
        paired=True, vectorized=False, n_resamples=2000, method="percentile",
        confidence_level=0.95, rng=np.random.default_rng(2)).confidence_interval
    # Two independent Monte Carlo estimates of the same percentiles.
    assert out["ci_low"] == pytest.approx(reference.low, abs=0.015)
    assert out["ci_high"] == pytest.approx(reference.high, abs=0.015)
    assert 0 < out["ci_low"] < out["difference"] < out["ci_high"]


def test_pairing_narrows_the_interval():
    """Two systems that err alike on the same items (shared item difficulty): resampling items
    jointly cancels the shared error, resampling each system's items independently does not."""
    rng = np.random.default_rng(5)
    t = rng.uniform(1, 5, 300)
    shared = rng.normal(0, 0.8, 300)
    a, b = t + shared + rng.normal(0, 0.3, 300), t + shared + rng.normal(0, 0.2, 300)
    paired = paired_difference(pearson, a, b, t, n_resamples=2000, seed=0)
    rng = np.random.default_rng(0)
    unpaired = []
    for _ in range(2000):
        i, j = rng.integers(0, 300, 300), rng.integers(0, 300, 300)
        unpaired.append(pearson(b[j], t[j]) - pearson(a[i], t[i]))
    low, high = np.quantile(unpaired, [0.025, 0.975])
    assert paired["ci_high"] - paired["ci_low"] < 0.5 * (high - low)


def test_identical_systems_differ_by_exactly_zero(systems):
    a, _, t = systems
    out = mos_differences(list(a), list(a), list(t), n_resamples=200)
    for name in ("mse", "lcc", "srcc"):
        assert out[name]["difference"] == 0.0
        assert out[name]["ci_low"] == out[name]["ci_high"] == 0.0


def test_mos_differences_use_items_both_parsed():
    a = [3.0, None, 2.0, 4.0, 1.0]
    b = [3.5, 2.0, None, 4.5, 1.0]
    t = [3.0, 2.0, 2.0, 4.0, 1.0]
    out = mos_differences(a, b, t, n_resamples=100)
    assert out["mse"]["n"] == 3
    assert out["mse"]["difference"] == pytest.approx(np.mean([0.25, 0.25, 0.0]))
    with pytest.raises(ValueError, match="differ in length"):
        mos_differences(a, b[:-1], t)


def test_ab_difference_counts_unparsed_as_wrong():
    winners = ["A", "B", "A", "B"]
    out = ab_accuracy_difference([None, None, "A", "A"], ["A", "B", "A", "A"], winners,
                                 n_resamples=100)
    assert out["difference"] == pytest.approx(0.75 - 0.25)


def test_accuracy_by_gap_bins_and_swap_consistency():
    verdicts = ["A", "A", "B", "A", "B", None]
    winners = ["A", "B", "B", "A", "A", "A"]
    gaps = [0.1, -0.3, 0.4, 0.9, 1.0, 3.0]  # signed gaps are binned by magnitude
    out = accuracy_by_gap(verdicts, winners, gaps)
    assert out == {"<0.25": {"n": 1, "accuracy": 1.0}, "0.25-0.5": {"n": 2, "accuracy": 0.5},
                   "0.5-1": {"n": 1, "accuracy": 1.0}, ">=1": {"n": 2, "accuracy": 0.0}}
    assert swap_consistency(["A", "tie", "B", "A"], ["B", "tie", "B", None]) == 0.5
    assert np.isnan(swap_consistency([], []))
