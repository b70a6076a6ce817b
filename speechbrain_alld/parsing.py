"""Read the MOS, the dimensions and the A/B verdict back out of a generated evaluation text.

Every parser returns ``None`` when the text does not state the value, instead of guessing: the
callers count such texts as unparsed (ALLD-SPEC §6), never drop them silently.
"""

from __future__ import annotations

import re

from speechbrain_alld.ratings import SCALE_MAX, SCALE_MIN

_NUM = r"(\d+(?:\.\d+)?)"
_HEDGE = r"(?:about|around|approximately|roughly|near|close\s+to|an?\s+estimated|estimated|" \
         r"at|of|=|:|is|was|would\s+be|will\s+be|be|score|value|rating|overall|\s)*"
_MOS_PATTERNS = [
    # "MOS: 3.4", "MOS of 3.4", "MOS score is about 3", "mean opinion score (MOS) is 2.5"
    re.compile(r"\b(?:MOS|mean\s+opinion\s+score)\b(?:\s*\(MOS\))?\s*(?:score)?" + _HEDGE
               + _NUM + r"(?:\s*(?:/|out\s+of)\s*5(?:\.0)?)?", re.IGNORECASE),
    # "overall quality 2.5/5", "overall quality score of 3.1 out of 5"
    re.compile(r"\boverall\s+(?:quality|score)\b" + _HEDGE + _NUM
               + r"(?:\s*(?:/|out\s+of)\s*5(?:\.0)?)?", re.IGNORECASE),
]


def parse_mos(text: str) -> float | None:
    """The overall MOS stated in ``text`` (the last statement wins), or ``None``.

    Accepts "MOS: 3.4", "MOS of 3.4", "MOS score is about 3", "overall quality 2.5/5" and the
    like. A number outside 1..5 is not a MOS: ``None``.
    """
    best: tuple[int, float] | None = None
    for pattern in _MOS_PATTERNS:
        for match in pattern.finditer(text):
            value = float(match.group(1))
            if best is None or match.start() > best[0]:
                best = (match.start(), value)
    if best is None:
        return None
    value = best[1]
    return value if SCALE_MIN <= value <= SCALE_MAX else None


_NOUN = r"(?:speech|sample|clip|audio|recording|utterance|option)"
_SIDE = r"(?:\b" + _NOUN + r"\s*|\b)((?-i:[AB])|first|second)\b"
_BETTER = r"(?:better|superior|preferred|preferable|higher[- ]quality|higher\s+quality|" \
          r"the\s+winner|cleaner|clearer)"
_VERDICT_PATTERNS = [
    # "I prefer Speech A", "prefer B", "preference: A", "preference goes to A", "winner: B"
    (re.compile(r"\b(?:prefer(?:s|red)?|preference(?:\s+is|\s+goes\s+to|\s*:)?|winner\s*(?:is|:)"
                r"|choose|choice\s*(?:is|:)|pick)\s*(?:for\s+|to\s+)?(?:the\s+)?" + _SIDE,
                re.IGNORECASE),
     False),
    # "Speech A is better", "A sounds better", "B has the higher quality"
    (re.compile(r"(?:the\s+)?" + _SIDE + r"(?:\s+" + _NOUN + r")?"
                r"\s+(?:is|sounds|has|was|offers|provides|seems)\s+(not\s+)?(?:clearly\s+|"
                r"slightly\s+|much\s+|noticeably\s+|overall\s+|the\s+)*" + _BETTER,
                re.IGNORECASE), True),
]
_ORDINAL = {"first": "A", "second": "B"}
_TIE = re.compile(r"\b(?:tie|equally\s+good|equal\s+quality|no\s+(?:clear\s+)?preference|"
                  r"neither\s+is\s+better|about\s+the\s+same)\b", re.IGNORECASE)


def parse_verdict(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` as stated in a comparison text; ``None`` if not stated.

    The last explicit statement wins; "B is not better" counts as a verdict for A.
    """
    found: list[tuple[int, str]] = []
    for pattern, has_negation in _VERDICT_PATTERNS:
        for match in pattern.finditer(text):
            side = _ORDINAL.get(match.group(1).lower(), match.group(1).upper())
            if has_negation and match.group(2):
                side = "B" if side == "A" else "A"
            found.append((match.start(), side))
    for match in _TIE.finditer(text):
        found.append((match.start(), "tie"))
    if not found:
        return None
    return max(found)[1]
