"""Metrics against scipy / sacrebleu directly and float64 hand values; unparsed never dropped."""

import math

import numpy as np
import pytest
import sacrebleu
from scipy import stats

from speechbrain_alld.metrics import ABStats, MOSStats, ab_metrics, corpus_bleu, mos_metrics


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
