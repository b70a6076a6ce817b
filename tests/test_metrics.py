"""Metrics against scipy / sacrebleu directly and float64 hand values; unparsed never dropped."""

import math

import numpy as np
import pytest
import sacrebleu
from scipy import stats

from speechbrain_alld import parsing
from speechbrain_alld.metrics import (
    ab_metrics,
    bootstrap_ci,
    condition_aggregate,
    corpus_bleu,
    dimension_metrics,
    mos_metrics,
    mos_metrics_per_condition,
)
from speechbrain_alld.stats import ABStats, MOSStats


def test_mos_metrics_match_scipy_and_hand_values():
    rng = np.random.default_rng(0)
    target = rng.uniform(1, 5, 50)
    pred = np.clip(target + rng.normal(0, 0.4, 50), 1, 5)
    out = mos_metrics(list(pred), list(target))
    mse = sum((float(p) - float(t)) ** 2 for p, t in zip(pred, target)) / 50
    assert out["mse"] == pytest.approx(mse, rel=1e-12)
    assert out["rmse"] == pytest.approx(math.sqrt(mse))
    assert out["lcc"] == pytest.approx(stats.pearsonr(pred, target)[0])
    assert out["srcc"] == pytest.approx(stats.spearmanr(pred, target)[0])
    assert out["ktau"] == pytest.approx(stats.kendalltau(pred, target)[0])
    assert out["n_unparsed"] == 0 and out["unparsed_share"] == 0.0


def test_unparsed_items_are_counted_and_excluded_from_the_scores():
    out = mos_metrics([3.0, None, 2.0, None], [3.5, 1.0, 2.0, 4.0])
    assert out["n"] == 4 and out["n_parsed"] == 2 and out["n_unparsed"] == 2
    assert out["unparsed_share"] == 0.5
    assert out["mse"] == pytest.approx((0.5 ** 2 + 0.0) / 2)
    assert out["lcc"] == pytest.approx(1.0)  # two parsed points, both rising
    none = mos_metrics([None], [3.0])
    assert none["n_parsed"] == 0 and math.isnan(none["mse"])
    with pytest.raises(ValueError, match="predictions"):
        mos_metrics([1.0], [1.0, 2.0])


def test_constant_predictions_give_undefined_correlation_not_a_crash():
    out = mos_metrics([3.0, 3.0, 3.0], [1.0, 2.0, 4.0])
    assert math.isnan(out["lcc"]) and math.isnan(out["srcc"])
    assert out["mse"] == pytest.approx((4 + 1 + 1) / 3)


def test_ab_metrics():
    out = ab_metrics(["A", "B", None, "A", "tie"], ["A", "A", "B", "A", "tie"])
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["accuracy_parsed"] == pytest.approx(3 / 4)
    assert out["accuracy_non_tie"] == pytest.approx(2 / 3)
    assert out["n_unparsed"] == 1 and out["unparsed_share"] == 0.2


