"""Dimension levels from level words ("very noisy", "free of dropouts"); see
:mod:`speechbrain_alld.parsing`."""

from __future__ import annotations

import re

from speechbrain_alld.parsing.mos import parse_dimension_numbers
from speechbrain_alld.ratings import DIMENSIONS

# --- dimensions: level words -------------------------------------------------------------------

#: Value given to a dimension described by a level word: the ACR category the words name
#: (1 bad, 2 poor, 3 fair, 4 good, 5 excellent; ALLD-SPEC §2).
LEVEL_VALUES: dict[int, float] = {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0, 5: 5.0}

_NOISE = r"(?:(?:background\s+)?(?:noise|hiss|hum|buzz)(?:\s+(?:floor|level))?)"
_COL = r"(?:distortion|colou?ration|artifacts?|artefacts?)"
_BREAKS = (r"(?:dropouts?|drop-outs?|breaks?|gaps?|interruptions?|discontinuit(?:y|ies)|"
           r"glitch(?:es)?|cut-?outs?)")
_LEVEL = r"(?:(?<!noise\s)level|volume|loudness)"
_IS = r"\s+(?:is|are|was|were|seems|sounds|remains|stays)\s+(?:(?:only|quite|rather)\s+)?"

# (regex, level) per dimension. Overlapping matches: the longest wins, so "very noisy" beats
# "noisy" and "no background noise" beats "background noise".
_LEVEL_TABLE: dict[str, list[tuple[str, int]]] = {
    "noi": [
        # 5: no noise at all
        (r"\b(?:(?:virtually|practically|essentially|almost|nearly|absolutely)\s+)?(?:no|zero)"
         r"\s+(?:trace\s+of\s+|(?:audible|noticeable|perceptible|discernible)\s+)?" + _NOISE
         + r"(?:\s+at\s+all)?", 5),
        (r"\bfree\s+(?:of|from)\s+(?:any\s+)?(?:audible\s+)?" + _NOISE, 5),
        (r"\bnoise-?\s?free\b|\bnoiseless\b", 5),
        (r"\b" + _NOISE + _IS + r"(?:practically\s+|virtually\s+|essentially\s+|completely\s+|"
         r"entirely\s+)?(?:absent|inaudible|non-?existent|imperceptible)", 5),
        (r"\b(?:completely|perfectly|totally|entirely|very|spotlessly|pristine\s+and)?\s*clean\b",
         5),
        (r"(?:\bnot|n't|\bnever)\s+(?:at\s+all\s+)?noisy\b", 5),
        # 4: little noise
        (r"\b(?:(?:only|just)\s+)?(?:(?:a|an|some)\s+)?(?:faint|slight|little|low|minimal|minor|"
         r"subtle|light|mild|soft|barely\s+audible|barely\s+noticeable|hardly\s+noticeable|"
         r"unobtrusive)(?:,?\s+(?:unobtrusive|faint|low|steady|constant))?\s+(?:amount\s+of\s+)?"
         + _NOISE, 4),
        (r"\b(?:mostly|largely|fairly|reasonably|relatively|generally|quite)\s+clean\b", 4),
        (r"\b" + _NOISE + _IS + r"(?:low|faint|minimal|slight|minor|mild|subtle|barely\s+"
         r"audible|hardly\s+noticeable)\b", 4),
        (r"\bno\s+(?:significant|major|strong|disturbing|distracting)\s+" + _NOISE, 4),
        (r"(?:\bnot|n't)\s+(?:very|too|overly|particularly|that|especially)\s+noisy\b", 4),
        (r"\bslightly\s+noisy\b", 4),
        # 3: noticeable noise
        (r"\b(?:noticeable|moderate|audible|clearly\s+audible|some|mild|medium|perceptible|"
         r"(?:a\s+)?(?:fair|noticeable|moderate|certain)\s+amount\s+of)\s+" + _NOISE, 3),
        (r"\b" + _NOISE + _IS + r"(?:moderate|noticeable|audible|clearly\s+audible|present|"
         r"perceptible|medium)\b", 3),
        (r"\b(?:somewhat|moderately|a\s+bit|a\s+little|mildly|fairly)\s+noisy\b", 3),
        # 2: strong noise
        (r"\b(?:strong|intrusive|persistent|considerable|significant|heavy|loud|prominent|high|"
         r"substantial|disturbing|distracting|obtrusive|(?:a\s+)?lot\s+of|lots\s+of|much)"
         r"(?:,?\s+(?:persistent|intrusive|constant|steady))?\s+" + _NOISE, 2),
        (r"\b" + _NOISE + _IS + r"(?:strong|intrusive|significant|considerable|high|prominent|"
         r"heavy|loud|disturbing|distracting|substantial)\b", 2),
        (r"\b(?:quite|rather|clearly|noticeably|pretty|really)?\s*noisy\b", 2),
        (r"\bmarred\s+by\s+(?:\w+\s+)?" + _NOISE, 2),
        # 1: noise dominates
        (r"\b(?:very|extremely|highly|severely|terribly|incredibly|excessively|overly)\s+noisy\b",
         1),
        (r"\b(?:heavily|completely|largely|badly|severely)\s+masked\s+by\s+(?:\w+\s+)?noise|"
         r"\bburied\s+(?:in|under)\s+(?:\w+\s+)?noise|\bdrowned\s+(?:out\s+)?(?:by|in)\s+"
         r"(?:\w+\s+)?noise|\bdominated\s+by\s+(?:\w+\s+)?noise|\bnoise\s+(?:almost\s+|nearly\s+"
         r")?(?:drowns|masks|swamps|overpowers)\b", 1),
        (r"\b(?:overwhelming|intense|severe|extreme|deafening|massive|overpowering)\s+" + _NOISE,
         1),
        (r"\b" + _NOISE + _IS + r"(?:overwhelming|extreme|severe|intense|overpowering|very\s+"
         r"(?:strong|loud|high))\b", 1),
    ],
    "col": [
        # 5: natural, undistorted
        (r"\b(?:completely|entirely|perfectly|fully|totally)\s+natural\b", 5),
        (r"\bnatural,?\s+(?:and\s+)?uncolou?red\b|\buncolou?red\b|\bundistorted\b", 5),
        (r"\b(?:(?:virtually|practically|essentially|almost|absolutely)\s+)?(?:no|zero)\s+"
         r"(?:(?:audible|noticeable|perceptible|discernible)\s+)?" + _COL + r"(?:\s+at\s+all)?",
         5),
        (r"\bfree\s+(?:of|from)\s+(?:any\s+)?(?:audible\s+)?" + _COL + r"|\bdistortion-free\b", 5),
        (r"\b" + _COL + _IS + r"(?:completely\s+|entirely\s+)?(?:absent|inaudible|non-?existent|"
         r"imperceptible)", 5),
        (r"\b(?:sounds|timbre\s+is|voice\s+is)\s+natural\b|\bnatural(?:-sounding)?\s+(?:timbre|"
         r"voice|sound|tone)\b", 5),
        (r"(?:\bnot|n't|\bnever)\s+(?:at\s+all\s+)?(?:distorted|colou?red)\b", 5),
        # 4: slight coloration
        (r"\b(?:largely|mostly|generally|fairly|quite|reasonably|relatively|nearly|almost)\s+"
         r"natural\b", 4),
        (r"\b(?:(?:only|just)\s+)?(?:(?:a|an)\s+)?(?:slight|minor|little|minimal|faint|mild|"
         r"subtle|light)\s+(?:traces?\s+of\s+)?" + _COL, 4),
        (r"\b" + _COL + _IS + r"(?:minimal|slight|minor|low|mild|subtle|faint)\b", 4),
        (r"\bslightly\s+(?:colou?red|distorted|unnatural|muffled)\b", 4),
        (r"(?:\bnot|n't)\s+(?:very|too|overly|particularly|that|especially)\s+(?:distorted|"
         r"colou?red)\b", 4),
        # 3: some coloration
        (r"\b(?:some|moderate|noticeable|audible|certain)\s+(?:filtering\s+)?" + _COL, 3),
        (r"\b" + _COL + _IS + r"(?:moderate|noticeable|audible|present)\b", 3),
        (r"\b(?:moderately|somewhat|a\s+bit|a\s+little|mildly|partly)\s+(?:distorted|colou?red|"
         r"unnatural|muffled|harsh|metallic|robotic|tinny|thin)\b", 3),
        # 2: clearly distorted
        (r"\b(?:clearly|quite|rather|noticeably|strongly|considerably|fairly|obviously|"
         r"significantly)\s+(?:distorted|colou?red|unnatural|muffled|metallic|robotic)"
         r"(?:,?\s+(?:and\s+)?(?:unnatural|distorted|muffled))?\b", 2),
        (r"\bmuffled\s+and\s+distorted\b|\b(?:distorted|unnatural|muffled|robotic|metallic)\b", 2),
        (r"\b(?:considerable|significant|strong|pronounced|substantial|clear|obvious|noticeable"
         r"\s+and\s+unpleasant)\s+" + _COL, 2),
        (r"\b" + _COL + _IS + r"(?:pronounced|strong|significant|considerable|high|clear|"
         r"obvious|substantial)\b", 2),
        (r"(?:\bnot|n't|\bnever)\s+(?:sound\s+)?natural\b", 2),
        # 1: severely distorted
        (r"\b(?:severely|heavily|badly|extremely|very|highly|massively|terribly|strongly\s+and"
         r"\s+harshly)\s+(?:distorted|colou?red|mangled|unnatural)(?:\s+and\s+harsh)?\b", 1),
        (r"\b(?:badly\s+)?mangled\b|\bharsh\s+and\s+distorted\b", 1),
        (r"\b(?:harsh|severe|extreme|heavy|massive|overwhelming)\s+" + _COL, 1),
        (r"\b" + _COL + _IS + r"(?:severe|extreme|overwhelming|massive|heavy|very\s+strong)\b", 1),
    ],
    "dis": [
        # 5: continuous
        (r"\b(?:perfectly|completely|fully|entirely|totally|100%)\s+(?:continuous|smooth|"
         r"seamless|uninterrupted)\b", 5),
        (r"\bwithout\s+(?:any|a\s+single)\s+(?:audible\s+)?" + _BREAKS, 5),
        (r"\b(?:(?:virtually|practically|essentially|absolutely)\s+)?(?:no|zero)\s+(?:(?:audible|"
         r"noticeable|perceptible)\s+)?" + _BREAKS + r"(?:\s+(?:or|and|nor)\s+" + _BREAKS
         + r")?(?:\s+at\s+all)?", 5),
        (r"\bnot\s+(?:a\s+single|one)\s+" + _BREAKS, 5),
        (r"\bcontinuity\s+is\s+(?:flawless|perfect|excellent|impeccable)\b", 5),
        (r"\b(?:flows\s+continuously|continuous|uninterrupted|seamless)\b", 5),
        (r"\bfree\s+(?:of|from)\s+(?:any\s+)?" + _BREAKS, 5),
        (r"\b" + _BREAKS + _IS + r"(?:absent|non-?existent)\b", 5),
        # 4: nearly continuous
        (r"\b(?:almost|nearly|mostly|largely|generally|virtually|essentially)\s+(?:entirely\s+|"
         r"completely\s+|fully\s+)?(?:continuous|smooth|seamless|uninterrupted)\b", 4),
        (r"\b(?:largely|mostly|almost\s+entirely|generally|nearly)\s+free\s+(?:of|from)\s+"
         + _BREAKS, 4),
        (r"\b(?:(?:only|just)\s+)?(?:(?:an?|one)\s+)?(?:occasional\s+tiny|tiny|rare|very\s+few|"
         r"(?<!a\s)few|minor|slight|brief|small|single|isolated)\s+" + _BREAKS, 4),
        (r"\b" + _BREAKS + _IS + r"(?:rare|minimal|infrequent|few|very\s+rare|minor|barely\s+"
         r"noticeable)\b", 4),
        (r"\bcontinuity\s+is\s+(?:good|very\s+good|high|fine)\b|\bgood\s+continuity\b", 4),
        (r"\bsmooth(?:ly)?\b", 4),
        # 3: some breaks
        (r"\b(?:some|occasional|a\s+few|several|noticeable|moderate|audible|intermittent|"
         r"sporadic|a\s+couple\s+of)\s+(?:noticeable\s+|audible\s+|brief\s+|short\s+)?"
         + _BREAKS, 3),
        (r"\b" + _BREAKS + _IS + r"(?:occasional|noticeable|moderate|audible|present|"
         r"intermittent|sporadic)\b", 3),
        (r"\bcontinuity\s+is\s+(?:only\s+)?(?:fair|moderate|acceptable|ok|okay|average|"
         r"mediocre)\b|\b(?:fair|moderate|average)\s+continuity\b", 3),
        (r"\b(?:somewhat|slightly|a\s+bit|a\s+little|mildly|occasionally)\s+(?:choppy|"
         r"interrupted|fragmented|broken)\b", 3),
        # 2: frequent breaks
        (r"\b(?:frequent|regular|repeated|many|numerous|clear|significant|considerable|"
         r"recurring|multiple|noticeable\s+and\s+frequent)\s+" + _BREAKS, 2),
        (r"\b(?:quite|rather|fairly|noticeably|clearly|pretty|really)?\s*choppy\b", 2),
        (r"\b(?:repeatedly|frequently|regularly|often)\s+(?:interrupted|cut\s+off|broken)\b|"
         r"\bbreaks\s+up\s+(?:regularly|frequently|often|repeatedly)\b", 2),
        (r"\b" + _BREAKS + _IS + r"(?:frequent|common|regular|numerous|many)\b", 2),
        (r"\bcontinuity\s+is\s+(?:poor|low|weak)\b|\bpoor\s+continuity\b|\bfragmented\b", 2),
        # 1: falls apart
        (r"\b(?:severely|badly|heavily|completely|extremely|very|highly)\s+(?:fragmented|choppy|"
         r"broken(?:\s+up)?|interrupted|disrupted)\b", 1),
        (r"\bbreaks\s+up\s+(?:constantly|all\s+the\s+time|continually|continuously)\b", 1),
        (r"\briddled\s+with\s+(?:\w+\s+)?" + _BREAKS, 1),
        (r"\b" + _BREAKS + _IS + r"(?:constant|continual|pervasive|everywhere|very\s+frequent)\b",
         1),
        (r"\b(?:constant|continual|pervasive|incessant)\s+" + _BREAKS, 1),
        (r"\bcontinuity\s+is\s+(?:very\s+poor|terrible|bad|awful|extremely\s+poor)\b", 1),
    ],
    "loud": [
        # 5: ideal level
        (r"\b(?:ideal|perfect|optimal|excellent)\s+(?:listening\s+)?" + _LEVEL, 5),
        (r"\bperfectly\s+(?:comfortable|balanced|adequate)(?:\s+" + _LEVEL + r")?", 5),
        (r"\b(?:well-balanced|well\s+balanced)\s+" + _LEVEL, 5),
        (r"\bjust\s+the\s+right\s+" + _LEVEL, 5),
        (r"\b" + _LEVEL + _IS + r"(?:ideal|perfect|just\s+right|optimal|excellent|spot\s+on)\b",
         5),
        # 4: comfortable
        (r"\bloud\s+enough\b|\bloud\s+and\s+clear\b", 4),
        (r"\b(?:adequate|good|comfortable|appropriate|suitable|decent|sufficient|fine|proper|"
         r"pleasant)\s+(?:listening\s+)?" + _LEVEL, 4),
        (r"\b" + _LEVEL + _IS + r"(?:good|adequate|comfortable|appropriate|fine|sufficient|"
         r"decent|suitable|well\s+balanced|balanced)\b", 4),
        (r"(?:\bnot|n't)\s+(?:very|too|overly|particularly|that|especially)\s+(?:quiet|soft)\b",
         4),
        # 3: a bit low
        (r"\b(?:somewhat|slightly|a\s+bit|a\s+little|fairly|a\s+touch)\s+(?:quiet|soft)\b", 3),
        (r"\b(?:moderate,?\s+)?(?:slightly|somewhat|a\s+bit|a\s+little)\s+(?:low|weak)\s+"
         + _LEVEL, 3),
        (r"\bcould\s+be\s+(?:(?:a\s+bit|a\s+little|slightly|somewhat)\s+)?louder\b", 3),
        (r"\b(?:only\s+)?(?:fair|moderate|average|acceptable|mediocre)\s+" + _LEVEL, 3),
        (r"\b" + _LEVEL + _IS + r"(?:fair|acceptable|moderate|ok|okay|average|mediocre|"
         r"(?:somewhat|a\s+bit|slightly|a\s+little)\s+low)\b", 3),
        (r"\b(?:a\s+bit|slightly|somewhat|a\s+little)\s+too\s+loud\b", 3),
        # 2: too quiet
        (r"\b(?:rather|quite|too|fairly|noticeably|clearly|pretty|really)?\s*(?:quiet|soft)\b", 2),
        (r"(?<!the\s)\b(?:low|poor|weak|insufficient|inadequate|reduced)\s+" + _LEVEL, 2),
        (r"\b" + _LEVEL + _IS + r"(?:low|poor|weak|too\s+low|insufficient|quiet|inadequate)\b",
         2),
        (r"\b(?:too|overly|excessively)\s+loud\b", 2),
        # 1: barely audible
        (r"\b(?:extremely|very|exceedingly|far\s+too|way\s+too|much\s+too)\s+(?:quiet|soft)\b",
         1),
        (r"\bbarely\s+(?:loud\s+enough|audible)\b|\binaudible\b|\balmost\s+(?:no|zero)\s+"
         r"(?:usable\s+)?" + _LEVEL, 1),
        (r"\b(?:very|extremely)\s+low\s+" + _LEVEL, 1),
        (r"\b" + _LEVEL + _IS + r"(?:far\s+too\s+low|very\s+poor|extremely\s+low|very\s+low|"
         r"terrible|bad|much\s+too\s+low|way\s+too\s+low)\b", 1),
        (r"\b(?:far|way|much)\s+too\s+loud\b", 1),
    ],
}
_LEVEL_PATTERNS: dict[str, list[tuple[re.Pattern[str], int]]] = {
    dim: [(re.compile(rx, re.IGNORECASE), level) for rx, level in table]
    for dim, table in _LEVEL_TABLE.items()
}
_NEGATION_BEFORE = re.compile(r"(?:\bnot|n't|\bnever|\bhardly|\bbarely)\s+"
                              r"(?:(?:be|sound|seem|appear|really)\s+)?$", re.IGNORECASE)


