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

import hashlib
import random
from collections.abc import Sequence

from speechbrain_alld.describe.experts import Expert, GenerationRequest, SamplingConfig
from speechbrain_alld.ratings import DIMENSION_NAMES, DIMENSIONS, RatingRecord

#: Bumped whenever any phrasing changes, so that caches keyed by ``expert_id`` are invalidated.
TEMPLATE_VERSION = "template-v1"

#: Smallest dimension gap (on rounded values) an A/B comparison is justified by.
MIN_GAP = 0.5

#: ACR category words for bands 1..5 (ALLD-SPEC §2).
QUALITY_WORDS: dict[int, str] = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}

#: Regex stems (matched after a word boundary, case-insensitively) of the words that belong to
#: each dimension. No other part of a text uses them: a dimension absent from the ratings is
#: never mentioned.
DIMENSION_KEYWORDS: dict[str, tuple[str, ...]] = {
    "noi": ("nois", "hiss", "background", "clean"),
    "col": ("colou?r", "uncolou?r", "distort", "timbre", "muffled", "harsh", "natural",
            "unnatural", "filtering", "artifact", "mangled"),
    "dis": ("continu", "discontinu", "dropout", "break", "interrupt", "gap", "chopp",
            "fragment", "smooth"),
    "loud": ("loud", "quiet", "volume", "level"),
}


def level_band(value: float) -> int:
    """ACR band 1..5 of a value on the 1..5 scale, after rounding to one decimal.

    1 below 1.5, 2 below 2.5, 3 below 3.5, 4 below 4.5, else 5 (nearest category).
    """
    v = round(value, 1)
    for band, upper in ((1, 1.5), (2, 2.5), (3, 3.5), (4, 4.5)):
        if v < upper - 1e-9:
            return band
    return 5


# --- phrase tables -----------------------------------------------------------------------------
# Lists are ordered from the most canonical phrasing to the most adventurous one.

#: Predicates with a clip as subject ("The clip ...", "Speech A ..."), per dimension and band.
_CLAUSES: dict[str, dict[int, tuple[str, ...]]] = {
    "noi": {
        5: ("has virtually no background noise", "is essentially free of background noise",
            "has a clean, noise-free background", "shows no trace of background noise"),
        4: ("has only faint background noise", "carries a slight, unobtrusive noise floor",
            "is mostly clean, with a little background hiss",
            "has low background noise that rarely draws attention"),
        3: ("has noticeable background noise", "carries a moderate noise floor",
            "is accompanied by clearly audible background noise",
            "has a fair amount of background hiss"),
        2: ("suffers from strong background noise", "is quite noisy",
            "has intrusive background noise that competes with the voice",
            "is marred by persistent background noise"),
        1: ("is heavily masked by noise", "is buried in background noise",
            "is dominated by intense noise", "has overwhelming background noise"),
    },
    "col": {
        5: ("sounds completely natural, with no audible distortion",
            "has a natural, uncoloured timbre", "is free of distortion",
            "shows no coloration at all"),
        4: ("sounds largely natural, with only slight coloration",
            "has a mostly natural timbre with minor distortion", "shows little distortion",
            "has only faint traces of coloration"),
        3: ("shows some coloration", "has a moderately distorted timbre",
            "sounds somewhat unnatural due to distortion", "has noticeable filtering artifacts"),
        2: ("is clearly distorted", "has a strongly coloured, unnatural timbre",
            "sounds muffled and distorted", "suffers from considerable distortion"),
        1: ("is severely distorted", "has a badly mangled timbre",
            "sounds heavily coloured and harsh", "is dominated by harsh distortion"),
    },
    "dis": {
        5: ("flows continuously, without any dropouts", "is perfectly continuous",
            "has no breaks or interruptions", "plays back without a single dropout"),
        4: ("is almost entirely continuous", "has only an occasional tiny break",
            "shows very few interruptions", "is largely free of dropouts"),
        3: ("has some noticeable breaks", "is interrupted by occasional dropouts",
            "shows moderate discontinuity", "contains a few audible gaps"),
        2: ("has frequent dropouts", "is quite choppy", "is repeatedly interrupted by breaks",
            "suffers from clear discontinuities"),
        1: ("is severely fragmented by dropouts", "breaks up constantly", "is extremely choppy",
            "is riddled with gaps and interruptions"),
    },
    "loud": {
        5: ("is at an ideal listening level", "has a perfectly comfortable loudness",
            "is played at a well-balanced volume", "has just the right loudness"),
        4: ("is loud enough for comfortable listening", "has an adequate level",
            "has good loudness", "sits at a comfortable volume"),
        3: ("is somewhat quiet", "has a moderate, slightly low level", "could be a bit louder",
            "has only fair loudness"),
        2: ("is rather quiet", "has a low volume", "is too quiet for comfortable listening",
            "has poor loudness"),
        1: ("is extremely quiet", "is barely loud enough to follow", "has a very low level",
            "has almost no usable volume"),
    },
}

