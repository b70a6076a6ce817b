"""The reproduction table's paired comparisons and A/B breakdowns, read from the runs' items.

:mod:`speechbrain_alld.table` aggregates each system's test summary over seeds; this module adds
what a summary alone cannot give: A/B accuracy per |delta MOS| bin (the gaps come from the run's
test manifest) and, for pairs of systems run on the same test items, paired bootstrap 95%
intervals of their differences per seed and for the mean over seeds
(:mod:`speechbrain_alld.comparison`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechbrain_alld.comparison import (
    GAP_BINS,
    accuracy_by_gap,
    mos_differences,
    paired_difference,
    seed_mean_difference,
)
from speechbrain_alld.metrics import mse, pearson, spearman

#: The |delta MOS| from which a pair counts as clearly different (the issue's 90% target).
CLEAR_GAP = 0.5
_MOS_METRICS = (("mse", mse), ("lcc", pearson), ("srcc", spearman))


def items_path(summary_path: str | Path) -> Path:
    """``test_x_items.jsonl`` beside ``test_x_summary.json``."""
    path = Path(summary_path)
    if not path.name.endswith("_summary.json"):
        raise ValueError(f"not a test summary file: {path}")
    return path.with_name(path.name[: -len("_summary.json")] + "_items.jsonl")


def pair_gaps(test_manifest: str | Path) -> dict[str, float]:
    """``{"ab:<pair id>": |delta MOS|}`` from a run's test example manifest."""
    entries = json.loads(Path(test_manifest).read_text(encoding="utf-8"))
    gaps = {k: float(e["gap"]) for k, e in entries.items()
            if e.get("task") == "ab" and e.get("gap") is not None and float(e["gap"]) >= 0}
    if not gaps and any(e.get("task") == "ab" for e in entries.values()):
        raise ValueError(f"{test_manifest}: A/B items carry no 'gap' (made before gaps were "
                         "recorded: rerun the examples stage)")
    return gaps


def ab_breakdown(items: Mapping[str, Mapping[str, Any]], gaps: Mapping[str, float]
                 ) -> dict[str, float]:
    """A/B accuracy per gap bin (``ab_acc_<bin>``, ``ab_n_<bin>``) and on clear pairs
    (``ab_acc_clear``: |delta MOS| >= 0.5), unparsed verdicts counted wrong.

    Example
    -------
    >>> items = {"ab:p": {"verdict_pred": "A", "winner": "A"},
    ...          "ab:q": {"verdict_pred": None, "winner": "B"}}
    >>> out = ab_breakdown(items, {"ab:p": 0.8, "ab:q": 0.2})
    >>> out["ab_acc_clear"], out["ab_acc_<0.25"], out["ab_n_0.5-1"]
    (1.0, 0.0, 1)
    """
    keys = [k for k in items if k.startswith("ab:")]
    missing = [k for k in keys if k not in gaps]
    if missing:
        raise ValueError(f"{len(missing)} A/B item(s) have no gap, e.g. {missing[0]!r}")
    verdicts = [items[k].get("verdict_pred") for k in keys]
    winners = [items[k]["winner"] for k in keys]
    out: dict[str, float] = {}
    for label, v in accuracy_by_gap(verdicts, winners, [gaps[k] for k in keys],
                                    GAP_BINS).items():
        out[f"ab_acc_{label}"] = v["accuracy"]
        out[f"ab_n_{label}"] = v["n"]
    clear = [k for k, key in enumerate(keys) if gaps[key] >= CLEAR_GAP - 1e-9]
    if clear:
        out["ab_acc_clear"] = float(np.mean([verdicts[k] is not None and verdicts[k] == winners[k]
                                             for k in clear]))
        out["ab_n_clear"] = len(clear)
    return out


def _mos_arrays(a: Mapping[str, Any], b: Mapping[str, Any]
                ) -> tuple[list[float], list[float], list[float]]:
    """Both systems' parsed MOS and the target on the MOS items both parsed."""
    keys = sorted(k for k in set(a) & set(b) if k.startswith("mos:"))
    for k in keys:  # 1e-4: the regression baseline keeps its targets in float32
        if abs(float(a[k]["mos"]) - float(b[k]["mos"])) > 1e-4:
            raise ValueError(f"{k}: the two systems were scored against different MOS")
    keep = [k for k in keys if a[k].get("mos_pred") is not None
            and b[k].get("mos_pred") is not None]
    return ([float(a[k]["mos_pred"]) for k in keep], [float(b[k]["mos_pred"]) for k in keep],
            [float(a[k]["mos"]) for k in keep])


