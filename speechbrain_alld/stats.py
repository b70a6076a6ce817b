"""SpeechBrain-style stats objects: they accumulate a stage's generated texts (or a regression
model's predictions) and summarise them at its end with :mod:`speechbrain_alld.metrics`.

``MOSStats`` and ``ABStats`` are given to ``ALLDBrain`` in the YAML
(``mos_stats: !name:speechbrain_alld.stats.MOSStats``), ``RegressionStats`` to ``RegressionBrain``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechbrain_alld import parsing
from speechbrain_alld.metrics import (
    ab_metrics,
    bootstrap_ci,
    corpus_bleu,
    dimension_metrics,
    mos_metrics,
    mos_metrics_per_condition,
    mse,
    pearson,
    spearman,
)
from speechbrain_alld.parsing import parse_mos, parse_verdict
from speechbrain_alld.ratings import DIMENSIONS


def _with_ci(out: dict[str, Any], name: str, metric_fn: Callable[..., float],
             arrays: Sequence[np.ndarray], n_resamples: int, seed: int) -> None:
    low, high = bootstrap_ci(metric_fn, *arrays, n_resamples=n_resamples, seed=seed)
    out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high


class _TextStats:
    """Shared part of the stats objects: ids, generated texts, targets, reference texts."""

    def __init__(self, bootstrap: int = 0, seed: int = 0) -> None:
        self.bootstrap = bootstrap
        self.seed = seed
        self.clear()

    def clear(self) -> None:
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.targets: list[Any] = []
        self.references: list[str] = []

    def _columns(self) -> list[str]:
        return [name for name, value in vars(self).items() if isinstance(value, list)]

    def entries(self) -> list[tuple[Any, ...]]:
        """One tuple per collected item, every per-item column (``ids`` first among them)."""
        columns = self._columns()
        return list(zip(*(getattr(self, c) for c in columns)))

    def merge_unique(self, parts: Sequence[Sequence[tuple[Any, ...]]],
                     key: Callable[[str], Any] | None = None) -> None:
        """Replace the items by those of ``parts`` (:meth:`entries` of several processes),
        each id once (its first occurrence), sorted by ``key(id)`` when given.

        Example
        -------
        >>> a, b = ABStats(), ABStats()
        >>> a.append(["p1", "p3"], ["A.", "B."], ["A", "B"], ["A.", "B."])
        >>> b.append(["p2", "p1"], ["A.", "A."], ["B", "A"], ["B.", "A."])
        >>> a.merge_unique([a.entries(), b.entries()], key={"p1": 0, "p2": 1, "p3": 2}.get)
        >>> a.ids, a.texts
        (['p1', 'p2', 'p3'], ['A.', 'A.', 'B.'])
        """
        columns = self._columns()
        position = columns.index("ids")
        seen: dict[str, tuple[Any, ...]] = {}
        for part in parts:
            for entry in part:
                seen.setdefault(entry[position], entry)
        rows = list(seen.values())
        if key is not None:
            rows.sort(key=lambda entry: key(entry[position]))
        for k, column in enumerate(columns):
            setattr(self, column, [row[k] for row in rows])

    def _extend(self, ids: Sequence[str], texts: Sequence[str], targets: Sequence[Any],
                references: Sequence[str]) -> None:
        if not len(ids) == len(texts) == len(targets) == len(references):
            raise ValueError("ids, texts, targets and references must have the same length")
        self.ids += list(ids)
        self.texts += list(texts)
        self.targets += list(targets)
        self.references += list(references)


class MOSStats(_TextStats):
    """Collects (id, generated text, human MOS, expert text) for the MOS task.

    Optionally also each item's condition (NISQA ``con``) and dimension targets.

    Arguments
    ---------
    bootstrap : int
        Default number of bootstrap resamples of ``summarize`` (0: no confidence intervals).
    seed : int
        Default seed of the resampling.

    Example
    -------
    >>> stats = MOSStats()
    >>> stats.append(["a", "b", "c"], ["Slightly noisy. MOS: 3.0", "Clean. MOS: 4.5", "No idea."],
    ...              [3.2, 4.4, 2.0], ["Noisy, MOS 3.2", "Clean, MOS 4.4", "Bad, MOS 2.0"])
    >>> out = stats.summarize()
    >>> out["n"], out["n_parsed"], round(out["mse"], 4), round(out["srcc"], 4)
    (3, 2, 0.025, 1.0)
    >>> stats.items()[0]["mos_pred"]
    3.0
    """

    def clear(self) -> None:
        super().clear()
        self.conditions: list[Hashable | None] = []
        self.dimension_targets: list[dict[str, float]] = []

    def append(self, ids: Sequence[str], texts: Sequence[str], targets: Sequence[float],
               references: Sequence[str], conditions: Sequence[Hashable | None] | None = None,
               dimensions: Sequence[Mapping[str, float | None] | None] | None = None) -> None:
        """Add a batch; ``conditions`` and ``dimensions`` (targets per item) are optional."""
        if conditions is not None and len(conditions) != len(ids):
            raise ValueError("conditions must have the same length as ids")
        if dimensions is not None and len(dimensions) != len(ids):
            raise ValueError("dimensions must have the same length as ids")
        self._extend(ids, texts, [float(t) for t in targets], references)
        self.conditions += list(conditions) if conditions is not None else [None] * len(ids)
        self.dimension_targets += [
            {k: float(v) for k, v in (d or {}).items() if k in DIMENSIONS and v is not None}
            for d in (dimensions if dimensions is not None else [None] * len(ids))]

    @staticmethod
    def _parse_dimensions(text: str) -> dict[str, float]:
        return dict(parsing.parse_dimensions(text))

    def summarize(self, field: str | None = None, *, bootstrap: int | None = None,
                  seed: int | None = None) -> Any:
        """Scores (``mos_metrics`` + BLEU); with ``bootstrap`` > 0 resamples, 95% CIs of
        mse/lcc/srcc; ``{dim}_*`` scores when dimension targets were given; ``cond_*`` scores
        and ``n_conditions`` when conditions were given."""
        bootstrap = self.bootstrap if bootstrap is None else bootstrap
        seed = self.seed if seed is None else seed
        predicted = [parse_mos(t) for t in self.texts]
        out = mos_metrics(predicted, self.targets)
        if bootstrap > 0:
            keep = [k for k, p in enumerate(predicted) if p is not None]
            arrays = (np.array([predicted[k] for k in keep], dtype=np.float64),
                      np.array([self.targets[k] for k in keep], dtype=np.float64))
            for name, fn in (("mse", mse), ("lcc", pearson), ("srcc", spearman)):
                _with_ci(out, name, fn, arrays, bootstrap, seed)
        if any(self.dimension_targets):
            dims = [self._parse_dimensions(t) for t in self.texts]
            out.update(dimension_metrics(dims, self.dimension_targets))
        if any(c is not None for c in self.conditions):
            cond = mos_metrics_per_condition(predicted, self.targets, self.conditions)
            out.update({f"cond_{k}": cond[k] for k in ("mse", "rmse", "lcc", "srcc", "ktau")})
            out.update(n_conditions=cond["n_conditions"],
                       n_conditions_parsed=cond["n_conditions_parsed"],
                       n_no_condition=cond["n_no_condition"])
        if self.texts:
            out.update({f"{k}": v for k, v in corpus_bleu(self.texts, self.references).items()})
        return out[field] if field is not None else out

    def items(self) -> list[dict[str, Any]]:
        """Per-item records: id, text, parsed MOS, reference MOS, condition (and dimensions
        when dimension targets were given)."""
        records = []
        for k, (i, t, y) in enumerate(zip(self.ids, self.texts, self.targets)):
            rec = {"id": i, "text": t, "mos_pred": parse_mos(t), "mos": y,
                   "condition": self.conditions[k]}
            if self.dimension_targets[k]:
                rec.update(dims_pred=self._parse_dimensions(t), dims=self.dimension_targets[k])
            records.append(rec)
        return records


class ABStats(_TextStats):
    """Collects (id, generated comparison, true winner, expert text) for the A/B task.

    Arguments
    ---------
    bootstrap : int
        Default number of bootstrap resamples of ``summarize`` (0: no confidence interval).
    seed : int
        Default seed of the resampling.

    Example
    -------
    >>> stats = ABStats()
    >>> stats.append(["p1", "p2"], ["I prefer Speech A.", "Speech B is better."], ["A", "A"],
    ...              ["I prefer Speech A.", "I prefer Speech A."])
    >>> stats.summarize("accuracy")
    0.5
    >>> [item["verdict_pred"] for item in stats.items()]
    ['A', 'B']
    """

    def append(self, ids: Sequence[str], texts: Sequence[str], targets: Sequence[str],
               references: Sequence[str]) -> None:
        self._extend(ids, texts, targets, references)

    def summarize(self, field: str | None = None, *, bootstrap: int | None = None,
                  seed: int | None = None) -> Any:
        """``ab_metrics`` + BLEU; with ``bootstrap`` > 0 resamples, a 95% CI of ``accuracy``
        (over all items, unparsed counted as wrong)."""
        bootstrap = self.bootstrap if bootstrap is None else bootstrap
        seed = self.seed if seed is None else seed
        verdicts = [parse_verdict(t) for t in self.texts]
        out = ab_metrics(verdicts, self.targets)
        if bootstrap > 0:
            correct = np.array([p is not None and p == t for p, t in zip(verdicts, self.targets)],
                               dtype=np.float64)
            _with_ci(out, "accuracy", np.mean, [correct], bootstrap, seed)
        if self.texts:
            out.update(corpus_bleu(self.texts, self.references))
        return out[field] if field is not None else out

    def items(self) -> list[dict[str, Any]]:
        return [{"id": i, "text": t, "verdict_pred": parse_verdict(t), "winner": y}
                for i, t, y in zip(self.ids, self.texts, self.targets)]


class RegressionStats:
    """Collects a regression model's rating predictions and the human ratings.

    ``append`` takes ``[B, K]`` predictions and targets whose columns are ``names`` (``nan``
    marks a missing rating); ``summarize`` gives ``mos_metrics`` on MOS and
    ``dimension_metrics`` on the dimensions, keys prefixed like the generative stats'
    (``mos_lcc``, ``mos_noi_lcc``, ...).

    Arguments
    ---------
    names : Sequence[str]
        The predicted ratings, one per column: ``"mos"`` (required) and dimension keys.

    Example
    -------
    >>> stats = RegressionStats(["mos", "noi"])
    >>> stats.append(["a", "b", "c"], [[3.0, 2.0], [4.0, 3.5], [2.0, 1.0]],
    ...              [[3.2, float("nan")], [4.4, 3.0], [2.1, 1.5]])
    >>> out = stats.summarize()
    >>> out["mos_n"], round(out["mos_mse"], 4), out["mos_noi_n"], out["mos_noi_mse"]
    (3, 0.07, 2, 0.25)
    >>> stats.items()[0]
    {'id': 'a', 'mos_pred': 3.0, 'noi_pred': 2.0, 'mos': 3.2, 'noi': None}
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        if "mos" not in self.names:
            raise ValueError(f"the predicted ratings {self.names} do not include 'mos'")
        self.ids: list[str] = []
        self.predictions: list[list[float]] = []
        self.targets: list[list[float]] = []

    def append(self, ids: Sequence[str], predictions: Any, targets: Any) -> None:
        """Add a batch (tensors or nested lists of shape ``[B, len(names)]``)."""
        pred = np.asarray(predictions, dtype=np.float64).tolist()
        true = np.asarray(targets, dtype=np.float64).tolist()
        if not len(ids) == len(pred) == len(true):
            raise ValueError("ids, predictions and targets must have the same length")
        if any(len(row) != len(self.names) for row in pred + true):
            raise ValueError(f"each row must hold {len(self.names)} values ({self.names})")
        self.ids += list(ids)
        self.predictions += pred
        self.targets += true

    def _known(self, row: Sequence[float], name: str) -> float | None:
        value = row[self.names.index(name)]
        return None if math.isnan(value) else value

    def summarize(self) -> dict[str, Any]:
        """MOS scores over the items with a MOS target, and each dimension's scores."""
        rows = [(p, t) for p, t in zip(self.predictions, self.targets)
                if self._known(t, "mos") is not None]
        k = self.names.index("mos")
        out = {f"mos_{key}": v for key, v in mos_metrics([p[k] for p, _ in rows],
                                                          [t[k] for _, t in rows]).items()}
        dims = [n for n in self.names if n in DIMENSIONS]
        if dims:
            out.update({f"mos_{key}": v for key, v in dimension_metrics(
                [{d: p[self.names.index(d)] for d in dims} for p in self.predictions],
                [{d: self._known(t, d) for d in dims} for t in self.targets]).items()})
        return out

    def items(self) -> list[dict[str, Any]]:
        """Per item: id, each rating's prediction (``<name>_pred``) and target (or None)."""
        return [{"id": i, **{f"{n}_pred": p[c] for c, n in enumerate(self.names)},
                 **{n: self._known(t, n) for n in self.names}}
                for i, p, t in zip(self.ids, self.predictions, self.targets)]


def read_items(path: str | Path) -> dict[str, dict[str, Any]]:
    """A test items file by item id; a regression run's plain clip ids become ``mos:<id>``."""
    out: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = str(row["id"])
            except (json.JSONDecodeError, KeyError, TypeError, IndexError) as err:
                raise ValueError(f"{path}, line {line_no}: not an item record ({err})") from None
            out[key if key.startswith(("mos:", "ab:")) else f"mos:{key}"] = row
    return out