#: Complete statements (without the final period), per dimension and band.
_STATEMENTS: dict[str, dict[int, tuple[str, ...]]] = {
    "noi": {
        5: ("Background noise is practically absent", "There is virtually no background noise",
            "The background is completely clean"),
        4: ("Background noise is low", "There is only a faint noise floor",
            "The background is mostly clean"),
        3: ("Background noise is moderate", "There is a noticeable amount of background noise",
            "The background is somewhat noisy"),
        2: ("Background noise is strong", "There is a lot of background noise",
            "The background is quite noisy"),
        1: ("Background noise is overwhelming", "The noise almost drowns out the voice",
            "The background is extremely noisy"),
    },
    "col": {
        5: ("The timbre is entirely natural", "There is no audible distortion",
            "Coloration is absent"),
        4: ("The timbre is mostly natural", "Distortion is minimal", "Coloration is slight"),
        3: ("The timbre is somewhat coloured", "Distortion is moderate",
            "Some coloration is audible"),
        2: ("The timbre is clearly unnatural", "Distortion is pronounced",
            "Coloration is strong"),
        1: ("The timbre is severely distorted", "Distortion is extreme", "Coloration is severe"),
    },
    "dis": {
        5: ("The speech is perfectly continuous", "There are no dropouts at all",
            "Continuity is flawless"),
        4: ("Dropouts are rare", "The speech is almost entirely continuous",
            "Continuity is good"),
        3: ("Dropouts are occasional", "There are some breaks in the speech",
            "Continuity is only fair"),
        2: ("Dropouts are frequent", "The speech breaks up regularly", "Continuity is poor"),
        1: ("Dropouts are constant", "The speech is badly fragmented",
            "Continuity is very poor"),
    },
    "loud": {
        5: ("The level is ideal", "Loudness is perfectly balanced", "The volume is just right"),
        4: ("The level is good", "Loudness is adequate", "The volume is comfortable"),
        3: ("The level is somewhat low", "Loudness is only fair", "The volume is a bit low"),
        2: ("The level is low", "Loudness is poor", "The volume is too low"),
        1: ("The level is far too low", "Loudness is very poor", "The volume is extremely low"),
    },
}

#: Every phrasing that states a dimension's level, per dimension and band (for faithfulness
#: checks: a text states only phrases of the value's band).
LEVEL_PHRASES: dict[str, dict[int, tuple[str, ...]]] = {
    dim: {band: _CLAUSES[dim][band] + _STATEMENTS[dim][band] for band in range(1, 6)}
    for dim in DIMENSIONS
}

#: Descriptions of the overall quality of a MOS-only clip, per MOS band (no final period).
QUALITY_PHRASES: dict[int, tuple[str, ...]] = {
    1: ("The speech quality is bad, and listening to it is a real strain",
        "This is a badly degraded clip that is hard to listen to",
        "The clip sounds very poor and is tiring to follow"),
    2: ("The speech quality is poor, with clearly audible impairments",
        "The clip is noticeably degraded and unpleasant to listen to",
        "Quality is below average, and the impairments are hard to ignore"),
    3: ("The speech quality is fair: intelligible, but with some audible impairments",
        "The clip is acceptable, though far from pristine",
        "Quality is middling; the speech is understandable but clearly impaired"),
    4: ("The speech quality is good, with only minor impairments",
        "The clip sounds pleasant, with just small imperfections",
        "Quality is good, and only a careful listener would notice any flaws"),
    5: ("The speech quality is excellent, with no noticeable impairments",
        "The clip sounds pristine and effortless to listen to",
        "This is a high-quality clip without any audible flaws"),
}

