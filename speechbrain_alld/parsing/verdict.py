"""The A/B verdict a comparison text states (see :mod:`speechbrain_alld.parsing`)."""

from __future__ import annotations

import re

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