def _level_hits(text: str) -> list[tuple[int, int, str, int]]:
    """Non-overlapping (start, end, dimension, level) level-word statements in ``text``."""
    candidates: list[tuple[int, int, str, int]] = []
    for dim, patterns in _LEVEL_PATTERNS.items():
        for pattern, level in patterns:
            for match in pattern.finditer(text):
                start, end = match.span()
                while start < end and text[start].isspace():
                    start += 1
                if start < end:
                    candidates.append((start, end, dim, level))
    # Longest first; an earlier start breaks ties.
    candidates.sort(key=lambda c: (-(c[1] - c[0]), c[0]))
    taken: list[tuple[int, int, str, int]] = []
    for cand in candidates:
        if all(cand[1] <= t[0] or cand[0] >= t[1] for t in taken):
            taken.append(cand)
    out = []
    for start, end, dim, level in sorted(taken):
        if _NEGATION_BEFORE.search(text[max(0, start - 25):start]):
            # "is not clean", "doesn't sound natural": a good level negated is poor; a bad one
            # negated ("not quiet") is good.
            level = 2 if level >= 4 else 5
        out.append((start, end, dim, level))
    return out


def parse_dimension_levels(text: str) -> dict[str, int]:
    """ACR level (1..5) of each dimension described in words (numbers are not read).

    Several statements about one dimension are averaged (rounded half up); a negated level word
    ("not clean") counts as poor, a negated bad one ("not quiet") as good.

    Arguments
    ---------
    text : str
        A generated evaluation.

    Returns
    -------
    dict[str, int]
        ``{dimension: level}`` for the dimensions described; the others are left out.

    Example
    -------
    >>> parse_dimension_levels("The speech is very noisy but free of dropouts.")
    {'noi': 1, 'dis': 5}
    >>> parse_dimension_levels("Noisiness 3.2.")
    {}
    """
    levels: dict[str, list[int]] = {}
    for _, _, dim, level in _level_hits(text):
        levels.setdefault(dim, []).append(level)
    return {dim: int(sum(v) / len(v) + 0.5) for dim, v in levels.items()}