#: Noun phrases for a dimension that degrades the clip (value below 3.5).
_WEAK_NOUNS: dict[str, tuple[str, ...]] = {
    "noi": ("the background noise", "the noise"),
    "col": ("the distortion", "the coloration"),
    "dis": ("the discontinuity", "the choppiness"),
    "loud": ("the low level", "the low volume"),
}
#: Neutral noun phrases for a dimension, whatever its value.
_NEUTRAL_NOUNS: dict[str, tuple[str, ...]] = {
    "noi": ("the background noise",),
    "col": ("the timbre",),
    "dis": ("the continuity",),
    "loud": ("the loudness",),
}
#: Topics for "In terms of ..." (A/B task).
_TOPICS: dict[str, tuple[str, ...]] = {
    "noi": ("background noise", "noisiness"),
    "col": ("coloration", "distortion"),
    "dis": ("continuity", "discontinuity"),
    "loud": ("loudness", "volume"),
}
#: Comparative predicates for the clip that is better on a dimension ({adv}: gap size).
_COMPARATIVES: dict[str, tuple[str, ...]] = {
    "noi": ("has {adv} less background noise", "is {adv} less noisy",
            "has a {adv} lower noise floor"),
    "col": ("is {adv} less distorted", "has a {adv} more natural timbre",
            "shows {adv} less coloration"),
    "dis": ("is {adv} more continuous", "suffers {adv} less from dropouts",
            "flows {adv} more smoothly, with fewer breaks"),
    "loud": ("is {adv} louder", "has a {adv} more comfortable level",
             "has a {adv} more adequate volume"),
}
#: Reasons the winner is preferred, by a dimension it is better on.
_REASONS: dict[str, tuple[str, ...]] = {
    "noi": ("lower background noise", "less intrusive noise"),
    "col": ("more natural timbre", "lower distortion"),
    "dis": ("better continuity", "fewer dropouts"),
    "loud": ("more comfortable level", "more adequate loudness"),
}


def _adverbs(gap: float) -> tuple[str, ...]:
    if gap >= 2.0 - 1e-9:
        return ("much", "far", "substantially")
    if gap >= 1.0 - 1e-9:
        return ("noticeably", "clearly", "markedly")
    return ("somewhat", "slightly", "moderately")


_MOS_INTROS = ("Here is my assessment of this clip.", "Let me summarise what I hear.",
               "Let me go through the main quality factors.")
_MOS_ONLY_INTROS = ("Here is my assessment of this clip.", "Let me summarise what I hear.")
_SUBJECTS_FIRST = ("The clip", "The recording", "The speech", "This sample", "The audio")
_SUBJECTS_LATER = _SUBJECTS_FIRST + ("It",)
_NUMBER_FORMATS = (" ({name} {v})", " ({name}: {v})", " ({name} score {v})", " ({name} {v}/5)")
_MOS_FINALS = (
    "Overall MOS: {m}.",
    "Taking everything into account, I would rate its MOS at {m}.",
    "The overall quality is {q}, giving an overall MOS of {m}.",
    "All in all, the quality is {q}, with a MOS of {m}.",
    "My estimate of the MOS is {m}.",
    "I would give it a MOS of {m}.",
    "Overall quality: {q}, MOS {m}.",
    "Overall, the mean opinion score is {m}.",
)
_ANALYSIS_ONE = (
    "{X} is the main factor holding the overall quality back.",
    "The overall quality is limited mainly by {x}.",
    "Most of the degradation comes from {x}.",
    "{X} weighs most heavily on the overall impression.",
    "It is above all {x} that drags the quality down.",
)
_ANALYSIS_TWO = (
    "{X} and {y} are the main factors holding the overall quality back.",
    "The overall quality is limited mainly by {x} and {y}.",
    "Most of the degradation comes from {x} and {y}.",
    "{X} and {y} weigh most heavily on the overall impression.",
)
_ANALYSIS_GOOD = (
    "No single aspect stands out as a problem; the clip is good throughout.",
    "All aspects are rated well, so nothing drags the quality down noticeably.",
    "Every factor is in good shape, leaving little to criticise.",
)
_ANALYSIS_IF_ANYTHING = ("If anything, {x} is the weakest aspect.",
                         "The weakest aspect, if any, is {x}.")
_STRENGTHS = ("By contrast, {x} is not a concern.", "{X}, on the other hand, holds up well.")

# A/B task. {W}/{L}: winner/loser at the start of a sentence, {w}/{l}: inside a sentence.
_NAMINGS = (("Speech {}", "Speech {}"), ("Clip {}", "clip {}"), ("Sample {}", "sample {}"),
            ("Recording {}", "recording {}"))
_AB_INTROS = ("Comparing the two clips:", "Let me compare the two recordings.",
              "Here is how the two clips compare.")
_CONCESSIONS = ("Admittedly, {f} {comp}{nums}.", "To be fair, {f} {comp} than {o}{nums}.",
                "On {topic}, {f} actually comes out ahead{nums}.",
                "{F} does have the edge in {topic}{nums}, though.")
