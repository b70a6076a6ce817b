"""TemplateExpert: faithful (parsers read back the truth), grounded, diverse, deterministic."""

from __future__ import annotations

import random
import re
import time

import pytest
import sacrebleu

from speechbrain_alld.describe.experts import PAPER_VARIANTS, GenerationRequest, SamplingConfig
from speechbrain_alld.describe.template_expert import (
    DIMENSION_KEYWORDS,
    LEVEL_PHRASES,
    QUALITY_PHRASES,
    TEMPLATE_VERSION,
    TemplateExpert,
    level_band,
    weakest_dimensions,
)
from speechbrain_alld.parsing import parse_mos, parse_verdict
from speechbrain_alld.ratings import DIMENSIONS, RatingRecord

KEYWORD_RE = {d: re.compile(r"\b(?:" + "|".join(stems) + ")", re.IGNORECASE)
              for d, stems in DIMENSION_KEYWORDS.items()}
SENTENCE_SPLIT = re.compile(r"(?<=[.:;])\s+")


def random_record(rng: random.Random, kind: str) -> RatingRecord:
    """kind: "mos" (MOS only), "full" (all four dimensions) or "partial" (random subset)."""
    dims: dict[str, float] = {}
    for d in DIMENSIONS:
        if kind == "full" or (kind == "partial" and rng.random() < 0.5):
            dims[d] = rng.uniform(1.0, 5.0)
    return RatingRecord(mos=rng.uniform(1.0, 5.0), **dims)


def mos_requests(n: int, seed: int = 0, variant: SamplingConfig | None = None,
                 kinds: tuple[str, ...] = ("mos", "full", "partial")) -> list[GenerationRequest]:
    rng = random.Random(seed)
    return [GenerationRequest(f"clip{i}", "mos", "prompt", (random_record(rng, rng.choice(kinds)),),
                              variant or rng.choice(PAPER_VARIANTS), i)
            for i in range(n)]


def ab_requests(n: int, seed: int = 1, variant: SamplingConfig | None = None,
                kinds: tuple[str, ...] = ("full", "partial", "mos")) -> list[GenerationRequest]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        a, b = random_record(rng, rng.choice(kinds)), random_record(rng, rng.choice(kinds))
        if abs(a.mos - b.mos) < 0.1:
            continue
        out.append(GenerationRequest(f"pair{len(out)}", "ab", "prompt", (a, b),
                                     variant or rng.choice(PAPER_VARIANTS), len(out)))
    return out


def true_winner(req: GenerationRequest) -> str:
    return "A" if req.ratings[0].mos > req.ratings[1].mos else "B"


def mentioned(text: str) -> set[str]:
    return {d for d, rx in KEYWORD_RE.items() if rx.search(text)}


def bands_stated(text: str, dim: str) -> set[int]:
    low = text.lower()
    return {band for band, phrases in LEVEL_PHRASES[dim].items()
            if any(p.lower() in low for p in phrases)}


def largest_gaps(a: RatingRecord, b: RatingRecord) -> list[str]:
    """Independent re-computation: dimensions on both clips, |gap| >= 0.5, largest first."""
    gaps = []
    for d in DIMENSIONS:
        va, vb = getattr(a, d), getattr(b, d)
        if va is not None and vb is not None:
            g = abs(round(va, 1) - round(vb, 1))
            if g >= 0.5 - 1e-9:
                gaps.append((-round(g, 1), DIMENSIONS.index(d), d))
    return [d for *_, d in sorted(gaps)]


@pytest.fixture(scope="module")
def expert() -> TemplateExpert:
    return TemplateExpert()


@pytest.fixture(scope="module")
def mos_texts(expert):
    reqs = mos_requests(1000)
    return reqs, expert.generate(reqs)


@pytest.fixture(scope="module")
def ab_texts(expert):
    reqs = ab_requests(1000)
    return reqs, expert.generate(reqs)


# --- faithfulness ------------------------------------------------------------------------------

def test_parse_mos_reads_every_mos_text(mos_texts):
    reqs, texts = mos_texts
    wrong = [(t, r.ratings[0].mos) for r, t in zip(reqs, texts)
             if parse_mos(t) != round(r.ratings[0].mos, 1)]
    assert not wrong, wrong[:3]


def test_mos_text_ends_with_the_mos(mos_texts):
    reqs, texts = mos_texts
    for r, t in zip(reqs, texts):
        assert t.endswith(f"{r.ratings[0].mos:.1f}."), t