def parse_dimensions(text: str) -> dict[str, float]:
    """Values of the dimensions a text states: ``{"noi"|"col"|"dis"|"loud": value}``.

    A number stated for the dimension wins ("noisiness 3.2", "noisiness: 3.2/5",
    "coloration (4.1/5)", "discontinuity of 2.0", "loudness is rated 3.5"; numbers outside 1..5
    are ignored). Otherwise level words are mapped through :data:`LEVEL_VALUES` ("very noisy" 1,
    "noticeable background noise" 3, "free of background noise" 5; "no background noise" is
    clean, not noisy). Dimensions the text says nothing about are left out.

    Arguments
    ---------
    text : str
        A generated evaluation.

    Returns
    -------
    dict[str, float]
        ``{dimension: value}`` in the order of :data:`~speechbrain_alld.ratings.DIMENSIONS`.

    Example
    -------
    >>> parse_dimensions("Noisiness: 3.2/5, coloration (4.1/5); the level is slightly low.")
    {'noi': 3.2, 'col': 4.1, 'loud': 3.0}
    >>> parse_dimensions("The speech is very noisy but free of dropouts.")
    {'noi': 1.0, 'dis': 5.0}
    >>> parse_dimensions("MOS: 3.0")
    {}
    """
    out = {dim: float(LEVEL_VALUES[level]) for dim, level in parse_dimension_levels(text).items()}
    out.update(parse_dimension_numbers(text))
    return {dim: out[dim] for dim in DIMENSIONS if dim in out}