def test_bleu_equals_sacrebleu_and_reports_its_signature():
    hyp = ["the speech is clean and clear", "heavy noise masks the voice"]
    ref = ["the speech is clean and very clear", "strong noise masks the voice"]
    out = corpus_bleu(hyp, ref)
    assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyp, [ref]).score)
    assert out["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert corpus_bleu(ref, ref)["bleu"] == pytest.approx(100.0)


def test_stats_objects_parse_texts_and_keep_items():
    mos = MOSStats()
    mos.append(["a", "b", "c"], ["Overall MOS: 3.2.", "no number", "I rate the MOS at 1.5."],
               [3.0, 4.0, 2.0], ["Overall MOS: 3.0.", "MOS: 4.0.", "MOS: 2.0."])
    summary = mos.summarize()
    assert summary["n_parsed"] == 2 and summary["n_unparsed"] == 1
    assert summary["mse"] == pytest.approx((0.2 ** 2 + 0.5 ** 2) / 2)
    assert "bleu" in summary and mos.summarize("n") == 3
    assert [i["mos_pred"] for i in mos.items()] == [3.2, None, 1.5]
    ab = ABStats()
    ab.append(["p", "q"], ["I prefer Speech B.", "Speech A is better."], ["B", "B"],
              ["I prefer Speech B.", "I prefer Speech B."])
    assert ab.summarize("accuracy") == 0.5
    with pytest.raises(ValueError, match="same length"):
        ab.append(["x"], [], ["A"], ["r"])


# --------------------------------------------------------------------------- dimensions
def test_dimension_metrics_hand_values_and_unparsed_counts():
    pred = [{"noi": 2.0, "col": 3.0}, {"noi": 4.0}, {}, {"noi": 3.0, "col": 1.0, "loud": 5.0}]
    tgt = [{"noi": 1.0, "col": 3.0, "dis": 4.0}, {"noi": 4.0, "col": 2.0}, {"noi": 2.0},
           {"noi": 3.5, "col": None}]
    out = dimension_metrics(pred, tgt)
    # noi: 4 targets, 3 parsed: (2,1), (4,4), (3,3.5)
    assert (out["noi_n"], out["noi_n_parsed"], out["noi_n_unparsed"]) == (4, 3, 1)
    assert out["noi_mse"] == pytest.approx((1.0 + 0.0 + 0.25) / 3, rel=1e-12)
    assert out["noi_lcc"] == pytest.approx(stats.pearsonr([2, 4, 3], [1, 4, 3.5])[0])
    # col: targets on items 0, 1 (item 3 has None); only item 0 is predicted -> lcc undefined
    assert (out["col_n"], out["col_n_parsed"]) == (2, 1)
    assert out["col_mse"] == 0.0 and math.isnan(out["col_lcc"])
    # dis: one target, no prediction; loud: predicted but no target
    assert (out["dis_n"], out["dis_n_parsed"]) == (1, 0) and math.isnan(out["dis_mse"])
    assert (out["loud_n"], out["loud_n_parsed"]) == (0, 0) and math.isnan(out["loud_lcc"])
    with pytest.raises(ValueError, match="predictions"):
        dimension_metrics([{}], [])


# --------------------------------------------------------------------------- bootstrap
def _scipy_percentile_ci(statistic, *data, n_resamples, seed):
    res = stats.bootstrap(data, statistic, n_resamples=n_resamples, method="percentile",
                          vectorized=False, paired=len(data) > 1,
                          rng=np.random.default_rng(seed))
    return res.confidence_interval.low, res.confidence_interval.high


def test_bootstrap_ci_agrees_with_scipy_for_the_mean_and_pearson():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 1.0, 60)
    y = x + rng.normal(0.0, 0.7, 60)
    lcc = lambda a, b: stats.pearsonr(a, b)[0]  # noqa: E731
    for fn, data in ((np.mean, (x,)), (lcc, (x, y))):
        ours = bootstrap_ci(fn, *data, n_resamples=4000, seed=3)
        # independent resampling streams: agreement up to Monte-Carlo error
        ref = _scipy_percentile_ci(fn, *data, n_resamples=4000, seed=12345)
        assert ours == pytest.approx(ref, abs=0.03)
    assert bootstrap_ci(np.mean, x, seed=7) == bootstrap_ci(np.mean, x, seed=7)  # deterministic
    assert bootstrap_ci(np.mean, x, seed=7) != bootstrap_ci(np.mean, x, seed=8)


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(2)
    widths = []
    for n in (30, 600):
        t = rng.uniform(1, 5, n)
        p = t + rng.normal(0, 0.5, n)
        low, high = bootstrap_ci(lambda a, b: stats.pearsonr(a, b)[0], p, t, n_resamples=500)
        assert low < stats.pearsonr(p, t)[0] < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2
    assert all(math.isnan(v) for v in bootstrap_ci(np.mean, []))
    # a statistic undefined on every resample gives nan rather than a bogus interval
    low, _ = bootstrap_ci(lambda a, b: mos_metrics(list(a), list(b))["lcc"], [3.0] * 5,
                          [1, 2, 3, 4, 5])
    assert math.isnan(low)
    with pytest.raises(ValueError, match="different lengths"):
        bootstrap_ci(np.mean, [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(np.mean, [1.0, 2.0], confidence=95)


# --------------------------------------------------------------------------- per condition
def test_condition_aggregate_hand_example_excludes_unparsed_items():
    cons = ["c1", "c1", "c2", "c2", "c2", "c3", None, "c4"]
    pred = [2.0, 4.0, 1.0, None, 2.0, 5.0, 3.0, None]
    tgt = [1.0, 3.0, 1.5, 4.0, 2.5, 4.5, 3.0, 2.0]
    pm, tm = condition_aggregate(cons, pred, tgt)
    assert list(pm) == list(tm) == ["c1", "c2", "c3"]  # c4 has no parsed item, None no condition
    assert pm == {"c1": 3.0, "c2": 1.5, "c3": 5.0}
    assert tm == {"c1": 2.0, "c2": 2.0, "c3": 4.5}  # c2's unparsed item (4.0) left out
    out = mos_metrics_per_condition(pred, tgt, cons)
    assert (out["n"], out["n_parsed"], out["n_unparsed"]) == (8, 6, 2)
    assert out["n_conditions"] == 4 and out["n_conditions_parsed"] == 3
    assert out["n_no_condition"] == 1
    assert out["mse"] == pytest.approx((1.0 + 0.25 + 0.25) / 3, rel=1e-12)
    assert out["lcc"] == pytest.approx(stats.pearsonr([3.0, 1.5, 5.0], [2.0, 2.0, 4.5])[0])
    assert out["srcc"] == pytest.approx(stats.spearmanr([3.0, 1.5, 5.0], [2.0, 2.0, 4.5])[0])
    # ids mapped to conditions by a key function give the same result
    ids = [f"{c}/clip{k}" if c else f"clip{k}" for k, c in enumerate(cons)]
    key = lambda i: i.split("/")[0] if "/" in i else None  # noqa: E731
    assert condition_aggregate(ids, pred, tgt, key=key) == (pm, tm)
    with pytest.raises(ValueError, match="conditions"):
        condition_aggregate(["a"], [1.0, 2.0], [1.0, 2.0])


def test_per_condition_with_no_parsed_items():
    out = mos_metrics_per_condition([None, None], [1.0, 2.0], ["a", "b"])
    assert out["n_unparsed"] == 2 and out["n_conditions"] == 2
    assert out["n_conditions_parsed"] == 0 and math.isnan(out["mse"]) and math.isnan(out["lcc"])


# --------------------------------------------------------------------------- stats objects
def _mos_batch(rng, n):
    tgt = rng.uniform(1, 5, n).round(2)
    pred = np.clip(tgt + rng.normal(0, 0.5, n), 1, 5).round(2)
    texts = [f"Clear speech. Overall MOS: {p:.2f}." for p in pred]
    return [f"id{k}" for k in range(n)], texts, list(tgt), texts, pred


def test_mos_stats_positional_append_and_bootstrap_ci():
    ids, texts, tgt, refs, pred = _mos_batch(np.random.default_rng(4), 80)
    st = MOSStats()
    st.append(ids, texts, tgt, refs)  # the Brain's positional call
    st.append(["u"], ["no rating given"], [3.0], ["MOS: 3.0."])
    plain = st.summarize()
    assert not any(k.endswith("_ci_low") for k in plain) and "n_conditions" not in plain
    assert plain["n_unparsed"] == 1
    out = st.summarize(bootstrap=800, seed=1)
    for name, fn in (("mse", lambda a, b: np.mean((a - b) ** 2)),
                     ("lcc", lambda a, b: stats.pearsonr(a, b)[0]),
                     ("srcc", lambda a, b: stats.spearmanr(a, b)[0])):
        assert out[f"{name}_ci_low"] < out[name] < out[f"{name}_ci_high"]
        ref = _scipy_percentile_ci(fn, pred, np.array(tgt), n_resamples=4000, seed=9)
        assert (out[f"{name}_ci_low"], out[f"{name}_ci_high"]) == pytest.approx(ref, abs=0.05)
    # a default set in the constructor (hparams: !name:...MOSStats {bootstrap: N}) applies
    st = MOSStats(bootstrap=50)
    st.append(ids, texts, tgt, refs)
    assert "lcc_ci_low" in st.summarize() and "lcc_ci_low" not in st.summarize(bootstrap=0)


def test_mos_stats_per_condition_and_dimensions(monkeypatch):
    fake = {"MOS: 2.0. Noise 2.0, colour 3.0.": {"noi": 2.0, "col": 3.0},
            "MOS: 4.0. Noise 4.5.": {"noi": 4.5}, "MOS: 3.0.": {}, "garbled": {}}
    monkeypatch.setattr(parsing, "parse_dimensions", lambda t: fake[t])
    texts = list(fake)
    st = MOSStats()
    st.append(["a", "b"], texts[:2], [1.0, 4.0], ["r", "r"], conditions=["c1", "c2"],
              dimensions=[{"noi": 1.0, "col": 2.0}, {"noi": 4.0, "col": 5.0}])
    st.append(["c", "d"], texts[2:], [3.0, 2.0], ["r", "r"], ["c1", "c2"],
              [{"noi": 3.0}, {"noi": 2.0, "dis": 1.0}])
    out = st.summarize()
    assert out["n_unparsed"] == 1 and out["n_parsed"] == 3
    # per condition: c1 = mean(2, 3) vs mean(1, 3); c2 = 4 vs 4 (the garbled item left out)
    assert out["n_conditions"] == 2 and out["n_conditions_parsed"] == 2
    assert out["cond_mse"] == pytest.approx((0.5 ** 2 + 0.0) / 2)
    assert out["cond_lcc"] == pytest.approx(1.0) and out["cond_srcc"] == pytest.approx(1.0)
    # dimensions: noi predicted on a, b (items c, d have noi targets but no prediction)
    assert (out["noi_n"], out["noi_n_parsed"], out["noi_n_unparsed"]) == (4, 2, 2)
    assert out["noi_mse"] == pytest.approx((1.0 + 0.25) / 2)
    assert out["noi_lcc"] == pytest.approx(1.0) and math.isnan(out["col_lcc"])
    assert out["dis_n"] == 1 and out["dis_n_parsed"] == 0
    assert st.items()[0]["condition"] == "c1" and st.items()[1]["dims_pred"] == {"noi": 4.5}
    with pytest.raises(ValueError, match="conditions"):
        st.append(["x"], ["t"], [1.0], ["r"], conditions=[])


def test_mos_stats_dimensions_a_text_does_not_state_are_counted_unparsed():
    st = MOSStats()
    st.append(["a", "b"], ["MOS: 2.0.", "MOS: 3.0."], [2.0, 3.0], ["r", "r"],
              dimensions=[{"noi": 1.0}, {"noi": 2.0}])
    out = st.summarize()
    assert out["noi_n"] == 2 and out["noi_n_parsed"] == 0 and math.isnan(out["noi_mse"])


def test_ab_stats_accuracy_ci_against_scipy():
    rng = np.random.default_rng(6)
    truth = list(rng.choice(["A", "B"], 120))
    said = [t if rng.random() < 0.7 else ("B" if t == "A" else "A") for t in truth]
    texts = [f"I prefer Speech {s}." for s in said]
    texts[0] = "hard to say"  # unparsed: counted as wrong
    ab = ABStats()
    ab.append([str(k) for k in range(120)], texts, truth, texts)
    assert "accuracy_ci_low" not in ab.summarize()
    out = ab.summarize(bootstrap=2000)
    correct = np.array([p == t for p, t in zip(["?"] + said[1:], truth)], dtype=float)
    assert out["accuracy"] == pytest.approx(correct.mean())
    ref = _scipy_percentile_ci(np.mean, correct, n_resamples=4000, seed=11)
    assert (out["accuracy_ci_low"], out["accuracy_ci_high"]) == pytest.approx(ref, abs=0.03)
    assert out["accuracy_ci_low"] < out["accuracy"] < out["accuracy_ci_high"]


def test_regression_stats_against_scipy():
    from speechbrain_alld.stats import RegressionStats

    rng = np.random.default_rng(3)
    true = rng.uniform(1, 5, size=(30, 3))
    pred = true + rng.normal(0, 0.5, size=(30, 3))
    true[4, 0] = np.nan   # no MOS for item 4: left out of the MOS scores
    true[7, 2] = np.nan   # no coloration for item 7
    st = RegressionStats(["mos", "noi", "col"])
    st.append([str(k) for k in range(20)], pred[:20], true[:20])
    st.append([str(k) for k in range(20, 30)], pred[20:].tolist(), true[20:].tolist())
    out = st.summarize()
    keep = ~np.isnan(true[:, 0])
    assert out["mos_n"] == 29
    assert out["mos_lcc"] == pytest.approx(stats.pearsonr(pred[keep, 0], true[keep, 0])[0])
    assert out["mos_srcc"] == pytest.approx(stats.spearmanr(pred[keep, 0], true[keep, 0])[0])
    assert out["mos_mse"] == pytest.approx(np.mean((pred[keep, 0] - true[keep, 0]) ** 2))
    keep = ~np.isnan(true[:, 2])
    assert out["mos_col_n"] == 29
    assert out["mos_col_lcc"] == pytest.approx(stats.pearsonr(pred[keep, 2], true[keep, 2])[0])
    assert out["mos_dis_n"] == 0  # no target for it: counted, not scored
    assert st.items()[4]["mos"] is None and st.items()[4]["mos_pred"] == pytest.approx(pred[4, 0])
    with pytest.raises(ValueError, match="3 values"):
        st.append(["x"], [[1.0, 2.0]], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="'mos'"):
        RegressionStats(["noi"])
