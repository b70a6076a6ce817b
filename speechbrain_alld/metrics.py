"""Scores of generated evaluations against human ratings and expert texts (ALLD-SPEC §6).

Pure functions over lists (``mos_metrics``, ``ab_metrics``, ``corpus_bleu``) and SpeechBrain-style
stats objects that accumulate generated texts during a stage and summarise them at its end
(``MOSStats``, ``ABStats``). Texts whose MOS or verdict cannot be parsed are never dropped
silently: metrics are computed on the parsed items and the unparsed count and share are reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sacrebleu
from scipy import stats as sps

from speechbrain_alld.parsing import parse_mos, parse_verdict


def mos_metrics(predicted: Sequence[float | None], target: Sequence[float]) -> dict[str, Any]:
    """MSE, RMSE, LCC, SRCC, KTAU on the parsed predictions; ``None`` entries are unparsed."""
    if len(predicted) != len(target):
        raise ValueError(f"{len(predicted)} predictions for {len(target)} targets")
    pairs = [(p, t) for p, t in zip(predicted, target) if p is not None]
    n, n_unparsed = len(pairs), len(target) - len(pairs)
    out: dict[str, Any] = {"n": len(target), "n_parsed": n, "n_unparsed": n_unparsed,
                           "unparsed_share": n_unparsed / len(target) if target else 0.0}
    nan = float("nan")
    if n == 0:
        out.update(mse=nan, rmse=nan, lcc=nan, srcc=nan, ktau=nan)
        return out
    p = np.array([x for x, _ in pairs], dtype=np.float64)
    t = np.array([y for _, y in pairs], dtype=np.float64)
    mse = float(np.mean((p - t) ** 2))
    out.update(mse=mse, rmse=math.sqrt(mse))
    if n < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        out.update(lcc=nan, srcc=nan, ktau=nan)  # correlation undefined for constant input
    else:
        out.update(lcc=float(sps.pearsonr(p, t)[0]), srcc=float(sps.spearmanr(p, t)[0]),
                   ktau=float(sps.kendalltau(p, t)[0]))
    return out


def ab_metrics(predicted: Sequence[str | None], target: Sequence[str]) -> dict[str, Any]:
    """A/B accuracy over all items (unparsed count as wrong) and over parsed / non-tie items."""
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
    """sacreBLEU corpus BLEU of hypotheses against one reference each, with its signature."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    metric = sacrebleu.metrics.BLEU()
    score = metric.corpus_score(list(hypotheses), [list(references)])
    return {"bleu": float(score.score), "signature": str(metric.get_signature())}


class MOSStats:
    """Collects (id, generated text, human MOS, expert text) for the MOS task."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.targets: list[float] = []
        self.references: list[str] = []

    def append(self, ids: Sequence[str], texts: Sequence[str], targets: Sequence[float],
               references: Sequence[str]) -> None:
        if not len(ids) == len(texts) == len(targets) == len(references):
            raise ValueError("ids, texts, targets and references must have the same length")
        self.ids += list(ids)
        self.texts += list(texts)
        self.targets += [float(t) for t in targets]
        self.references += list(references)

    def summarize(self, field: str | None = None) -> Any:
        predicted = [parse_mos(t) for t in self.texts]
        out = mos_metrics(predicted, self.targets)
        if self.texts:
            out.update({f"{k}": v for k, v in corpus_bleu(self.texts, self.references).items()})
        return out[field] if field is not None else out

    def items(self) -> list[dict[str, Any]]:
        """Per-item records: id, text, parsed MOS, reference MOS."""
        return [{"id": i, "text": t, "mos_pred": parse_mos(t), "mos": y}
                for i, t, y in zip(self.ids, self.texts, self.targets)]


class ABStats:
    """Collects (id, generated comparison, true winner, expert text) for the A/B task."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.targets: list[str] = []
        self.references: list[str] = []

    def append(self, ids: Sequence[str], texts: Sequence[str], targets: Sequence[str],
               references: Sequence[str]) -> None:
        if not len(ids) == len(texts) == len(targets) == len(references):
            raise ValueError("ids, texts, targets and references must have the same length")
        self.ids += list(ids)
        self.texts += list(texts)
        self.targets += list(targets)
        self.references += list(references)

    def summarize(self, field: str | None = None) -> Any:
        out = ab_metrics([parse_verdict(t) for t in self.texts], self.targets)
        if self.texts:
            out.update(corpus_bleu(self.texts, self.references))
        return out[field] if field is not None else out

    def items(self) -> list[dict[str, Any]]:
        return [{"id": i, "text": t, "verdict_pred": parse_verdict(t), "winner": y}
                for i, t, y in zip(self.ids, self.texts, self.targets)]
