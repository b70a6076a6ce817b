"""TemplateExpert(detail="brief"): shorter texts that the parsers still read back correctly."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from speechbrain_alld.describe.experts import PAPER_VARIANTS, GenerationRequest
from speechbrain_alld.describe.template_expert import (
    DIMENSION_KEYWORDS,
    QUALITY_PHRASES,
    TemplateExpert,
    level_band,
)
from speechbrain_alld.parsing import parse_dimension_levels, parse_mos, parse_verdict
from speechbrain_alld.ratings import DIMENSIONS, RatingRecord

KEYWORD_RE = {d: re.compile(r"\b(?:" + "|".join(stems) + ")", re.IGNORECASE)
              for d, stems in DIMENSION_KEYWORDS.items()}


def random_record(rng: random.Random, all_dims: bool) -> RatingRecord:
    dims = {d: rng.uniform(1.0, 5.0) for d in DIMENSIONS if all_dims or rng.random() < 0.5}
    return RatingRecord(mos=rng.uniform(1.0, 5.0), **dims)


def mos_requests(n: int, seed: int, all_dims: bool = True) -> list[GenerationRequest]:
    rng = random.Random(seed)
    return [GenerationRequest(f"clip{i}", "mos", "", (random_record(rng, all_dims),),
                              PAPER_VARIANTS[i % len(PAPER_VARIANTS)], i) for i in range(n)]


def ab_requests(n: int, seed: int) -> list[GenerationRequest]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        a, b = random_record(rng, rng.random() < 0.7), random_record(rng, rng.random() < 0.7)
        if abs(a.mos - b.mos) < 1e-6:  # a tie (tie_threshold 0); near-equal pairs are kept
            continue
        out.append(GenerationRequest(f"pair{len(out)}", "ab", "", (a, b),
                                     PAPER_VARIANTS[len(out) % len(PAPER_VARIANTS)], len(out)))
    return out


@pytest.fixture(scope="module")
def brief() -> TemplateExpert:
    return TemplateExpert(detail="brief")


@pytest.fixture(scope="module")
def full() -> TemplateExpert:
    return TemplateExpert()


@pytest.fixture(scope="module")
def mos_texts(brief, full):
    reqs = mos_requests(600, seed=0)
    return reqs, brief.generate(reqs), full.generate(reqs)


@pytest.fixture(scope="module")
def brief_levels(mos_texts):
    return [parse_dimension_levels(t) for t in mos_texts[1]]


@pytest.fixture(scope="module")
def ab_texts(brief, full):
    reqs = ab_requests(600, seed=1)
    return reqs, brief.generate(reqs), full.generate(reqs)


def test_brief_mos_texts_are_much_shorter(mos_texts):
    reqs, short, long = mos_texts
    per_variant = {}
    for r, s, f in zip(reqs, short, long):
        per_variant.setdefault(r.variant.name, []).append((len(s), len(f)))
    assert set(per_variant) == {v.name for v in PAPER_VARIANTS}
    for name, lengths in per_variant.items():
        s, f = np.mean(lengths, axis=0)
        assert s <= 0.7 * f, (name, s, f)
    # And one text at a time, almost always.
    assert np.mean([len(s) < len(f) for s, f in zip(short, long)]) > 0.95


def test_brief_ab_texts_are_shorter(ab_texts):
    _, short, long = ab_texts
    assert np.mean([len(s) for s in short]) < 0.8 * np.mean([len(f) for f in long])


def test_brief_mos_is_parsed(mos_texts):
    reqs, short, _ = mos_texts
    wrong = [(t, r.ratings[0].mos) for r, t in zip(reqs, short)
             if parse_mos(t) != round(r.ratings[0].mos, 1)]
    assert not wrong, wrong[:3]


def test_brief_mos_is_parsed_for_partial_and_mos_only_records(brief):
    reqs = mos_requests(300, seed=5, all_dims=False)
    reqs += [GenerationRequest(f"m{k}", "mos", "", (RatingRecord(mos=1 + 4 * k / 99),),
                               PAPER_VARIANTS[k % 5], k) for k in range(100)]
    for r, t in zip(reqs, brief.generate(reqs)):
        assert parse_mos(t) == round(r.ratings[0].mos, 1), t
        assert {d for d, rx in KEYWORD_RE.items() if rx.search(t)} == \
            set(r.ratings[0].dimensions()), t
        assert parse_verdict(t) is None, t


def test_brief_mos_only_text_names_the_quality_band(brief):
    for k in range(100):
        mos = 1 + 4 * k / 99
        t = brief.generate_one(GenerationRequest(f"m{k}", "mos", "", (RatingRecord(mos=mos),),
                                                 PAPER_VARIANTS[k % 5], k))
        low = t.lower()
        bands = {b for b, ps in QUALITY_PHRASES.items() if any(p.lower() in low for p in ps)}
        assert bands == {level_band(mos)}, t


def test_brief_dimension_levels_are_parsed(mos_texts, brief_levels):
    reqs, short, _ = mos_texts
    n, right = 0, 0
    misses = []
    for r, t, levels in zip(reqs, short, brief_levels):
        for dim, value in r.ratings[0].dimensions().items():
            n += 1
            if levels.get(dim) == level_band(value):
                right += 1
            else:
                misses.append((dim, round(value, 1), levels.get(dim), t))
    assert n == 4 * len(reqs)
    assert right / n >= 0.95, (right / n, misses[:5])
    # Every value band, 1 to 5, of every dimension was exercised.
    assert {(d, level_band(getattr(r.ratings[0], d))) for r in reqs for d in DIMENSIONS} == \
        {(d, band) for d in DIMENSIONS for band in range(1, 6)}


def test_brief_dimension_levels_per_dimension(mos_texts, brief_levels):
    reqs = mos_texts[0]
    for dim in DIMENSIONS:
        hits = [levels.get(dim) == level_band(getattr(r.ratings[0], dim))
                for r, levels in zip(reqs, brief_levels)]
        assert np.mean(hits) >= 0.95, dim


def test_brief_ab_near_equal_mos_pairs(brief):
    rng = random.Random(3)
    for k in range(200):
        a = random_record(rng, True)
        mos = min(max(a.mos + rng.choice([-1, 1]) * rng.uniform(0.01, 0.3), 1.0), 5.0)
        if mos == a.mos:
            continue
        b = RatingRecord(mos=mos, **random_record(rng, True).dimensions())
        t = brief.generate_one(GenerationRequest(f"n{k}", "ab", "", (a, b),
                                                 PAPER_VARIANTS[k % 5], k))
        assert parse_verdict(t) == ("A" if a.mos > b.mos else "B"), (a.mos, b.mos, t)


def test_brief_ab_verdict_is_the_true_winner(ab_texts):
    reqs, short, _ = ab_texts
    wrong = []
    for r, t in zip(reqs, short):
        a, b = r.ratings
        if parse_verdict(t) != ("A" if a.mos > b.mos else "B"):
            wrong.append((a.mos, b.mos, t))
    assert not wrong, wrong[:3]


def test_brief_ab_ties():
    tie = TemplateExpert(detail="brief", tie_threshold=0.3)
    for k in range(30):
        a = RatingRecord(mos=3.0 + 0.01 * k, noi=2.0, col=4.0)
        b = RatingRecord(mos=3.1, noi=4.0, col=2.0)
        t = tie.generate_one(GenerationRequest(f"t{k}", "ab", "", (a, b), PAPER_VARIANTS[k % 5],
                                               k))
        assert parse_verdict(t) == "tie", t


def test_brief_texts_are_deterministic_and_vary(brief, mos_texts):
    reqs, short, _ = mos_texts
    assert brief.generate(reqs[:50]) == short[:50]
    assert TemplateExpert(detail="brief").generate(reqs[:50]) == short[:50]
    assert len(set(short)) > 0.9 * len(short)


def test_expert_id_and_invalid_detail(brief, full):
    assert brief.expert_id != full.expert_id
    assert TemplateExpert(detail="full").expert_id == full.expert_id
    assert TemplateExpert(detail="brief").expert_id == brief.expert_id
    assert TemplateExpert(include_numbers=False, detail="brief").expert_id not in (
        brief.expert_id, TemplateExpert(include_numbers=False).expert_id)
    for bad in ("short", "Brief", "", None):
        with pytest.raises(ValueError, match="detail"):
            TemplateExpert(detail=bad)
