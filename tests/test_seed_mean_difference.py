"""The mean over seeds of paired differences, with its stratified bootstrap, against scipy."""

import numpy as np
import pytest
import scipy.stats

from speechbrain_alld.comparison import paired_difference, seed_mean_difference
from speechbrain_alld.metrics import mse, pearson


def make_seeds(rng, sizes, noise_a=0.8, noise_b=0.5):
    out = []
    for n in sizes:
        t = rng.uniform(1, 5, n)
        out.append((t + rng.normal(0, noise_a, n), t + rng.normal(0, noise_b, n), t))
    return out


def hand_mse(p, t):
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    return float(np.sum((p - t) ** 2) / len(t))


@pytest.fixture(scope="module")
def seeds():
    return make_seeds(np.random.default_rng(4), [80, 120, 100])


def test_point_estimate_is_the_mean_of_seed_differences(seeds):
    lcc = seed_mean_difference(pearson, seeds, n_resamples=50)
    expected = np.mean([scipy.stats.pearsonr(b, t)[0] - scipy.stats.pearsonr(a, t)[0]
                        for a, b, t in seeds])
    assert lcc["difference"] == pytest.approx(expected, abs=1e-12)
    err = seed_mean_difference(mse, seeds, n_resamples=50)
    expected = np.mean([hand_mse(b, t) - hand_mse(a, t) for a, b, t in seeds])
    assert err["difference"] == pytest.approx(expected, abs=1e-12)
    assert err["seeds"] == lcc["seeds"] == 3 and err["n"] == 300
    # Not the difference on the pooled items (the seeds have different sizes).
    pooled = [np.concatenate(x) for x in zip(*seeds)]
    pooled_diff = scipy.stats.pearsonr(pooled[1], pooled[2])[0] - \
        scipy.stats.pearsonr(pooled[0], pooled[2])[0]
    assert abs(lcc["difference"] - pooled_diff) > 1e-6
    # Plain lists work as well as arrays.
    as_lists = [tuple(list(map(float, x)) for x in s) for s in seeds]
    assert seed_mean_difference(pearson, as_lists, n_resamples=50) == lcc


def test_one_seed_matches_the_paired_bootstrap_of_scipy(seeds):
    a, b, t = seeds[1]
    out = seed_mean_difference(mse, [(a, b, t)], n_resamples=2000, seed=3)
    assert out["difference"] == pytest.approx(paired_difference(mse, a, b, t)["difference"],
                                              abs=1e-12)
    reference = scipy.stats.bootstrap(
        (a, b, t), lambda x, y, z: hand_mse(y, z) - hand_mse(x, z),
        paired=True, vectorized=False, n_resamples=2000, method="percentile",
        confidence_level=0.95, rng=np.random.default_rng(8)).confidence_interval
    # Two independent Monte Carlo estimates of the same percentiles.
    width = reference.high - reference.low
    assert out["ci_low"] == pytest.approx(reference.low, abs=0.08 * width)
    assert out["ci_high"] == pytest.approx(reference.high, abs=0.08 * width)


def test_interval_matches_an_independent_stratified_bootstrap(seeds):
    out = seed_mean_difference(mse, seeds, n_resamples=2000, seed=0, confidence=0.9)
    rng = np.random.default_rng(12345)
    stats = []
    for _ in range(2000):
        diffs = []
        for a, b, t in seeds:
            i = rng.integers(0, len(t), len(t))
            diffs.append(hand_mse(b[i], t[i]) - hand_mse(a[i], t[i]))
        stats.append(np.mean(diffs))
    low, high = np.quantile(stats, [0.05, 0.95])
    width = high - low
    assert out["ci_low"] == pytest.approx(low, abs=0.08 * width)
    assert out["ci_high"] == pytest.approx(high, abs=0.08 * width)
    assert out["ci_low"] < out["difference"] < out["ci_high"] < 0  # b is clearly better


def test_interval_shrinks_with_more_items():
    rng = np.random.default_rng(9)
    widths = []
    for n in (40, 160, 640):
        out = seed_mean_difference(mse, make_seeds(rng, [n, n, n]), n_resamples=500)
        widths.append(out["ci_high"] - out["ci_low"])
    assert widths[0] > widths[1] > widths[2] > 0
    # About 1/sqrt(n): quadrupling the items roughly halves the width.
    assert 0.3 < widths[2] / widths[1] < 0.75 and 0.3 < widths[1] / widths[0] < 0.75


def test_interval_shrinks_with_more_seeds():
    rng = np.random.default_rng(10)
    one = seed_mean_difference(mse, make_seeds(rng, [100]), n_resamples=1000)
    eight = seed_mean_difference(mse, make_seeds(rng, [100] * 8), n_resamples=1000)
    ratio = (eight["ci_high"] - eight["ci_low"]) / (one["ci_high"] - one["ci_low"])
    assert 0.2 < ratio < 0.55  # about 1/sqrt(8) = 0.35 for independent seeds


def test_identical_systems_give_zero_width(seeds):
    same = [(a, a, t) for a, _, t in seeds]
    for fn in (mse, pearson):
        out = seed_mean_difference(fn, same, n_resamples=200)
        assert out["difference"] == 0.0
        assert out["ci_low"] == out["ci_high"] == 0.0


def test_deterministic_for_a_seed(seeds):
    first = seed_mean_difference(mse, seeds, n_resamples=300, seed=5)
    assert seed_mean_difference(mse, seeds, n_resamples=300, seed=5) == first
    other = seed_mean_difference(mse, seeds, n_resamples=300, seed=6)
    assert other["difference"] == first["difference"]
    assert (other["ci_low"], other["ci_high"]) != (first["ci_low"], first["ci_high"])


def test_length_mismatch_and_bad_confidence_raise(seeds):
    a, b, t = seeds[0]
    for bad in ((a[:-1], b, t), (a, b[:-1], t), (a, b, t[:-1])):
        with pytest.raises(ValueError, match="differ in length within a seed"):
            seed_mean_difference(mse, [seeds[1], bad], n_resamples=10)
    for confidence in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="confidence"):
            seed_mean_difference(mse, seeds, confidence=confidence, n_resamples=10)


def test_empty_inputs_give_nan():
    out = seed_mean_difference(mse, [], n_resamples=10)
    assert np.isnan(out["difference"]) and np.isnan(out["ci_low"]) and np.isnan(out["ci_high"])
    assert out["seeds"] == 0 and out["n"] == 0
    out = seed_mean_difference(mse, [([1.0, 2.0], [1.5, 2.0], [1.0, 2.0]), ([], [], [])],
                               n_resamples=10)
    assert np.isnan(out["difference"]) and out["seeds"] == 2 and out["n"] == 2