def test_parse_verdict_reads_every_ab_text(ab_texts):
    reqs, texts = ab_texts
    wrong = [(t, true_winner(r)) for r, t in zip(reqs, texts)
             if parse_verdict(t) != true_winner(r)]
    assert not wrong, wrong[:3]


def test_no_ab_sentence_reads_as_the_loser(ab_texts):
    reqs, texts = ab_texts
    for r, t in zip(reqs, texts):
        for sentence in SENTENCE_SPLIT.split(t):
            assert parse_verdict(sentence) in (None, true_winner(r)), (sentence, t)


def test_no_mos_text_reads_as_a_verdict(mos_texts):
    assert all(parse_verdict(t) is None for t in mos_texts[1])


# --- grounding: dimensions and level words -------------------------------------------------

def test_mos_texts_mention_exactly_the_rated_dimensions(mos_texts):
    reqs, texts = mos_texts
    for r, t in zip(reqs, texts):
        assert mentioned(t) == set(r.ratings[0].dimensions()), t


def test_level_phrases_match_the_band(mos_texts):
    reqs, texts = mos_texts
    for r, t in zip(reqs, texts):
        for dim, value in r.ratings[0].dimensions().items():
            assert bands_stated(t, dim) == {level_band(value)}, (dim, value, t)


def test_mos_only_texts_describe_the_quality_level(mos_texts):
    reqs, texts = mos_texts
    n = 0
    for r, t in zip(reqs, texts):
        if r.ratings[0].dimensions():
            continue
        n += 1
        low = t.lower()
        bands = {b for b, ps in QUALITY_PHRASES.items() if any(p.lower() in low for p in ps)}
        assert bands == {level_band(r.ratings[0].mos)}, t
    assert n > 100


def test_noisy_clip_is_never_called_clean(expert):
    rec = RatingRecord(mos=2.0, noi=1.2, col=4.0, dis=4.0, loud=4.0)
    for v in PAPER_VARIANTS:
        for seed in range(30):
            t = expert.generate([GenerationRequest("x", "mos", "", (rec,), v, seed)])[0]
            assert "clean" not in t.lower() and "no background noise" not in t.lower(), t
            assert bands_stated(t, "noi") == {1}


