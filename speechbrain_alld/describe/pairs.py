"""A/B pair sampling from a rated manifest.

Pairs are drawn without repetition (no unordered pair twice, no clip with itself), must differ in
MOS by at least ``min_gap`` (or, with ``tie_threshold`` set, by less than it, and are then labelled
a tie), and are ordered so that the winner is Speech A in half of the non-tie pairs. Everything
is deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from speechbrain.utils.logger import get_logger

from speechbrain_alld.ratings import RatingRecord

logger = get_logger(__name__)

#: Below this many clips every candidate pair is enumerated; above, pairs are drawn at random.
_ENUMERATE_LIMIT = 3000


@dataclass(frozen=True)
class Pair:
    """An ordered pair of clips and the expected verdict.

    Arguments
    ---------
    a : str
        The clip id of Speech A.
    b : str
        The clip id of Speech B.
    winner : str
        ``"A"``, ``"B"`` or ``"tie"``.
    gap : float
        ``|MOS_A - MOS_B|``.

    Example
    -------
    >>> Pair("c1", "c2", "A", 1.0).pair_id
    'c1__vs__c2'
    """

    a: str
    b: str
    winner: str  # "A", "B" or "tie"
    gap: float  # |MOS_A - MOS_B|

    @property
    def pair_id(self) -> str:
        return f"{self.a}__vs__{self.b}"


def sample_pairs(
    items: Sequence[tuple[str, RatingRecord]],
    n_pairs: int,
    *,
    min_gap: float = 0.5,
    tie_threshold: float | None = None,
    seed: int = 0,
    max_draws_per_pair: int = 200,
) -> list[Pair]:
    """Draw ``n_pairs`` distinct A/B pairs from ``(clip_id, rating)`` items.

    A candidate with MOS gap >= ``min_gap`` is kept with the higher-MOS clip as the winner; one
    with gap < ``tie_threshold`` (when given, and < ``min_gap``) is kept as a tie; anything in
    between is rejected. When fewer valid pairs exist than asked for, all of them are returned
    and the shortfall is logged.

    Arguments
    ---------
    items : Sequence[tuple[str, RatingRecord]]
        ``(clip_id, rating)`` per clip; ids must be unique.
    n_pairs : int
        How many pairs to draw.
    min_gap : float
        The smallest MOS gap of a decided pair.
    tie_threshold : float | None
        When given (in (0, ``min_gap``]), pairs with a smaller gap are kept as ties.
    seed : int
        Seed of the sampling.
    max_draws_per_pair : int
        Above a few thousand clips pairs are drawn at random: at most this many draws per
        requested pair.

    Returns
    -------
    list[Pair]
        The pairs; the winner is Speech A in half (+-1) of the decided ones.

    Example
    -------
    >>> items = [(f"c{k}", RatingRecord(mos=m)) for k, m in enumerate([1.5, 2.5, 3.0, 4.5])]
    >>> pairs = sample_pairs(items, 3, seed=0)
    >>> [(p.a, p.b, p.winner, p.gap) for p in pairs]
    [('c3', 'c1', 'A', 2.0), ('c0', 'c3', 'B', 3.0), ('c2', 'c0', 'A', 1.5)]
    >>> pairs == sample_pairs(items, 3, seed=0)
    True
    >>> ties = sample_pairs(items, 6, min_gap=1.0, tie_threshold=0.6, seed=1)
    >>> [(p.a, p.b, p.winner) for p in ties if p.winner == "tie"]
    [('c1', 'c2', 'tie')]
    """
    if n_pairs < 0:
        raise ValueError(f"n_pairs must be >= 0, got {n_pairs}")
    if min_gap < 0:
        raise ValueError(f"min_gap must be >= 0, got {min_gap}")
    if tie_threshold is not None and not 0 < tie_threshold <= min_gap:
        raise ValueError(f"tie_threshold must be in (0, min_gap={min_gap}], got {tie_threshold}")
    ids = [clip_id for clip_id, _ in items]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate clip ids in the items to pair")
    if n_pairs == 0:
        return []
    if len(items) < 2:
        raise ValueError(f"need at least 2 clips to build pairs, got {len(items)}")
    rng = random.Random(seed)
    mos = [r.mos for _, r in items]

    def accept(i: int, j: int) -> str | None:
        gap = abs(mos[i] - mos[j])
        if gap >= min_gap and gap > 0:
            return "win"
        if tie_threshold is not None and gap < tie_threshold:
            return "tie"
        return None

    chosen: list[tuple[int, int, str]] = []
    n = len(items)
    if n <= _ENUMERATE_LIMIT:
        candidates = [(i, j) for i in range(n) for j in range(i + 1, n)]
        rng.shuffle(candidates)
        for i, j in candidates:
            kind = accept(i, j)
            if kind is not None:
                chosen.append((i, j, kind))
                if len(chosen) == n_pairs:
                    break
    else:
        seen: set[tuple[int, int]] = set()
        draws = 0
        while len(chosen) < n_pairs and draws < n_pairs * max_draws_per_pair:
            draws += 1
            i, j = sorted(rng.sample(range(n), 2))
            if (i, j) in seen:
                continue
            seen.add((i, j))
            kind = accept(i, j)
            if kind is not None:
                chosen.append((i, j, kind))
    if len(chosen) < n_pairs:
        logger.warning("Only %d of %d requested pairs satisfy min_gap=%s (tie_threshold=%s).",
                       len(chosen), n_pairs, min_gap, tie_threshold)
    pairs = []
    n_wins = 0
    for i, j, kind in chosen:
        gap = abs(mos[i] - mos[j])
        if kind == "tie":
            a, b = (i, j) if rng.random() < 0.5 else (j, i)
            pairs.append(Pair(ids[a], ids[b], "tie", gap))
            continue
        hi, lo = (i, j) if mos[i] > mos[j] else (j, i)
        # Alternate winner position, so exactly half (+-1) of the decided pairs have A winning.
        if n_wins % 2 == 0:
            pairs.append(Pair(ids[hi], ids[lo], "A", gap))
        else:
            pairs.append(Pair(ids[lo], ids[hi], "B", gap))
        n_wins += 1
    return pairs
