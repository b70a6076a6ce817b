"""Scores of generated evaluations against human ratings and expert texts (ALLD-SPEC §6).

Pure functions over lists (``mos_metrics``, ``ab_metrics``, ``corpus_bleu``, ``pearson``, ...);
the stats objects that accumulate texts during a stage are in :mod:`speechbrain_alld.stats`.
Texts whose MOS or verdict cannot be parsed are never dropped silently: metrics are computed on
the parsed items and the unparsed count and share are reported.

Also: per-dimension scores (``dimension_metrics``), percentile bootstrap confidence intervals
(``bootstrap_ci``) and NISQA-style per-condition scores on condition means
(``condition_aggregate``, ``mos_metrics_per_condition``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import sacrebleu
from scipy import stats as sps

from speechbrain_alld.ratings import DIMENSIONS

_NAN = float("nan")


def mos_metrics(predicted: Sequence[float | None], target: Sequence[float]) -> dict[str, Any]:
    """MSE, RMSE, LCC, SRCC and KTAU of the parsed MOS predictions against the human MOS.

    The scores use the items whose prediction was parsed; the others are counted. Correlations
    are nan when undefined (fewer than 2 parsed items or a constant input).

    Arguments
    ---------
    predicted : Sequence[float | None]
        The MOS read from each generated text; ``None`` for a text without one (unparsed).
    target : Sequence[float]
        The human MOS of each item.

    Returns
    -------
    dict[str, Any]
        ``n``, ``n_parsed``, ``n_unparsed``, ``unparsed_share``, ``mse``, ``rmse``, ``lcc``
        (Pearson), ``srcc`` (Spearman) and ``ktau`` (Kendall's tau-b).

    Example
    -------
    >>> out = mos_metrics([3.0, None, 4.0, 2.0], [3.5, 2.0, 4.5, 1.0])
    >>> out["n"], out["n_parsed"], out["n_unparsed"], out["unparsed_share"]
    (4, 3, 1, 0.25)
    >>> out["mse"], round(out["lcc"], 4), out["srcc"], out["ktau"]
    (0.5, 0.9707, 1.0, 1.0)
    """
    if len(predicted) != len(target):
        raise ValueError(f"{len(predicted)} predictions for {len(target)} targets")
    pairs = [(p, t) for p, t in zip(predicted, target) if p is not None]
    n, n_unparsed = len(pairs), len(target) - len(pairs)
    out: dict[str, Any] = {"n": len(target), "n_parsed": n, "n_unparsed": n_unparsed,
                           "unparsed_share": n_unparsed / len(target) if target else 0.0}
    if n == 0:
        out.update(mse=_NAN, rmse=_NAN, lcc=_NAN, srcc=_NAN, ktau=_NAN)
        return out
    p = np.array([x for x, _ in pairs], dtype=np.float64)
    t = np.array([y for _, y in pairs], dtype=np.float64)
    err = mse(p, t)
    out.update(mse=err, rmse=math.sqrt(err), lcc=pearson(p, t), srcc=spearman(p, t),
               ktau=kendall(p, t))
    return out


def ab_metrics(predicted: Sequence[str | None], target: Sequence[str]) -> dict[str, Any]:
    """Accuracy of A/B verdicts: over all items, over the parsed ones and over non-tie items.

    Arguments
    ---------
    predicted : Sequence[str | None]
        The verdict read from each comparison text (``"A"``, ``"B"``, ``"tie"``), ``None``
        when unparsed.
    target : Sequence[str]
        The true winner of each pair (``"A"``, ``"B"`` or ``"tie"``).

    Returns
    -------
    dict[str, Any]
        ``n``, ``n_parsed``, ``n_unparsed``, ``unparsed_share``, ``accuracy`` (over all items,
        an unparsed verdict counts as wrong), ``accuracy_parsed`` (over the parsed verdicts) and
        ``accuracy_non_tie`` (over the parsed verdicts of pairs that are not a tie).

    Example
    -------
    >>> out = ab_metrics(["A", "B", None, "A"], ["A", "A", "B", "tie"])
    >>> out["n_parsed"], out["accuracy"], out["accuracy_non_tie"]
    (3, 0.25, 0.5)
    >>> round(out["accuracy_parsed"], 3)
    0.333
    """
    if len(predicted) != len(target):
        raise ValueError(f"{len(predicted)} verdicts for {len(target)} targets")
    n = len(target)
    parsed = [(p, t) for p, t in zip(predicted, target) if p is not None]
    decided = [(p, t) for p, t in parsed if t != "tie"]
    correct = sum(p == t for p, t in parsed)
    return {
        "n": n,
        "n_parsed": len(parsed),
        "n_unparsed": n - len(parsed),
        "unparsed_share": (n - len(parsed)) / n if n else 0.0,
        "accuracy": correct / n if n else float("nan"),
        "accuracy_parsed": correct / len(parsed) if parsed else float("nan"),
        "accuracy_non_tie": (sum(p == t for p, t in decided) / len(decided) if decided
                             else float("nan")),
    }


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """sacreBLEU corpus BLEU of hypotheses against one reference each, with its signature.

    Arguments
    ---------
    hypotheses : Sequence[str]
        The generated texts.
    references : Sequence[str]
        One reference (expert) text per hypothesis.

    Returns
    -------
    dict[str, Any]
        ``bleu`` (0..100) and ``signature`` (sacreBLEU's description of the settings).

    Example
    -------
    >>> out = corpus_bleu(["the speech is clean"], ["the speech is clean"])
    >>> round(out["bleu"], 6), out["signature"].startswith("nrefs:1|")
    (100.0, True)
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    metric = sacrebleu.metrics.BLEU()
    score = metric.corpus_score(list(hypotheses), [list(references)])
    return {"bleu": float(score.score), "signature": str(metric.get_signature())}


def _correlation_defined(p: np.ndarray, t: np.ndarray) -> bool:
    """Whether a correlation of ``p`` and ``t`` is defined: 2+ items, neither input constant."""
    return len(p) >= 2 and np.ptp(p) != 0 and np.ptp(t) != 0


def pearson(p: np.ndarray, t: np.ndarray) -> float:
    """Pearson correlation (LCC) by ``scipy.stats.pearsonr``; nan when undefined.

    Arguments
    ---------
    p, t : np.ndarray
        Predictions and targets, same length.

    Returns
    -------
    The correlation, or nan for fewer than 2 items or a constant input.

    Example
    -------
    >>> round(pearson(np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 4.0])), 4)
    0.9286
    >>> pearson(np.array([1.0, 1.0]), np.array([1.0, 2.0]))
    nan
    """
    return float(sps.pearsonr(p, t)[0]) if _correlation_defined(p, t) else _NAN


def spearman(p: np.ndarray, t: np.ndarray) -> float:
    """Spearman rank correlation (SRCC) by ``scipy.stats.spearmanr``; nan when undefined.

    Example
    -------
    >>> spearman(np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 40.0]))
    1.0
    """
    return float(sps.spearmanr(p, t)[0]) if _correlation_defined(p, t) else _NAN


def kendall(p: np.ndarray, t: np.ndarray) -> float:
    """Kendall's tau-b by ``scipy.stats.kendalltau``; nan when undefined.

    Example
    -------
    >>> round(kendall(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])), 4)
    0.3333
    """
    return float(sps.kendalltau(p, t)[0]) if _correlation_defined(p, t) else _NAN


def mse(p: np.ndarray, t: np.ndarray) -> float:
    """Mean squared error, in float64.

    Example
    -------
    >>> mse(np.array([1.0, 2.0]), np.array([2.0, 2.0]))
    0.5
    """
    return float(np.mean((np.asarray(p, np.float64) - np.asarray(t, np.float64)) ** 2))


def dimension_metrics(predicted: Sequence[Mapping[str, float | None] | None],
                      targets: Sequence[Mapping[str, float | None] | None]) -> dict[str, Any]:
    """Per-dimension scores for each of :data:`~speechbrain_alld.ratings.DIMENSIONS`.

    ``{dim}_n`` counts the items with a target for the dimension; the scores use those whose
    prediction states it (``None``, nan or a missing key is unparsed, counted in
    ``{dim}_n_unparsed``).

    Arguments
    ---------
    predicted : Sequence[Mapping[str, float | None] | None]
        The dimension values read from each text (``None`` for nothing read).
    targets : Sequence[Mapping[str, float | None] | None]
        The human dimension ratings of each item (``None``/nan/missing: not rated).

    Returns
    -------
    dict[str, Any]
        Flat: ``{dim}_n``, ``{dim}_n_parsed``, ``{dim}_n_unparsed``, ``{dim}_mse`` and
        ``{dim}_lcc`` (nan when undefined) per dimension.

    Example
    -------
    >>> out = dimension_metrics([{"noi": 2.0, "col": 4.0}, {"noi": 3.0}, None],
    ...                         [{"noi": 1.5, "col": 4.5}, {"noi": 3.5, "col": 3.0}, {"noi": 4.0}])
    >>> out["noi_n"], out["noi_n_parsed"], out["noi_n_unparsed"], out["noi_mse"], out["noi_lcc"]
    (3, 2, 1, 0.25, 1.0)
    >>> out["col_n_parsed"], out["col_mse"], out["col_lcc"], out["dis_n"]
    (1, 0.25, nan, 0)
    """
    if len(predicted) != len(targets):
        raise ValueError(f"{len(predicted)} predictions for {len(targets)} targets")
    out: dict[str, Any] = {}
    for dim in DIMENSIONS:
        pairs, n = [], 0
        for pred, tgt in zip(predicted, targets):
            y = (tgt or {}).get(dim)
            if y is None or (isinstance(y, float) and math.isnan(y)):
                continue
            n += 1
            x = (pred or {}).get(dim)
            if x is not None and not (isinstance(x, float) and math.isnan(x)):
                pairs.append((float(x), float(y)))
        p = np.array([x for x, _ in pairs], dtype=np.float64)
        t = np.array([y for _, y in pairs], dtype=np.float64)
        out.update({f"{dim}_n": n, f"{dim}_n_parsed": len(pairs),
                    f"{dim}_n_unparsed": n - len(pairs),
                    f"{dim}_mse": mse(p, t) if pairs else _NAN, f"{dim}_lcc": pearson(p, t)})
    return out


def bootstrap_ci(metric_fn: Callable[..., float], *arrays: Sequence[Any] | np.ndarray,
                 n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric_fn(*arrays)`` over items.

    Items (axis 0) are resampled with replacement, jointly across ``arrays`` (paired), with
    ``numpy.random.default_rng(seed)``; the interval is the ``(1 -/+ confidence) / 2`` quantiles
    (linear interpolation) of the resampled statistic. Resamples on which the statistic is
    undefined (nan, e.g. a constant resample for a correlation) are left out.

    Arguments
    ---------
    metric_fn : Callable[..., float]
        The statistic, called with one resampled array per entry of ``arrays``.
    *arrays : Sequence[Any] | np.ndarray
        Paired data, all of the same length.
    n_resamples : int
        How many bootstrap resamples to draw.
    confidence : float
        The coverage of the interval, in (0, 1).
    seed : int
        Seed of the resampling generator.

    Returns
    -------
    tuple[float, float]
        The low and high ends; ``(nan, nan)`` if there are no items or no resample gives a
        value.

    Example
    -------
    >>> low, high = bootstrap_ci(np.mean, [1.0, 2.0, 3.0, 4.0], n_resamples=200)
    >>> bool(1.0 <= low < 2.5 < high <= 4.0)
    True
    >>> bootstrap_ci(np.mean, [2.0, 2.0], n_resamples=10)
    (2.0, 2.0)
    >>> bootstrap_ci(np.mean, [])
    (nan, nan)
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    data = [np.asarray(a) for a in arrays]
    n = len(data[0])
    if any(len(a) != n for a in data):
        raise ValueError(f"arrays of different lengths: {[len(a) for a in data]}")
    if n == 0:
        return _NAN, _NAN
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples, dtype=np.float64)
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        values[b] = metric_fn(*(a[idx] for a in data))
    values = values[~np.isnan(values)]
    if values.size == 0:
        return _NAN, _NAN
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def condition_aggregate(conditions: Sequence[Hashable | None], predicted: Sequence[float | None],
                        target: Sequence[float], *,
                        key: Callable[[Any], Hashable | None] | None = None,
                        ) -> tuple[dict[Hashable, float], dict[Hashable, float]]:
    """Mean prediction and mean target per condition (NISQA ``con``), over parsed items only.

    Unparsed predictions (``None``) are left out of both means so that each pair covers the same
    items; items without a condition (``None``) and conditions without any parsed item are left
    out.

    Arguments
    ---------
    conditions : Sequence[Hashable | None]
        One condition label per item, or item ids mapped to labels by ``key``.
    predicted : Sequence[float | None]
        The parsed MOS per item (``None``: unparsed).
    target : Sequence[float]
        The human MOS per item.
    key : Callable[[Any], Hashable | None] | None
        Maps each entry of ``conditions`` to its label (``None``: the entries are labels).

    Returns
    -------
    tuple[dict[Hashable, float], dict[Hashable, float]]
        The mean prediction and the mean target per condition; both dicts have the same keys,
        in order of first appearance.

    Example
    -------
    >>> condition_aggregate(["c1", "c2", "c1", None], [2.0, None, 4.0, 5.0], [1.0, 3.0, 2.0, 5.0])
    ({'c1': 3.0}, {'c1': 1.5})
    """
    if not len(conditions) == len(predicted) == len(target):
        raise ValueError(f"{len(conditions)} conditions, {len(predicted)} predictions and "
                         f"{len(target)} targets")
    sums: dict[Hashable, list[float]] = {}
    for c, p, t in zip(conditions, predicted, target):
        con = key(c) if key is not None else c
        if con is None or p is None:
            continue
        acc = sums.setdefault(con, [0.0, 0.0, 0])
        acc[0] += float(p)
        acc[1] += float(t)
        acc[2] += 1
    pred_means = {c: ps / k for c, (ps, _, k) in sums.items()}
    target_means = {c: ts / k for c, (_, ts, k) in sums.items()}
    return pred_means, target_means


def mos_metrics_per_condition(predicted: Sequence[float | None], target: Sequence[float],
                              conditions: Sequence[Hashable | None], *,
                              key: Callable[[Any], Hashable | None] | None = None,
                              ) -> dict[str, Any]:
    """:func:`mos_metrics` on per-condition means (see :func:`condition_aggregate`).

    Arguments
    ---------
    predicted : Sequence[float | None]
        The parsed MOS per item (``None``: unparsed).
    target : Sequence[float]
        The human MOS per item.
    conditions : Sequence[Hashable | None]
        One condition label per item (``None``: no condition), or ids mapped by ``key``.
    key : Callable[[Any], Hashable | None] | None
        Maps each entry of ``conditions`` to its label (``None``: the entries are labels).

    Returns
    -------
    dict[str, Any]
        The scores of :func:`mos_metrics` on the condition means. Item counts (``n``,
        ``n_parsed``, ``n_unparsed``, ``unparsed_share``, ``n_no_condition``) refer to items;
        ``n_conditions`` counts the distinct conditions, ``n_conditions_parsed`` those with at
        least one parsed item, on which the scores are computed.

    Example
    -------
    >>> out = mos_metrics_per_condition([2.0, 2.4, 4.0, None, 3.0], [1.0, 1.4, 4.0, 2.0, 3.2],
    ...                                 ["c1", "c1", "c2", "c3", "c4"])
    >>> out["n"], out["n_parsed"], out["n_conditions"], out["n_conditions_parsed"]
    (5, 4, 4, 3)
    >>> round(out["mse"], 4), out["srcc"]
    (0.3467, 1.0)
    """
    if not len(conditions) == len(predicted) == len(target):
        raise ValueError(f"{len(conditions)} conditions, {len(predicted)} predictions and "
                         f"{len(target)} targets")
    labels = [key(c) if key is not None else c for c in conditions]
    pred_means, target_means = condition_aggregate(labels, predicted, target)
    out = mos_metrics(list(pred_means.values()), list(target_means.values()))
    n_parsed = sum(p is not None for p in predicted)
    n = len(target)
    out.update(n=n, n_parsed=n_parsed, n_unparsed=n - n_parsed,
               unparsed_share=(n - n_parsed) / n if n else 0.0,
               n_no_condition=sum(c is None for c in labels),
               n_conditions=len({c for c in labels if c is not None}),
               n_conditions_parsed=len(pred_means))
    return out
