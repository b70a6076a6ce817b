"""Read the MOS, the dimensions and the A/B verdict back out of a generated evaluation text.

Every parser returns ``None`` (or, for :func:`parse_dimensions`, leaves the key out) when the text
does not state the value, instead of guessing: the callers count such texts as unparsed
(ALLD-SPEC §6), never drop them silently.

- :func:`parse_mos`: the number stated as the overall MOS ("MOS of 3.4", "MOS score is about 3",
  "overall quality 2.5/5", "the mean opinion score I would assign is 3.2", "MOS: 3,4",
  "rated 3.5 out of 5 overall"). The last statement wins (the text ends with it); a number outside
  1..5, a range ("MOS between 3 and 4") or a score on another scale ("7/10") is not a MOS.
- :func:`parse_dimensions`: noisiness (``noi``), coloration (``col``), discontinuity (``dis``) and
  loudness (``loud``), from a stated number ("noisiness: 3.2/5") or, failing that, from level
  words ("very noisy", "free of background noise", "slightly low level"). Level words map to the
  ACR category value they name (:data:`LEVEL_VALUES`: 1 bad .. 5 excellent).
- :func:`parse_verdict`: "A", "B" or "tie" ("I prefer Speech A", "the second one is better",
  "B is not better than A", "A is worse than B", "they are equally good").
- :func:`parse_evaluation`: all of the above for one text, with a ``parsed`` flag per task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from speechbrain_alld.ratings import DIMENSIONS, SCALE_MAX, SCALE_MIN

# --- numbers -----------------------------------------------------------------------------------

# A number, with a decimal point or a decimal comma ("3,4"), not part of a longer number.
_NUM = r"(?<![\d.,])(\d+(?:[.,]\d+)?)(?![\d])"
# "/5", "out of 5": fine; another denominator ("/10") means another scale (checked in code).
_DENOM = re.compile(r"\s*(?:/|out\s+of)\s*(\d+(?:[.,]\d+)?)", re.IGNORECASE)
# A range ("3 to 4", "3-4", "3 or 4") is not one value.
_RANGE_AFTER = re.compile(r"\s*(?:-|–|to|or)\s*\d", re.IGNORECASE)
_RANGE_BEFORE = re.compile(r"(?:between|from)\s+$", re.IGNORECASE)
# A number that counts or measures something else ("3 dropouts", "2 seconds", "20 dB").
_OTHER_UNIT = re.compile(
    r"\s*(?:%|percent|db\b|hz\b|khz\b|ms\b|s\b|sec|seconds?|minutes?|times\b|x\b|clips?\b|"
    r"samples?\b|dropouts?\b|breaks?\b|gaps?\b|interruptions?\b|clicks?\b|words?\b|"
    r"speakers?\b|listeners?\b|votes?\b|dimensions?\b|aspects?\b|factors?\b)", re.IGNORECASE)
# Scale mentions that carry digits but state no value ("on a 1-5 scale", "(1 to 5)").
_SCALE_MENTION = re.compile(
    r"(?:\bon\s+(?:a|the)\s+)?(?:\bscale\s+(?:of|from)\s+)?\(?\b1\s*(?:-|–|to)\s*5\)?"
    r"(?:\s*(?:-\s*)?(?:point\s+)?scale\b)?", re.IGNORECASE)


def _to_float(raw: str) -> float:
    return float(raw.replace(",", "."))


def _blank_scale_mentions(text: str) -> str:
    """``text`` with "1-5 scale"-like mentions blanked out (same length, so positions hold)."""
    def blank(match: re.Match[str]) -> str:
        span = match.group(0)
        # Only a real scale mention: "1-5" next to "scale", or in parentheses.
        if "scale" in span.lower() or span.startswith("("):
            return " " * len(span)
        return span

    return _SCALE_MENTION.sub(blank, text)


#: Returned by :func:`_accept_number` for a number that is no score statement at all.
_SKIP = object()


def _accept_number(text: str, match: re.Match[str], group: int = 1) -> float | None | object:
    """The value of a matched score, ``None`` when it is not a single 1..5 score (a range,
    another scale, out of 1..5), or ``_SKIP`` when the number counts something else."""
    start, end = match.span(group)
    after = text[end:]
    denom = _DENOM.match(after)
    if not denom and _OTHER_UNIT.match(after):
        return _SKIP
    if _RANGE_AFTER.match(after) or _RANGE_BEFORE.search(text[max(0, start - 12):start]):
        return None
    if denom and abs(_to_float(denom.group(1)) - SCALE_MAX) > 1e-9:
        return None
    value = _to_float(match.group(group))
    return value if SCALE_MIN <= value <= SCALE_MAX else None


# --- MOS ---------------------------------------------------------------------------------------

# Word stems that end the search for a MOS number: another quantity is being talked about.
_MOS_BLOCKED = (
    r"nois|hiss|colou?r|distort|timbre|continu|discontinu|dropout|break|gap|interrupt|chopp|"
    r"loud|volume|level|(?:than|above|below|over|under|least|most|between|from|not|no|vs|versus"
    r"|scale|range|std|standard|deviation|variance|confidence|previous|other)\b"
)
# Up to six filler words between "MOS" and its number ("the MOS comes out at 3.2").
_MOS_GAP = (r"(?:[\s,:=()\-–]+(?!(?:" + _MOS_BLOCKED + r"))[A-Za-z'’]+){0,6}?"
            r"[\s,:=()\-–~≈]*")
# After "overall", only words that keep the sentence about the overall score.
_OVERALL_WORDS = (
    r"quality|score|rating|grade|mos|impression|assessment|estimate|is|was|be|would|will|i|i'd|"
    r"rate|rated|give|it|this|the|a|an|of|at|as|about|around|approximately|roughly|nearly|"
    r"estimated|predicted|say|comes|come|out|to|my|its|speech|clip|sample|recording|audio|"
    r"utterance|mean|opinion|so|that|i'm|giving|gives|overall|perceived|final|total|therefore"
)
_OVERALL_GAP = (r"(?:[\s,:=()\-–]+(?:" + _OVERALL_WORDS + r")\b){0,8}?[\s,:=()\-–~≈]*")
_MOS_PATTERNS = [
    # "MOS: 3.4", "MOS of 3.4", "the mean opinion score I would assign is 3.2", "MOS=4"
    re.compile(r"\b(?:MOS|mean\s+opinion\s+score)\b" + _MOS_GAP + _NUM, re.IGNORECASE),
    # "overall quality 2.5/5", "Overall: 3.5", "overall, I would rate it 3"
    re.compile(r"\boverall\b" + _OVERALL_GAP + _NUM, re.IGNORECASE),
    # "rated 3.5 out of 5 overall", "3.5/5 overall"
    re.compile(_NUM + r"\s*(?:/|out\s+of)\s*5(?:\.0)?\s+overall\b", re.IGNORECASE),
]


def parse_mos(text: str) -> float | None:
    """The overall MOS stated in ``text`` (the last statement wins), or ``None``.

    Accepts "MOS: 3.4", "MOS of 3.4", "MOS score is about 3", "MOS=4", "MOS: 3,4" (decimal
    comma), "a MOS around 4", "overall quality 2.5/5", "the mean opinion score I would assign is
    3.2", "so the MOS comes out at 3.2", "rated 3.5 out of 5 overall" and the like. Numbers stated
    for a dimension ("noisiness 3.2") are never read as the MOS. A number outside 1..5, on another
    scale ("8/10") or a range ("3-4") is not a MOS: when the last statement is one of those, the
    result is ``None``.

    Arguments
    ---------
    text : str
        A generated evaluation.

    Returns
    -------
    float | None
        The MOS (1..5), or ``None`` when the text states none.

    Example
    -------
    >>> parse_mos("Slight hiss throughout. MOS: 3,4")
    3.4
    >>> parse_mos("overall quality 2.5/5")
    2.5
    >>> parse_mos("On a 1-5 scale the MOS is between 3 and 4.") is None
    True
    >>> parse_mos("I would give it 8/10.") is None
    True
    """
    text = _blank_scale_mentions(text)
    best: tuple[int, float | None] | None = None
    for pattern in _MOS_PATTERNS:
        for match in pattern.finditer(text):
            position = match.start(1)
            value = _accept_number(text, match)
            if value is not _SKIP and (best is None or position > best[0]):
                best = (position, value)  # type: ignore[assignment]
    return None if best is None else best[1]


# --- dimensions: numbers -----------------------------------------------------------------------

_DIMENSION_NAMES: dict[str, str] = {
    "noi": r"noisiness|(?:background\s+)?noise(?:\s+(?:level|floor))?",
    "col": r"colou?ration|colou?ring|distortion",
    "dis": r"discontinuity|continuity",
    "loud": r"loudness|volume(?:\s+level)?",
}
_DIM_FILLER = (r"(?:[\s:=(]+|\b(?:score|rating|dimension|value|is|was|of|at|rated|gets|get|"
               r"receives|would\s+be|be|about|around|approximately|roughly|estimated|i\s+would"
               r"|i'd|give|it|a|an)\b){0,8}?")
_DIM_NUMBER_PATTERNS: dict[str, re.Pattern[str]] = {
    dim: re.compile(r"\b(?:" + names + r")\b" + _DIM_FILLER + r"\s*" + _NUM, re.IGNORECASE)
    for dim, names in _DIMENSION_NAMES.items()
}
_COMPARISON_AFTER = re.compile(r"(?:\s*/\s*5(?:\.0)?)?\)?\s*(?:vs\.?|versus|compared|against)\b",
                               re.IGNORECASE)


def _dimension_numbers(text: str) -> dict[str, float]:
    """Numbers stated for a dimension; the last statement per dimension wins."""
    out: dict[str, float] = {}
    for dim, pattern in _DIM_NUMBER_PATTERNS.items():
        for match in pattern.finditer(text):
            if _COMPARISON_AFTER.match(text, match.end(1)):
                continue  # "noisiness 3.2 vs 2.1": a comparison of two clips
            value = _accept_number(text, match)
            if isinstance(value, float):
                out[dim] = value
    return out


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
    out.update(_dimension_numbers(text))
    return {dim: out[dim] for dim in DIMENSIONS if dim in out}


# --- A/B verdict -------------------------------------------------------------------------------

_NOUN = r"(?:speech|sample|clip|audio|recording|utterance|option|version|file)"
_SIDE = (r"(?:\b" + _NOUN + r"\s*|\b)((?-i:[AB])|first|second|former|latter)\b"
         r"(?:\s+(?:one|" + _NOUN + r"))?")
_BETTER = r"(?:better|superior|preferred|preferable|higher[- ]quality|higher\s+quality|" \
          r"the\s+winner|cleaner|clearer|the\s+better\s+(?:one|choice|option))"
_WORSE = r"(?:worse|inferior|lower[- ]quality|lower\s+quality|the\s+loser|the\s+worse\s+" \
         r"(?:one|choice|option)|less\s+preferable|noisier)"
_DEGREE = r"(?:clearly\s+|slightly\s+|much\s+|noticeably\s+|overall\s+|the\s+|a\s+bit\s+|far\s+|" \
          r"significantly\s+|somewhat\s+|definitely\s+|marginally\s+|a\s+little\s+|even\s+)*"
_VERB = r"\s+(?:is|sounds|has|was|offers|provides|seems|appears|looks|remains)\s+"
# (pattern, kind): kind "pick" names the preferred side; "better" may be negated (group 2);
# "worse" names the other side (and is ignored when negated: "not worse" is no preference).
_VERDICT_PATTERNS = [
    # "I prefer Speech A", "prefer B", "preference: A", "winner: B", "I'd go with B"
    (re.compile(r"\b(?:prefer(?:s|red)?|preference(?:\s+is|\s+goes\s+to|\s*:)?|winner\s*(?:is|:)"
                r"|choose|choice\s*(?:is|:)|pick|go(?:ing)?\s+(?:with|for)|opt\s+for|"
                r"vote\s+for|recommend|favou?r|side\s+with|select|lean(?:s|ing)?\s+towards?)"
                r"\s*(?:for\s+|to\s+)?(?:the\s+)?" + _SIDE, re.IGNORECASE), "pick"),
    # "Speech A is better", "A sounds better", "B has the higher quality", "B is not better"
    (re.compile(r"(?:the\s+)?" + _SIDE + _VERB + r"(not\s+)?" + _DEGREE + _BETTER,
                re.IGNORECASE), "better"),
    # "Speech A wins", "B is the clear winner"
    (re.compile(r"(?:the\s+)?" + _SIDE + r"\s+(?:wins|is\s+the\s+(?:clear\s+|overall\s+)?winner"
                r"|comes\s+out\s+on\s+top|takes\s+it)\b", re.IGNORECASE), "pick"),
    # "A is worse than B", "B is worse"
    (re.compile(r"(?:the\s+)?" + _SIDE + _VERB + r"(not\s+)?" + _DEGREE + _WORSE,
                re.IGNORECASE), "worse"),
]
_ORDINAL = {"first": "A", "second": "B", "former": "A", "latter": "B"}
_PICK_NEGATED = re.compile(r"(?:\bnot|n't|\bnever)\s+(?:\w+\s+)?$", re.IGNORECASE)
_TIE = re.compile(r"\b(?:tie|equally\s+(?:good|bad|clean|matched|preferable)|equal\s+quality|"
                  r"no\s+(?:clear\s+)?preference|neither\s+(?:one\s+|clip\s+|sample\s+)?is\s+"
                  r"(?:better|preferred|preferable)|about\s+the\s+same|prefer(?:s|red)?\s+"
                  r"neither|(?:the\s+)?same\s+quality|indistinguishable|on\s+par|"
                  r"(?:both|they)\s+(?:are|sound)\s+(?:equally|equivalent|comparable))\b",
                  re.IGNORECASE)


def _other(side: str) -> str:
    return "B" if side == "A" else "A"


def parse_verdict(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` as stated in a comparison text; ``None`` if not stated.

    The last explicit statement wins. Sides are "A"/"B" (upper case only, so the article "a" is
    never read as a side, "Speech A", "SpeechB", "sample B"), "the first/second (one)" and "the
    former/latter". "B is not better" and "B is worse" count as verdicts for A, "I'd go with B"
    and "Speech B wins" for B; "prefer neither", "they are equally good" are a tie. A text that
    names both clips without a preference ("Speech A vs Speech B") gives ``None``.

    Arguments
    ---------
    text : str
        A generated comparison of Speech A and Speech B.

    Returns
    -------
    str | None
        ``"A"``, ``"B"``, ``"tie"``, or ``None`` when no verdict is stated.

    Example
    -------
    >>> parse_verdict("I prefer Speech A.")
    'A'
    >>> parse_verdict("Speech B is not better than Speech A.")
    'A'
    >>> parse_verdict("At first B seemed better, but I prefer the first one.")
    'A'
    >>> parse_verdict("They are equally good.")
    'tie'
    >>> parse_verdict("Speech A vs Speech B.") is None
    True
    """
    found: list[tuple[int, str]] = []
    for pattern, kind in _VERDICT_PATTERNS:
        for match in pattern.finditer(text):
            side = _ORDINAL.get(match.group(1).lower(), match.group(1).upper())
            if kind == "pick":
                if _PICK_NEGATED.search(text[max(0, match.start() - 20):match.start()]):
                    continue  # "I would not choose A": no positive statement
            elif kind == "better":
                if match.group(2):
                    side = _other(side)
            else:  # worse
                if match.group(2):
                    continue
                side = _other(side)
            found.append((match.start(), side))
    for match in _TIE.finditer(text):
        found.append((match.start(), "tie"))
    if not found:
        return None
    return max(found)[1]


