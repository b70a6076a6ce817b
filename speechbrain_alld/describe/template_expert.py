"""An offline, model-free expert that writes evaluation texts from phrase tables.

:class:`TemplateExpert` turns rating records into short, fluent evaluations in the style of a
speech-quality expert (ALLD-SPEC §1, §4), with no language model at all. It is the default
expert for the demo and the tests, and the corpus the tiny audio LLM is trained on.

- **MOS task** (one record): one statement per dimension present on the record (noisiness,
  coloration, discontinuity, loudness; missing dimensions are never mentioned), worded by the
  level band of its value (:func:`level_band`), an analysis sentence naming the weakest
  dimension(s) or saying the clip is good throughout, and a final sentence that states the MOS
  with one decimal in a form :func:`~speechbrain_alld.parsing.parse_mos` reads. A MOS-only record
  gets a description of its overall quality level instead.
- **A/B task** (two records, A then B): compares on the 1..3 dimensions with the largest
  absolute gaps (at least ``MIN_GAP``; a gap favouring the loser is phrased as a concession),
  or on overall quality, and ends with the preference for the clip with the higher MOS in a form
  :func:`~speechbrain_alld.parsing.parse_verdict` reads. No sentence can be read as preferring
  the loser. Equal MOS (within ``tie_threshold``) is declared a tie.

Every value is rounded to one decimal before it is worded, so the words always agree with the
numbers the text states. Texts are deterministic for (item id, variant name, seed): the random
generator is seeded from a SHA-256 of the three, never from Python's salted ``hash``. The
variant's temperature and top-p shape how far down each list of phrasings the choice may go, as
sampling would for a language model; the greedy ("default") variant stays with the most
canonical phrasings. The prompt text of a request is ignored: all information comes from
``request.ratings``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from speechbrain_alld.describe import template_phrases as phrases
from speechbrain_alld.describe.experts import Expert, GenerationRequest, SamplingConfig
from speechbrain_alld.describe.template_phrases import (
    DIMENSION_KEYWORDS,
    LEVEL_PHRASES,
    QUALITY_PHRASES,
    QUALITY_WORDS,
)
from speechbrain_alld.durable import stable_seed
from speechbrain_alld.ratings import DIMENSION_NAMES, DIMENSIONS, RatingRecord

__all__ = [
    "DIMENSION_KEYWORDS",
    "LEVEL_PHRASES",
    "MIN_GAP",
    "QUALITY_PHRASES",
    "QUALITY_WORDS",
    "TEMPLATE_VERSION",
    "TemplateExpert",
    "level_band",
    "ranked_gaps",
    "weakest_dimensions",
]

#: Bumped whenever any phrasing changes, so that caches keyed by ``expert_id`` are invalidated.
TEMPLATE_VERSION = "template-v1"

#: Smallest dimension gap (on rounded values) an A/B comparison is justified by.
MIN_GAP = 0.5


def level_band(value: float) -> int:
    """ACR band 1..5 of a value on the 1..5 scale, after rounding to one decimal.

    1 below 1.5, 2 below 2.5, 3 below 3.5, 4 below 4.5, else 5 (nearest category).
    """
    v = round(value, 1)
    for band, upper in ((1, 1.5), (2, 2.5), (3, 3.5), (4, 4.5)):
        if v < upper - 1e-9:
            return band
    return 5


def _adverbs(gap: float) -> tuple[str, ...]:
    return next(words for low, words in phrases.GAP_ADVERBS if gap >= low - 1e-9)


class _Sampler:
    """Phrase choices from a seeded RNG, truncated like temperature/top-p sampling."""

    def __init__(self, rng: random.Random, temperature: float, top_p: float) -> None:
        self.rng = rng
        self.temperature = max(temperature, 0.05)
        self.top_p = min(max(top_p, 0.0), 1.0)

    def index(self, n: int) -> int:
        if n <= 1:
            return 0
        weights = [(1.0 / (i + 1)) ** (1.0 / self.temperature) for i in range(n)]
        total = sum(weights)
        kept, cumulative = [], 0.0
        for w in weights:
            kept.append(w)
            cumulative += w / total
            if cumulative >= self.top_p - 1e-12:
                break
        return self.rng.choices(range(len(kept)), weights=kept)[0]

    def pick(self, options: Sequence[str]) -> str:
        return options[self.index(len(options))]

    def chance(self, p: float) -> bool:
        """True with probability ``p``, scaled up by temperatures above 1."""
        return self.rng.random() < min(1.0, p * self.temperature)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def weakest_dimensions(record: RatingRecord) -> list[str]:
    """The dimensions the MOS text names as dragging the quality down (at most two).

    The lowest dimension (values rounded to one decimal) and any within 0.3 of it, provided
    they are below 3.5 (worse than "good"); empty when every dimension is good or none is rated.
    """
    dims = {k: round(v, 1) for k, v in record.dimensions().items()}
    if not dims:
        return []
    low = min(dims.values())
    ranked = sorted(dims, key=lambda k: (dims[k], DIMENSIONS.index(k)))
    return [k for k in ranked if dims[k] <= low + 0.3 + 1e-9 and dims[k] < 3.5 - 1e-9][:2]


def ranked_gaps(a: RatingRecord, b: RatingRecord) -> list[tuple[str, float]]:
    """(dimension, A minus B) for dimensions rated on both clips with a gap of at least
    ``MIN_GAP`` (rounded values), largest absolute gap first (ties in the DIMENSIONS order)."""
    da, db = a.dimensions(), b.dimensions()
    gaps = [(k, round(round(da[k], 1) - round(db[k], 1), 1)) for k in DIMENSIONS
            if k in da and k in db]
    gaps = [(k, g) for k, g in gaps if abs(g) >= MIN_GAP - 1e-9]
    return sorted(gaps, key=lambda kg: (-abs(kg[1]), DIMENSIONS.index(kg[0])))


class TemplateExpert(Expert):
    """Deterministic, model-free expert that writes MOS descriptions and A/B comparisons.

    The prompt of each request is ignored; all information comes from ``request.ratings``.

    Arguments
    ---------
    include_numbers : bool
        Also state dimension values as numbers in some texts (e.g. "(noisiness 3.2)"); the MOS
        is always stated.
    tie_threshold : float
        MOS difference up to which an A/B pair counts as equal.
    allow_ties : bool
        Declare equal pairs a tie; if False, an equal pair raises ``ValueError`` (the pair
        sampler guarantees a gap, so this never happens in the recipes).
    detail : str
        ``"full"``: the texts described above. ``"brief"``: about half as long: a MOS text is
        one sentence with a clause per rated dimension and a short MOS sentence (no intro, no
        analysis); an A/B text names only the winner's largest advantage (or the overall
        quality) and the verdict.

    Example
    -------
    >>> from speechbrain_alld.describe.experts import PAPER_VARIANTS
    >>> request = GenerationRequest("clip0", "mos", "", (RatingRecord(mos=3.04, noi=2.1),),
    ...                             PAPER_VARIANTS[0], 0)
    >>> text = TemplateExpert().generate_one(request)
    >>> text == TemplateExpert().generate_one(request) and "3.0" in text
    True
    >>> TemplateExpert(detail="brief").generate_one(request)
    'The recording suffers from strong background noise. MOS: 3.0.'
    """

    def __init__(self, include_numbers: bool = True, tie_threshold: float = 0.0,
                 allow_ties: bool = True, detail: str = "full") -> None:
        if tie_threshold < 0:
            raise ValueError(f"tie_threshold must be >= 0, got {tie_threshold}")
        if detail not in ("full", "brief"):
            raise ValueError(f"detail must be 'full' or 'brief', got {detail!r}")
        self.include_numbers = include_numbers
        self.tie_threshold = tie_threshold
        self.allow_ties = allow_ties
        self.detail = detail
        self.expert_id = (f"{TEMPLATE_VERSION}-n{int(include_numbers)}-t{tie_threshold:g}"
                          f"-a{int(allow_ties)}" + ("-brief" if detail == "brief" else ""))

    # --- public API ---------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """One text per request, in order."""
        return [self.generate_one(r) for r in requests]

    def generate_one(self, request: GenerationRequest) -> str:
        """The text for one request (deterministic for item id, variant name, seed, ratings)."""
        sampler = self._sampler(request.item_id, request.variant, request.seed)
        if request.task == "mos":
            return self._mos_text(request.ratings[0], sampler)
        return self._ab_text(request.ratings[0], request.ratings[1], sampler)

    def winner(self, a: RatingRecord, b: RatingRecord) -> str:
        """"A", "B" or "tie", as the A/B text states it."""
        if abs(a.mos - b.mos) <= self.tie_threshold + 1e-9:
            if self.allow_ties:
                return "tie"
            if a.mos == b.mos:
                raise ValueError(f"equal MOS ({a.mos}) and allow_ties=False: no winner")
        return "A" if a.mos > b.mos else "B"

    # --- internals ----------------------------------------------------------------------------

    @staticmethod
    def _sampler(item_id: str, variant: SamplingConfig, seed: int) -> _Sampler:
        key = f"{TEMPLATE_VERSION}\x1f{item_id}\x1f{variant.name}\x1f{seed}"
        rng = random.Random(stable_seed(key, n_bytes=8))
        if variant.do_sample:
            return _Sampler(rng, variant.temperature, variant.top_p)
        return _Sampler(rng, 0.6, 0.9)  # greedy: stay with the canonical phrasings

    def _number(self, fmt: str | None, dim: str, value: float) -> str:
        if fmt is None:
            return ""
        return fmt.format(name=DIMENSION_NAMES[dim], v=_fmt(value))

    # MOS task

    def _mos_text(self, record: RatingRecord, s: _Sampler) -> str:
        mos = round(record.mos, 1)
        dims = {k: round(v, 1) for k, v in record.dimensions().items()}
        if self.detail == "brief":
            return self._brief_mos_text(mos, dims, s)
        sentences: list[str] = []
        if not dims:
            if s.chance(0.25):
                sentences.append(s.pick(phrases.MOS_ONLY_INTROS))
            sentences.append(s.pick(QUALITY_PHRASES[level_band(mos)]) + ".")
        else:
            if s.chance(0.3):
                sentences.append(s.pick(phrases.MOS_INTROS))
            sentences.extend(self._dimension_sentences(dims, s))
            sentences.extend(self._analysis(record, dims, s))
        final = s.pick(phrases.MOS_FINALS)
        sentences.append(final.format(m=_fmt(mos), q=QUALITY_WORDS[level_band(mos)]))
        return " ".join(sentences)

    def _brief_mos_text(self, mos: float, dims: dict[str, float], s: _Sampler) -> str:
        final = s.pick(phrases.BRIEF_MOS_FINALS).format(m=_fmt(mos))
        if not dims:
            return f"{s.pick(QUALITY_PHRASES[level_band(mos)])}. {final}"
        order = [k for k in DIMENSIONS if k in dims]
        if s.index(2):
            order.sort(key=lambda k: dims[k])  # worst first
        clauses = [s.pick(phrases.CLAUSES[k][level_band(dims[k])]) for k in order]
        return f"{s.pick(phrases.SUBJECTS_FIRST)} {_join(clauses)}. {final}"

    def _dimension_sentences(self, dims: dict[str, float], s: _Sampler) -> list[str]:
        order = [k for k in DIMENSIONS if k in dims]
        style = s.index(4)
        if style == 1:
            order.sort(key=lambda k: dims[k])  # worst first
        elif style == 2:
            order.sort(key=lambda k: -dims[k])  # best first
        elif style == 3:
            s.rng.shuffle(order)
        fmt = s.pick(phrases.NUMBER_FORMATS) if self.include_numbers and s.chance(0.5) else None
        out: list[str] = []
        i = 0
        while i < len(order):
            dim = order[i]
            band = level_band(dims[dim])
            num = self._number(fmt, dim, dims[dim])
            subject = s.pick(phrases.SUBJECTS_FIRST if not out else phrases.SUBJECTS_LATER)
            if i + 1 < len(order) and s.chance(0.3):
                nxt = order[i + 1]
                nband = level_band(dims[nxt])
                nnum = self._number(fmt, nxt, dims[nxt])
                conj = ", and it " if abs(band - nband) <= 1 else s.pick((", but it ",
                                                                          ", although it "))
                out.append(f"{subject} {s.pick(phrases.CLAUSES[dim][band])}{num}{conj}"
                           f"{s.pick(phrases.CLAUSES[nxt][nband])}{nnum}.")
                i += 2
                continue
            if s.chance(0.4):
                out.append(f"{s.pick(phrases.STATEMENTS[dim][band])}{num}.")
            else:
                out.append(f"{subject} {s.pick(phrases.CLAUSES[dim][band])}{num}.")
            i += 1
        return out

    def _analysis(self, record: RatingRecord, dims: dict[str, float], s: _Sampler) -> list[str]:
        weak = weakest_dimensions(record)
        if not weak:
            out = [s.pick(phrases.ANALYSIS_GOOD)]
            low = min(dims, key=lambda k: (dims[k], DIMENSIONS.index(k)))
            if len(dims) > 1 and dims[low] < 5.0 and s.chance(0.3):
                out.append(s.pick(phrases.ANALYSIS_IF_ANYTHING).format(
                    x=s.pick(phrases.NEUTRAL_NOUNS[low])))
            return out
        nouns = [s.pick(phrases.WEAK_NOUNS[k]) for k in weak]
        if len(nouns) == 1:
            text = s.pick(phrases.ANALYSIS_ONE).format(X=_cap(nouns[0]), x=nouns[0])
        else:
            text = s.pick(phrases.ANALYSIS_TWO).format(X=_cap(nouns[0]), x=nouns[0], y=nouns[1])
        out = [text]
        strong = [k for k in dims if level_band(dims[k]) >= 4]
        if strong and s.chance(0.3):
            noun = s.pick(phrases.NEUTRAL_NOUNS[s.rng.choice(strong)])
            out.append(s.pick(phrases.STRENGTHS).format(X=_cap(noun), x=noun))
        return out

    # A/B task

    def _ab_text(self, a: RatingRecord, b: RatingRecord, s: _Sampler) -> str:
        verdict = self.winner(a, b)
        start, inner = s.pick(phrases.NAMINGS)
        names = {side: (start.format(side), inner.format(side)) for side in "AB"}
        values = {"A": a, "B": b}
        fmt_on = self.include_numbers and s.chance(0.5)
        gaps = ranked_gaps(a, b)[:3]

        # How many of the largest gaps to discuss.
        if verdict == "tie":
            k = min(len(gaps), 1 + s.index(2))
        elif gaps:
            favours = ["A" if g > 0 else "B" for _, g in gaps]
            first_win = favours.index(verdict) + 1 if verdict in favours else 1
            k = first_win + s.index(len(gaps) - first_win + 1)
        else:
            k = 0
        chosen = gaps[:k]
        if self.detail == "brief":
            return self._brief_ab_text(verdict, chosen, values, names, fmt_on, s)
        if verdict != "tie":  # the winner's advantages first, then any concessions
            chosen.sort(key=lambda kg: (kg[1] > 0) != (verdict == "A"))
        if s.chance(0.2):
            s.rng.shuffle(chosen)

        sentences: list[str] = []
        for dim, gap in chosen:
            fav, oth = ("A", "B") if gap > 0 else ("B", "A")
            sentences.append(self._dimension_comparison(
                dim, abs(gap), fav, oth, values, names, fmt_on, concession=(
                    verdict != "tie" and fav != verdict), s=s))

        if verdict == "tie":
            body = sentences
            if s.chance(0.3):
                body = [s.pick(phrases.AB_INTROS)] + body
            return " ".join(body + [s.pick(phrases.TIES)])

        loser = "B" if verdict == "A" else "A"
        winner_dims = [d for d, g in chosen if (g > 0) == (verdict == "A")]
        if not winner_dims or len(winner_dims) < len(chosen) or s.chance(0.3):
            overall = self._overall(values, names, verdict, loser, fmt_on, s)
            if len(winner_dims) < len(chosen) or s.chance(0.5):
                sentences.append(overall)  # after any concession: "..., but overall ..."
            else:
                sentences.insert(0, overall)
        if s.chance(0.3):
            sentences.insert(0, s.pick(phrases.AB_INTROS))
        if winner_dims and s.chance(0.5):
            reasons = _join([s.pick(phrases.REASONS[d]) for d in winner_dims])
            final = s.pick(phrases.VERDICTS_WITH_REASONS).format(w=names[verdict][1],
                                                                 reasons=reasons)
        else:
            final = s.pick(phrases.VERDICTS).format(W=names[verdict][0], w=names[verdict][1])
        sentences.append(final)
        return " ".join(sentences)

    def _brief_ab_text(self, verdict: str, chosen: list[tuple[str, float]],
                       values: dict[str, RatingRecord], names: dict[str, tuple[str, str]],
                       fmt_on: bool, s: _Sampler) -> str:
        if verdict == "tie":
            return s.pick(phrases.TIES)
        loser = "B" if verdict == "A" else "A"
        wins = [(d, g) for d, g in chosen if (g > 0) == (verdict == "A")][:1]
        if wins:
            dim, gap = wins[0]
            first = self._dimension_comparison(dim, abs(gap), verdict, loser, values, names,
                                               fmt_on, concession=False, s=s)
        else:
            first = self._overall(values, names, verdict, loser, fmt_on, s)
        final = s.pick(phrases.VERDICTS).format(W=names[verdict][0], w=names[verdict][1])
        return f"{first} {final}"

    def _dimension_comparison(self, dim: str, gap: float, fav: str, oth: str,
                              values: dict[str, RatingRecord], names: dict[str, tuple[str, str]],
                              fmt_on: bool, concession: bool, s: _Sampler) -> str:
        vf = round(getattr(values[fav], dim), 1)
        vo = round(getattr(values[oth], dim), 1)
        name = DIMENSION_NAMES[dim]
        nums = ""
        if fmt_on:
            if s.chance(0.5):
                nums = f" ({name} {_fmt(vf)} vs {_fmt(vo)})"
            else:
                va, vb = (vf, vo) if fav == "A" else (vo, vf)
                nums = f" ({name}: A {_fmt(va)}, B {_fmt(vb)})"
        comp = s.pick(phrases.COMPARATIVES[dim]).format(adv=s.pick(_adverbs(gap)))
        topic = s.pick(phrases.TOPICS[dim])
        if concession:
            return s.pick(phrases.CONCESSIONS).format(F=names[fav][0], f=names[fav][1],
                                               o=names[oth][1], comp=comp, topic=topic,
                                               nums=nums)
        bf, bo = level_band(vf), level_band(vo)
        forms = ["{F} {comp}{nums}.", "{F} {comp} than {o}{nums}."]
        if bf != bo:
            forms += ["{O} {lo}, whereas {f} {lf}{nums}.",
                      "In terms of {topic}, {f} {lf}, while {o} {lo}{nums}."]
        return s.pick(forms).format(
            F=names[fav][0], f=names[fav][1], O=names[oth][0], o=names[oth][1], comp=comp,
            nums=nums, topic=topic, lf=s.pick(phrases.CLAUSES[dim][bf]),
            lo=s.pick(phrases.CLAUSES[dim][bo]))

    def _overall(self, values: dict[str, RatingRecord], names: dict[str, tuple[str, str]],
                 win: str, lose: str, fmt_on: bool, s: _Sampler) -> str:
        mw, ml = round(values[win].mos, 1), round(values[lose].mos, 1)
        bw, bl = level_band(mw), level_band(ml)
        nums = f" (MOS {_fmt(mw)} vs {_fmt(ml)})" if fmt_on and mw != ml else ""
        slightly = "slightly " if abs(values[win].mos - values[lose].mos) < MIN_GAP else ""
        forms = phrases.OVERALL_SAME_BAND if bw == bl else phrases.OVERALL_DIFF_BAND
        return s.pick(forms).format(
            W=names[win][0], w=names[win][1], l=names[lose][1], q=QUALITY_WORDS[bw],
            qw=QUALITY_WORDS[bw], ql=QUALITY_WORDS[bl], nums=nums, slightly=slightly)
