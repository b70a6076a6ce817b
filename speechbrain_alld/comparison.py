"""Comparing two systems on the same test items: paired bootstrap differences, A/B accuracy per
MOS gap, and swap consistency (the functional part of issue #12's "differences with confidence").

All functions are pure: predictions in, numbers out. Unparsed predictions are ``None``: a MOS
comparison uses the items both systems parsed; an A/B accuracy counts an unparsed verdict wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from speechbrain_alld.metrics import bootstrap_ci, mse, pearson, spearman

GAP_BINS = (0.25, 0.5, 1.0)  # |delta MOS| bin edges: < 0.25, 0.25-0.5, 0.5-1, > 1
_FLIP = {"A": "B", "B": "A", "tie": "tie"}


def paired_difference(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    predicted_a: Sequence[float],
    predicted_b: Sequence[float],
    target: Sequence[float],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """``metric_fn(b, target) - metric_fn(a, target)`` with a paired percentile bootstrap
    interval: the items are resampled once per replicate for both systems.

    Arguments
    ---------
    metric_fn : callable
        ``(predicted, target) -> float`` on arrays (e.g. :func:`~speechbrain_alld.metrics.mse`).
    predicted_a, predicted_b : sequence of float
        The two systems' predictions for the same items (system b minus system a).
    target : sequence of float
        The items' targets.
    n_resamples, confidence, seed
        As in :func:`~speechbrain_alld.metrics.bootstrap_ci`.

    Returns
    -------
    dict
        ``difference``, ``ci_low``, ``ci_high`` and ``n`` (items).

    Example
    -------
    >>> out = paired_difference(mse, [1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.5, 4.5],
    ...                         [1.0, 2.0, 3.0, 4.0], n_resamples=100)
    >>> out["difference"], out["ci_low"], out["ci_high"], out["n"]
    (0.25, 0.25, 0.25, 4)
    """
    a, b, t = (np.asarray(x, dtype=np.float64) for x in (predicted_a, predicted_b, target))
    if not len(a) == len(b) == len(t):
        raise ValueError(f"predictions and targets differ in length: {len(a)}, {len(b)}, "
                         f"{len(t)}")

    def difference(pa: np.ndarray, pb: np.ndarray, tt: np.ndarray) -> float:
        return float(metric_fn(pb, tt) - metric_fn(pa, tt))

    low, high = bootstrap_ci(difference, a, b, t, n_resamples=n_resamples,
                             confidence=confidence, seed=seed)
    value = difference(a, b, t) if len(t) else float("nan")
    return {"difference": value, "ci_low": low, "ci_high": high, "n": int(len(t))}


def mos_differences(
    predicted_a: Sequence[float | None],
    predicted_b: Sequence[float | None],
    target: Sequence[float],
    **bootstrap: Any,
) -> dict[str, dict[str, float]]:
    """Paired differences (b minus a) of MSE, LCC and SRCC on the items both systems parsed.

    Example
    -------
    >>> out = mos_differences([3.0, 2.0, None, 4.0], [3.1, 2.2, 1.0, 3.9], [3.0, 2.0, 1.0, 4.0],
    ...                       n_resamples=50)
    >>> out["mse"]["n"], round(out["mse"]["difference"], 4)
    (3, 0.02)
    """
    if not len(predicted_a) == len(predicted_b) == len(target):
        raise ValueError("predictions and targets differ in length")
    keep = [k for k, (pa, pb) in enumerate(zip(predicted_a, predicted_b))
            if pa is not None and pb is not None]
    a = [float(predicted_a[k]) for k in keep]
    b = [float(predicted_b[k]) for k in keep]
    t = [float(target[k]) for k in keep]
    return {name: paired_difference(fn, a, b, t, **bootstrap)
            for name, fn in (("mse", mse), ("lcc", pearson), ("srcc", spearman))}


def ab_accuracy_difference(
    verdicts_a: Sequence[str | None],
    verdicts_b: Sequence[str | None],
    winners: Sequence[str],
    **bootstrap: Any,
) -> dict[str, float]:
    """Paired difference (b minus a) of A/B accuracy over all pairs, unparsed counted wrong.

    Example
    -------
    >>> out = ab_accuracy_difference(["A", "B", None, "A"], ["A", "A", "B", "A"],
    ...                              ["A", "A", "B", "B"], n_resamples=50)
    >>> out["difference"], out["n"]
    (0.5, 4)
    """
    if not len(verdicts_a) == len(verdicts_b) == len(winners):
        raise ValueError("verdicts and winners differ in length")
    correct_a = [float(v is not None and v == w) for v, w in zip(verdicts_a, winners)]
    correct_b = [float(v is not None and v == w) for v, w in zip(verdicts_b, winners)]
    ones = [1.0] * len(winners)  # the "target" of an accuracy: the mean of correct flags

    def accuracy(correct: np.ndarray, _: np.ndarray) -> float:
        return float(np.mean(correct))

    return paired_difference(accuracy, correct_a, correct_b, ones, **bootstrap)


def gap_bin(gap: float, edges: Sequence[float] = GAP_BINS) -> str:
    """The label of the |delta MOS| bin ``gap`` falls in.

    Example
    -------
    >>> [gap_bin(g) for g in (0.1, 0.25, 0.7, 1.0, 2.5)]
    ['<0.25', '0.25-0.5', '0.5-1', '>=1', '>=1']
    """
    gap = abs(float(gap))
    labels = gap_labels(edges)
    for label, edge in zip(labels, edges):
        if gap < edge - 1e-9:  # |4.1 - 3.1| is 0.9999999999999996: a gap of 1.0
            return label
    return labels[-1]


def gap_labels(edges: Sequence[float] = GAP_BINS) -> list[str]:
    """The bin labels of ``edges``, in increasing order.

    Example
    -------
    >>> gap_labels()
    ['<0.25', '0.25-0.5', '0.5-1', '>=1']
    """
    return ([f"<{edges[0]:g}"] + [f"{lo:g}-{hi:g}" for lo, hi in zip(edges, edges[1:])]
            + [f">={edges[-1]:g}"])


def accuracy_by_gap(
    verdicts: Sequence[str | None],
    winners: Sequence[str],
    gaps: Sequence[float],
    edges: Sequence[float] = GAP_BINS,
) -> dict[str, dict[str, float]]:
    """A/B accuracy per |delta MOS| bin (unparsed counted wrong): ``{bin: {"n", "accuracy"}}``,
    bins in increasing order, empty bins left out.

    Example
    -------
    >>> out = accuracy_by_gap(["A", "B", "A", None], ["A", "A", "A", "B"], [0.1, 0.2, 0.8, 1.5])
    >>> [(label, v["n"], v["accuracy"]) for label, v in out.items()]
    [('<0.25', 2, 0.5), ('0.5-1', 1, 1.0), ('>=1', 1, 0.0)]
    """
    if not len(verdicts) == len(winners) == len(gaps):
        raise ValueError("verdicts, winners and gaps differ in length")
    order = gap_labels(edges)
    counts: dict[str, list[float]] = {}
    for verdict, winner, gap in zip(verdicts, winners, gaps):
        counts.setdefault(gap_bin(gap, edges), []).append(
            float(verdict is not None and verdict == winner))
    return {label: {"n": len(counts[label]), "accuracy": float(np.mean(counts[label]))}
            for label in order if label in counts}


def swap_consistency(verdicts: Sequence[str | None], swapped: Sequence[str | None]) -> float:
    """Share of pairs whose verdict survives swapping the two clips: asked about (x, y) and
    about (y, x), a consistent judge answers "A" then "B" (or "B" then "A", or tie twice). An
    unparsed verdict in either order counts as inconsistent.

    Example
    -------
    >>> swap_consistency(["A", "B", "A", None], ["B", "A", "A", "B"])
    0.5
    """
    if len(verdicts) != len(swapped):
        raise ValueError("verdicts and swapped verdicts differ in length")
    if not verdicts:
        return float("nan")
    same = [v is not None and s is not None and _FLIP.get(v) == s
            for v, s in zip(verdicts, swapped)]
    return float(np.mean(same))


def seed_mean_difference(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    per_seed: Sequence[tuple[Sequence[float], Sequence[float], Sequence[float]]],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """The mean over seeds of ``metric_fn(b) - metric_fn(a)``, with a percentile interval from
    resampling the items of every seed independently (a stratified paired bootstrap: the seeds
    are the runs being averaged, the items within a seed are what is resampled).

    Arguments
    ---------
    metric_fn : callable
        ``(predicted, target) -> float``.
    per_seed : sequence of (predicted_a, predicted_b, target)
        One triple per seed (the seeds may have different items).
    n_resamples, confidence, seed
        As in :func:`~speechbrain_alld.metrics.bootstrap_ci`.

    Returns
    -------
    dict
        ``difference`` (the mean of the per-seed differences), ``ci_low``, ``ci_high``,
        ``seeds`` and ``n`` (items over all seeds).

    Example
    -------
    >>> same = ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
    >>> out = seed_mean_difference(mse, [same, same], n_resamples=50)
    >>> out["difference"], out["ci_low"], out["ci_high"], out["seeds"]
    (0.0, 0.0, 0.0, 2)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    data = []
    for a, b, t in per_seed:
        arrays = tuple(np.asarray(x, dtype=np.float64) for x in (a, b, t))
        if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]):
            raise ValueError("predictions and targets differ in length within a seed")
        data.append(arrays)
    if not data or any(len(a) == 0 for a, _, _ in data):
        return {"difference": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "seeds": len(data), "n": sum(len(a) for a, _, _ in data)}

    def mean_difference(index: Sequence[np.ndarray | slice]) -> float:
        return float(np.mean([metric_fn(b[i], t[i]) - metric_fn(a[i], t[i])
                              for (a, b, t), i in zip(data, index)]))

    value = mean_difference([slice(None)] * len(data))
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        v = mean_difference([rng.integers(0, len(a), len(a)) for a, _, _ in data])
        if np.isfinite(v):
            stats.append(v)
    alpha = (1.0 - confidence) / 2.0
    low, high = ((float(np.quantile(stats, alpha)), float(np.quantile(stats, 1.0 - alpha)))
                 if stats else (float("nan"), float("nan")))
    return {"difference": value, "ci_low": low, "ci_high": high, "seeds": len(data),
            "n": int(sum(len(a) for a, _, _ in data))}