_OVERALL_SAME_BAND = (
    "Both clips are of {q} quality overall, but {w} is rated {slightly}higher{nums}.",
    "Overall, {w} is rated {slightly}higher{nums}, although both are of {q} quality.",
)
_OVERALL_DIFF_BAND = (
    "Overall, {w} is of {qw} quality, while {l} is only {ql}{nums}.",
    "{W} is rated higher overall{nums}.",
    "In overall quality, {w} comes out ahead{nums}.",
)
_VERDICTS = (
    "Therefore, I prefer {w}.",
    "{W} is the better one overall.",
    "My preference goes to {w}.",
    "All in all, {w} is clearly better.",
    "I would choose {w}.",
    "{W} is preferred.",
    "So the winner is {w}.",
    "{W} offers the higher quality.",
)
_VERDICTS_WITH_REASONS = (
    "Given its {reasons}, {w} is the better one overall.",
    "I therefore prefer {w} for its {reasons}.",
    "With its {reasons}, {w} is clearly better.",
    "Because of its {reasons}, my preference goes to {w}.",
)
_TIES = (
    "Overall, the two clips are of equal quality, so it is a tie.",
    "I have no preference between them: this is a tie.",
    "Neither is better overall, so I call it a tie.",
)


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

    Args:
        include_numbers: also state dimension values as numbers in some texts
            (e.g. "(noisiness 3.2)"); the MOS is always stated.
        tie_threshold: MOS difference up to which an A/B pair counts as equal.
        allow_ties: declare equal pairs a tie; if False, an equal pair raises ``ValueError``
            (the pair sampler guarantees a gap, so this never happens in the recipes).

    The prompt of each request is ignored; all information comes from ``request.ratings``.
    """

    def __init__(self, include_numbers: bool = True, tie_threshold: float = 0.0,
                 allow_ties: bool = True) -> None:
        if tie_threshold < 0:
            raise ValueError(f"tie_threshold must be >= 0, got {tie_threshold}")
        self.include_numbers = include_numbers
        self.tie_threshold = tie_threshold
        self.allow_ties = allow_ties
        self.expert_id = (f"{TEMPLATE_VERSION}-n{int(include_numbers)}-t{tie_threshold:g}"
                          f"-a{int(allow_ties)}")

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
        key = f"{TEMPLATE_VERSION}\x1f{item_id}\x1f{variant.name}\x1f{seed}".encode()
        rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
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
        sentences: list[str] = []
        if not dims:
            if s.chance(0.25):
                sentences.append(s.pick(_MOS_ONLY_INTROS))
            sentences.append(s.pick(QUALITY_PHRASES[level_band(mos)]) + ".")
        else:
            if s.chance(0.3):
                sentences.append(s.pick(_MOS_INTROS))
            sentences.extend(self._dimension_sentences(dims, s))
            sentences.extend(self._analysis(record, dims, s))
        final = s.pick(_MOS_FINALS)
        sentences.append(final.format(m=_fmt(mos), q=QUALITY_WORDS[level_band(mos)]))
        return " ".join(sentences)

    def _dimension_sentences(self, dims: dict[str, float], s: _Sampler) -> list[str]:
        order = [k for k in DIMENSIONS if k in dims]
        style = s.index(4)
        if style == 1:
            order.sort(key=lambda k: dims[k])  # worst first
        elif style == 2:
            order.sort(key=lambda k: -dims[k])  # best first
        elif style == 3:
            s.rng.shuffle(order)
        fmt = s.pick(_NUMBER_FORMATS) if self.include_numbers and s.chance(0.5) else None
        out: list[str] = []
        i = 0
        while i < len(order):
            dim = order[i]
            band = level_band(dims[dim])
            num = self._number(fmt, dim, dims[dim])
            subject = s.pick(_SUBJECTS_FIRST if not out else _SUBJECTS_LATER)
            if i + 1 < len(order) and s.chance(0.3):
                nxt = order[i + 1]
                nband = level_band(dims[nxt])
                nnum = self._number(fmt, nxt, dims[nxt])
                conj = ", and it " if abs(band - nband) <= 1 else s.pick((", but it ",
                                                                          ", although it "))
                out.append(f"{subject} {s.pick(_CLAUSES[dim][band])}{num}{conj}"
                           f"{s.pick(_CLAUSES[nxt][nband])}{nnum}.")
                i += 2
                continue
            if s.chance(0.4):
                out.append(f"{s.pick(_STATEMENTS[dim][band])}{num}.")
            else:
                out.append(f"{subject} {s.pick(_CLAUSES[dim][band])}{num}.")
            i += 1
        return out

    def _analysis(self, record: RatingRecord, dims: dict[str, float], s: _Sampler) -> list[str]:
        weak = weakest_dimensions(record)
        if not weak:
            out = [s.pick(_ANALYSIS_GOOD)]
            low = min(dims, key=lambda k: (dims[k], DIMENSIONS.index(k)))
            if len(dims) > 1 and dims[low] < 5.0 and s.chance(0.3):
                out.append(s.pick(_ANALYSIS_IF_ANYTHING).format(
                    x=s.pick(_NEUTRAL_NOUNS[low])))
            return out
        nouns = [s.pick(_WEAK_NOUNS[k]) for k in weak]
        if len(nouns) == 1:
            text = s.pick(_ANALYSIS_ONE).format(X=_cap(nouns[0]), x=nouns[0])
        else:
            text = s.pick(_ANALYSIS_TWO).format(X=_cap(nouns[0]), x=nouns[0], y=nouns[1])
        out = [text]
        strong = [k for k in dims if level_band(dims[k]) >= 4]
        if strong and s.chance(0.3):
            noun = s.pick(_NEUTRAL_NOUNS[s.rng.choice(strong)])
            out.append(s.pick(_STRENGTHS).format(X=_cap(noun), x=noun))
        return out

    # A/B task

    def _ab_text(self, a: RatingRecord, b: RatingRecord, s: _Sampler) -> str:
        verdict = self.winner(a, b)
        start, inner = s.pick(_NAMINGS)
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
                body = [s.pick(_AB_INTROS)] + body
            return " ".join(body + [s.pick(_TIES)])

        loser = "B" if verdict == "A" else "A"
        winner_dims = [d for d, g in chosen if (g > 0) == (verdict == "A")]
        if not winner_dims or len(winner_dims) < len(chosen) or s.chance(0.3):
            overall = self._overall(values, names, verdict, loser, fmt_on, s)
            if len(winner_dims) < len(chosen) or s.chance(0.5):
                sentences.append(overall)  # after any concession: "..., but overall ..."
            else:
                sentences.insert(0, overall)
        if s.chance(0.3):
            sentences.insert(0, s.pick(_AB_INTROS))
        if winner_dims and s.chance(0.5):
            reasons = _join([s.pick(_REASONS[d]) for d in winner_dims])
            final = s.pick(_VERDICTS_WITH_REASONS).format(w=names[verdict][1], reasons=reasons)
        else:
            final = s.pick(_VERDICTS).format(W=names[verdict][0], w=names[verdict][1])
        sentences.append(final)
        return " ".join(sentences)

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
        comp = s.pick(_COMPARATIVES[dim]).format(adv=s.pick(_adverbs(gap)))
        topic = s.pick(_TOPICS[dim])
        if concession:
            return s.pick(_CONCESSIONS).format(F=names[fav][0], f=names[fav][1],
                                               o=names[oth][1], comp=comp, topic=topic,
                                               nums=nums)
        bf, bo = level_band(vf), level_band(vo)
        forms = ["{F} {comp}{nums}.", "{F} {comp} than {o}{nums}."]
        if bf != bo:
            forms += ["{O} {lo}, whereas {f} {lf}{nums}.",
                      "In terms of {topic}, {f} {lf}, while {o} {lo}{nums}."]
        return s.pick(forms).format(
            F=names[fav][0], f=names[fav][1], O=names[oth][0], o=names[oth][1], comp=comp,
            nums=nums, topic=topic, lf=s.pick(_CLAUSES[dim][bf]), lo=s.pick(_CLAUSES[dim][bo]))

    def _overall(self, values: dict[str, RatingRecord], names: dict[str, tuple[str, str]],
                 win: str, lose: str, fmt_on: bool, s: _Sampler) -> str:
        mw, ml = round(values[win].mos, 1), round(values[lose].mos, 1)
        bw, bl = level_band(mw), level_band(ml)
        nums = f" (MOS {_fmt(mw)} vs {_fmt(ml)})" if fmt_on and mw != ml else ""
        slightly = "slightly " if abs(values[win].mos - values[lose].mos) < MIN_GAP else ""
        forms = _OVERALL_SAME_BAND if bw == bl else _OVERALL_DIFF_BAND
        return s.pick(forms).format(
            W=names[win][0], w=names[win][1], l=names[lose][1], q=QUALITY_WORDS[bw],
            qw=QUALITY_WORDS[bw], ql=QUALITY_WORDS[bl], nums=nums, slightly=slightly)