def _ab_arrays(a: Mapping[str, Any], b: Mapping[str, Any]
               ) -> tuple[list[float], list[float], list[float]]:
    """Correct-verdict flags of both systems on the A/B items both were asked."""
    keys = sorted(k for k in set(a) & set(b) if k.startswith("ab:"))
    for k in keys:
        if a[k]["winner"] != b[k]["winner"]:
            raise ValueError(f"{k}: the two systems were scored against different winners")
    flag = [[float(x[k].get("verdict_pred") == x[k]["winner"]) for k in keys] for x in (a, b)]
    return flag[0], flag[1], [1.0] * len(keys)


def _accuracy(correct: np.ndarray, _: np.ndarray) -> float:
    return float(np.mean(correct))


def compare_systems(per_seed: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]], *,
                    n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Paired differences (b minus a) per seed and for the mean over seeds.

    Arguments
    ---------
    per_seed : mapping
        ``{seed: (items_a, items_b)}`` (from :func:`read_items`).
    n_resamples, seed
        The bootstrap's resamples and generator seed.

    Returns
    -------
    dict
        ``{"per_seed": {seed: {metric: difference record}}, "mean": {metric: record}}`` for
        ``mse``, ``lcc``, ``srcc`` (items both parsed) and ``ab_accuracy`` (items both were
        asked; unparsed wrong), each metric only where both systems have such items.
    """
    out: dict[str, Any] = {"per_seed": {}, "mean": {}}
    arrays: dict[str, list[tuple[list[float], list[float], list[float]]]] = {}
    for s, (a, b) in per_seed.items():
        rec: dict[str, Any] = {}
        mos = _mos_arrays(a, b)
        if len(mos[0]) >= 3:
            rec.update(mos_differences(*mos, n_resamples=n_resamples, seed=seed))
            arrays.setdefault("mos", []).append(mos)
        ab = _ab_arrays(a, b)
        if ab[0]:
            rec["ab_accuracy"] = paired_difference(_accuracy, *ab, n_resamples=n_resamples,
                                                   seed=seed)
            arrays.setdefault("ab", []).append(ab)
        out["per_seed"][str(s)] = rec
    n_seeds = len(per_seed)
    if len(arrays.get("mos", [])) == n_seeds:
        for name, fn in _MOS_METRICS:
            out["mean"][name] = seed_mean_difference(fn, arrays["mos"], n_resamples=n_resamples,
                                                     seed=seed)
    if len(arrays.get("ab", [])) == n_seeds:
        out["mean"]["ab_accuracy"] = seed_mean_difference(_accuracy, arrays["ab"],
                                                          n_resamples=n_resamples, seed=seed)
    return out


def format_difference(rec: Mapping[str, Any] | None, fmt: str = "f3") -> str:
    """``+0.012 [-0.004, +0.030]`` (``pct``: in points)."""
    if not rec or rec.get("difference") is None or not np.isfinite(rec["difference"]):
        return "–"
    scale, digits = (100.0, 1) if fmt == "pct" else (1.0, int(fmt[1:]))
    d, lo, hi = (scale * float(rec[k]) for k in ("difference", "ci_low", "ci_high"))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{d:+.{digits}f} [no interval]"
    return f"{d:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def comparison_markdown(comparisons: Mapping[str, Mapping[str, Any]], seeds: Sequence[Any],
                        metrics: Sequence[tuple[str, str, str]]) -> str:
    """One row per (comparison, seed), and per comparison's mean when there are several seeds."""
    header = ["comparison (b minus a)", "seed", *[m[0] for m in metrics]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in comparisons.items():
        for s in [*map(str, seeds), *(["mean"] if len(seeds) > 1 else [])]:
            rec = result["mean"] if s == "mean" else result["per_seed"].get(s, {})
            cells = [format_difference(rec.get(key), fmt) for _, key, fmt in metrics]
            label = f"**{name}**" if s == "mean" else name
            lines.append("| " + " | ".join([label, "mean of seeds" if s == "mean" else s, *cells])
                         + " |")
    return "\n".join(lines)
