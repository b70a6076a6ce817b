"""The overall MOS and the dimension numbers a text states (see :mod:`speechbrain_alld.parsing`)."""

from __future__ import annotations

import re

from speechbrain_alld.ratings import SCALE_MAX, SCALE_MIN

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

# Word stems of the dimensions.
_DIMENSION_STEMS = (r"nois|hiss|colou?r|distort|timbre|continu|discontinu|dropout|break|gap|"
                    r"interrupt|chopp|loud|volume|level")
# Word stems that end the search for a MOS number: another quantity is being talked about.
_MOS_BLOCKED = (
    _DIMENSION_STEMS + r"|(?:than|above|below|over|under|least|most|between|from|not|no|vs|versus"
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
    # "it scores 3.1 on the MOS scale"
    re.compile(_NUM + r"(?=\s*(?:/\s*5|out\s+of\s+5)?\s+on\s+(?:the|a)\s+(?:MOS|mean\s+opinion"
               r"\s+score)\s+scale\b)", re.IGNORECASE),
]
_CLIP = (r"(?:speech|clip|sample|recording|audio|utterance|file|one|synthesi[sz]ed\s+speech|"
         r"whole\s+thing)")
_SCORE_FILLER = (r"(?:a|an|as|at|of|with|about|around|approximately|roughly|overall|final|score|"
                 r"rating|grade|solid|mere|just)")
# Scores for the whole clip stated without "MOS" or "overall" (checked by ``_names_dimension``):
_CLIP_SCORE_PATTERNS = [
    # "I would give it a score of 3.2 out of 5", "I'd rate it 3.5/5", "give this recording a 2.9"
    re.compile(r"\b(?:rate[sd]?|rating|give[sn]?|giving|gave|assign(?:s|ed|ing)?|award(?:s|ed|ing)?"
               r"|score[sd]?|scoring)\s+(?:it|this|that|the)(?:\s+" + _CLIP + r")?"
               r"(?:[\s,:]+" + _SCORE_FILLER + r"\b)*[\s,:~≈]*" + _NUM, re.IGNORECASE),
    # "Final score: 3.2/5", "Rating: 3.7 out of 5", "My score is 3"
    re.compile(r"(?:(?:^|(?<=[.!?\n]))\s*|\b(?:final|overall|total|predicted|estimated|my|quality)"
               r"\s+)(?:score|rating|grade)\s*(?::|=|\bis\b)\s*(?:about\s+|around\s+)?" + _NUM,
               re.IGNORECASE),
    # "a score of 3.2 out of 5" (only with the "/5": on its own "a score of 3" is too vague)
    re.compile(r"\b(?:score|rating|grade)\s+(?:of\s+|about\s+|around\s+|approximately\s+|"
               r"roughly\s+)*" + _NUM + r"(?=\s*(?:/|out\s+of)\s*5(?:[.,]0+)?(?![\d]|[.,]\d))",
               re.IGNORECASE),
]
# A clause naming a dimension: its score is that dimension's, not the MOS.
_CLAUSE_START = re.compile(r"[.;,:!?\n(]")
_DIMENSION_STEM = re.compile(r"\b(?:" + _DIMENSION_STEMS + r")", re.IGNORECASE)


def _names_dimension(text: str, start: int) -> bool:
    """Whether the clause ending at ``start`` names a dimension ("noisiness gets a score of")."""
    begin = max([m.end() for m in _CLAUSE_START.finditer(text, 0, start)], default=0)
    return _DIMENSION_STEM.search(text, begin, start) is not None


def parse_mos(text: str) -> float | None:
    """The overall MOS stated in ``text`` (the last statement wins), or ``None``.

    Accepts "MOS: 3.4", "MOS of 3.4", "MOS score is about 3", "MOS=4", "MOS: 3,4" (decimal
    comma), "a MOS around 4", "overall quality 2.5/5", "the mean opinion score I would assign is
    3.2", "so the MOS comes out at 3.2", "rated 3.5 out of 5 overall", the expert corpus' "I would
    rate its overall MOS score as 3.4" and the like; and, without "MOS", a score for the whole
    clip: "I would give it a score of 3.2 out of 5", "I'd rate it 3.5/5", "Final score: 3.2/5",
    "it scores 3.1 on the MOS scale" (a bare "a score of 3" needs the "/5"). Numbers stated for a
    dimension ("noisiness 3.2", "the noisiness gets a score of 3.2/5") are never read as the MOS.
    A number outside 1..5, on another scale ("8/10") or a range ("3-4") is not a MOS: when the
    last statement is one of those, the result is ``None``.

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
    >>> parse_mos("Given these factors, I would rate its overall MOS score as 3.4.")
    3.4
    >>> parse_mos("I would give it a score of 3.2 out of 5.")
    3.2
    >>> parse_mos("The noisiness gets a score of 3.2 out of 5.") is None
    True
    """
    text = _blank_scale_mentions(text)
    best: tuple[int, float | None] | None = None
    matches = [(m, False) for p in _MOS_PATTERNS for m in p.finditer(text)]
    matches += [(m, True) for p in _CLIP_SCORE_PATTERNS for m in p.finditer(text)]
    for match, without_mos_word in matches:
        position = match.start(1)
        if without_mos_word and _names_dimension(text, position):
            continue  # "the noisiness gets a score of 3.2/5": a dimension's score
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


def parse_dimension_numbers(text: str) -> dict[str, float]:
    """Numbers stated for a dimension; the last statement per dimension wins.

    Arguments
    ---------
    text : str
        A generated evaluation.

    Returns
    -------
    dict[str, float]
        ``{dimension: number}`` for the dimensions given a number in 1..5; a comparison of two
        clips ("noisiness 3.2 vs 2.1") is not one.

    Example
    -------
    >>> parse_dimension_numbers("Noisiness 3.2/5, loudness: 4. Noisiness 2.9 after all.")
    {'noi': 2.9, 'loud': 4.0}
    >>> parse_dimension_numbers("Noisiness 3.2 vs 2.1 for the other clip.")
    {}
    """
    out: dict[str, float] = {}
    for dim, pattern in _DIM_NUMBER_PATTERNS.items():
        for match in pattern.finditer(text):
            if _COMPARISON_AFTER.match(text, match.end(1)):
                continue  # "noisiness 3.2 vs 2.1": a comparison of two clips
            value = _accept_number(text, match)
            if isinstance(value, float):
                out[dim] = value
    return out