def test_level_band_edges():
    # Bands follow the value rounded to one decimal, as the text states it.
    assert [level_band(v) for v in (1.0, 1.44, 1.46, 2.44, 2.46, 3.4, 3.5, 4.44, 4.46, 5.0)] == \
        [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_analysis_names_the_weakest_dimension(expert):
    rec = RatingRecord(mos=2.4, noi=4.5, col=1.6, dis=4.2, loud=4.8)
    assert weakest_dimensions(rec) == ["col"]
    good = RatingRecord(mos=4.4, noi=4.5, col=4.1, dis=4.2, loud=4.8)
    assert weakest_dimensions(good) == []
    for seed in range(20):
        t = expert.generate([GenerationRequest("x", "mos", "", (rec,), PAPER_VARIANTS[3],
                                               seed)])[0]
        assert re.search(r"the (distortion|coloration)", t, re.IGNORECASE), t


def test_ab_texts_discuss_only_the_largest_gaps(ab_texts):
    reqs, texts = ab_texts
    n_with_dims = 0
    for r, t in zip(reqs, texts):
        a, b = r.ratings
        ranked = largest_gaps(a, b)
        named = mentioned(t)
        prefixes = [set(ranked[:k]) for k in range(0, min(3, len(ranked)) + 1)]
        assert named in prefixes, (ranked, named, t)
        if ranked:
            assert named, t  # a clear gap is always discussed
            n_with_dims += 1
        for dim in named:
            assert bands_stated(t, dim) <= {level_band(a.dimensions()[dim]),
                                            level_band(b.dimensions()[dim])}, t
    assert n_with_dims > 300


def test_ab_texts_without_dimensions_compare_overall(expert):
    a, b = RatingRecord(mos=3.1), RatingRecord(mos=4.2)
    for seed in range(20):
        t = expert.generate([GenerationRequest("p", "ab", "", (a, b), PAPER_VARIANTS[4],
                                               seed)])[0]
        assert parse_verdict(t) == "B" and not mentioned(t), t


# --- ties -------------------------------------------------------------------------------------

def test_equal_mos_is_a_tie(expert):
    a = RatingRecord(mos=3.0, noi=4.0, col=2.0)
    b = RatingRecord(mos=3.0, noi=2.0, col=4.0)
    for v in PAPER_VARIANTS:
        for seed in range(10):
            t = expert.generate([GenerationRequest("p", "ab", "", (a, b), v, seed)])[0]
            assert parse_verdict(t) == "tie", t


def test_tie_threshold_and_disallowed_ties():
    a, b = RatingRecord(mos=3.0), RatingRecord(mos=3.2)
    req = GenerationRequest("p", "ab", "", (a, b), PAPER_VARIANTS[0], 0)
    assert parse_verdict(TemplateExpert(tie_threshold=0.3).generate([req])[0]) == "tie"
    assert parse_verdict(TemplateExpert(tie_threshold=0.3, allow_ties=False)
                         .generate([req])[0]) == "B"
    equal = GenerationRequest("p", "ab", "", (a, a), PAPER_VARIANTS[0], 0)
    with pytest.raises(ValueError, match="allow_ties"):
        TemplateExpert(allow_ties=False).generate([equal])
    with pytest.raises(ValueError):
        TemplateExpert(tie_threshold=-1.0)


# --- diversity and determinism -----------------------------------------------------------------

def test_variants_differ_but_seeds_reproduce(expert):
    base = mos_requests(300, seed=5, kinds=("full",)) + ab_requests(300, seed=6,
                                                                    kinds=("full",))

    def with_variant(v: SamplingConfig) -> list[GenerationRequest]:
        return [GenerationRequest(r.item_id, r.task, r.prompt, r.ratings, v, r.seed)
                for r in base]

    hyp = expert.generate(with_variant(PAPER_VARIANTS[1]))
    ref = expert.generate(with_variant(PAPER_VARIANTS[2]))
    cross = sacrebleu.corpus_bleu(hyp, [ref]).score
    assert cross < 60, cross
    again = expert.generate(with_variant(PAPER_VARIANTS[1]))
    assert again == hyp
    assert sacrebleu.corpus_bleu(hyp, [again]).score == pytest.approx(100.0)


def test_same_request_same_text_fresh_expert():
    reqs = mos_requests(50) + ab_requests(50)
    assert TemplateExpert().generate(reqs) == TemplateExpert().generate(reqs)


def test_seed_and_item_id_change_the_text(expert):
    rec = RatingRecord(mos=3.3, noi=2.1, col=4.0, dis=3.6, loud=2.9)
    v = PAPER_VARIANTS[3]
    by_seed = {expert.generate([GenerationRequest("c", "mos", "", (rec,), v, s)])[0]
               for s in range(10)}
    by_id = {expert.generate([GenerationRequest(f"c{i}", "mos", "", (rec,), v, 0)])[0]
             for i in range(10)}
    assert len(by_seed) > 1 and len(by_id) > 1


def test_prompt_is_ignored(expert):
    rec = RatingRecord(mos=3.3, noi=2.1)
    texts = {expert.generate([GenerationRequest("c", "mos", p, (rec,), PAPER_VARIANTS[0], 0)])[0]
             for p in ("one prompt", "another prompt", "")}
    assert len(texts) == 1


def test_numbers_flag(expert):
    rec = RatingRecord(mos=3.3, noi=2.1, col=4.0, dis=3.6, loud=2.9)
    reqs = [GenerationRequest("c", "mos", "", (rec,), v, s) for v in PAPER_VARIANTS
            for s in range(10)]
    with_numbers = expert.generate(reqs)
    assert any("noisiness" in t and "2.1" in t for t in with_numbers)
    plain = TemplateExpert(include_numbers=False).generate(reqs)
    for t in plain:
        assert not re.search(r"\b[1-5]\.\d\b", t.rsplit("MOS", 1)[0]), t


def test_expert_id_carries_the_template_version():
    assert TEMPLATE_VERSION in TemplateExpert().expert_id
    assert TemplateExpert().expert_id != TemplateExpert(include_numbers=False).expert_id


def test_summarise_verdict_uses_the_parser(expert, ab_texts):
    reqs, texts = ab_texts
    assert expert.summarise_verdict(texts[:20]) == [true_winner(r) for r in reqs[:20]]


def test_fast(expert):
    reqs = mos_requests(500, seed=9) + ab_requests(500, seed=10)
    start = time.perf_counter()
    expert.generate(reqs)
    assert time.perf_counter() - start < 1.0


# --- bad input ---------------------------------------------------------------------------------

def test_wrong_number_of_ratings_is_rejected():
    rec = RatingRecord(mos=3.0)
    with pytest.raises(ValueError):
        GenerationRequest("c", "mos", "", (rec, rec), PAPER_VARIANTS[0], 0)
    with pytest.raises(ValueError):
        GenerationRequest("p", "ab", "", (rec,), PAPER_VARIANTS[0], 0)
    with pytest.raises(ValueError):
        GenerationRequest("p", "ab", "", (), PAPER_VARIANTS[0], 0)