# --- everything at once ------------------------------------------------------------------------


@dataclass
class ParsedEvaluation:
    """What one generated text states (returned by :func:`parse_evaluation`).

    Arguments
    ---------
    mos : float | None
        The MOS stated, if any.
    dimensions : dict[str, float]
        The dimension values stated.
    verdict : str | None
        The A/B verdict stated (A/B task only).
    parsed : bool
        Whether the task's main value (MOS, or verdict) was found.

    Example
    -------
    >>> ParsedEvaluation(mos=3.5, parsed=True)
    ParsedEvaluation(mos=3.5, dimensions={}, verdict=None, parsed=True)
    """

    mos: float | None = None
    dimensions: dict[str, float] = field(default_factory=dict)
    verdict: str | None = None
    parsed: bool = False


def parse_evaluation(text: str, task: str) -> ParsedEvaluation:
    """Parse a MOS (``task="mos"``) or A/B (``task="ab"``) evaluation text.

    For "mos", ``parsed`` is whether a MOS was found; for "ab", whether a verdict was. The MOS
    and the dimensions are read for both tasks (an A/B text rarely states a single MOS); the
    verdict only for "ab".

    Arguments
    ---------
    text : str
        A generated evaluation.
    task : str
        ``"mos"`` or ``"ab"``.

    Returns
    -------
    ParsedEvaluation
        The MOS, dimensions and (A/B) verdict read, with the ``parsed`` flag.

    Example
    -------
    >>> parse_evaluation("Clean speech, slightly quiet. MOS: 4.1", "mos")
    ParsedEvaluation(mos=4.1, dimensions={'noi': 5.0, 'loud': 3.0}, verdict=None, parsed=True)
    >>> parse_evaluation("Speech A is cleaner; I prefer Speech A.", "ab").verdict
    'A'
    """
    if task not in ("mos", "ab"):
        raise ValueError(f"task must be 'mos' or 'ab', got {task!r}")
    mos = parse_mos(text)
    if task == "mos":
        return ParsedEvaluation(mos=mos, dimensions=parse_dimensions(text), parsed=mos is not None)
    verdict = parse_verdict(text)
    return ParsedEvaluation(mos=mos, dimensions=parse_dimensions(text), verdict=verdict,
                            parsed=verdict is not None)
