"""The A/B verdict a comparison text states (see :mod:`speechbrain_alld.parsing`)."""

from __future__ import annotations

import re

# --- A/B verdict -------------------------------------------------------------------------------

_NOUN = r"(?:speech|sample|clip|audio|recording|utterance|option|version|file)"
# A side: "Speech A", "SpeechB", "sample B", "A", "the first (one)", "the latter", "Audio 1",
# "speech2". A digit is a side only right after a noun ("clip 1", never a bare "1"), and never
# the start of a longer number ("speech 1.5"); checked in code through the "noun" group.
_SIDE_BODY = (r"((?-i:[AB])|first|second|former|latter|[12](?![.,]?\d))\b"
              r"(?:\s+(?:one|" + _NOUN + r"))?")
_SIDE = r"(?:\b(?P<noun>" + _NOUN + r")\s*|\b)" + _SIDE_BODY.replace("(", "(?P<side>", 1)
# The same for the other clip of a comparison ("... than Speech B"): groups onoun, obj.
_OBJECT = (r"(?:\b(?P<onoun>" + _NOUN + r")\s*|\b)"
           + _SIDE_BODY.replace("(", "(?P<obj>", 1))
# The overall quality, as opposed to one dimension: "synthesis quality", "overall synthetic
# quality (mos)", "MOS score", "mean opinion score".
_QUALITY = (r"(?:(?:overall|general|perceived|perceptual|synthe(?:sis|tic|si[sz]ed)|speech|"
            r"audio|sound|listening)\s+)*(?:quality|mos|mean\s+opinion\s+score)"
            r"(?:\s+(?:score|rating))?\b")
# Dimension words: "better continuity", "better in terms of noise" compare one dimension only,
# which is no verdict (as "less background noise" is none).
_DIM = (r"(?:continuity|discontinuity|loudness|volume|level|noise|noisiness|background|"
        r"clarity|cleanliness|distortion|colou?ration|timbre|intelligibility|naturalness|"
        r"pronunciation|prosody|articulation)\b")
_DIM_AFTER = (r"\s+(?:overall\s+)?" + _DIM + r"|\s+(?:in\s+terms\s+of|in|on|regarding|when\s+it"
              r"\s+comes\s+to|with\s+respect\s+to)\s+(?:its\s+|their\s+|the\s+)?" + _DIM)
_NOT_DIM = r"(?!" + _DIM_AFTER + r")"
_BETTER = (r"(?:(?:better|superior|preferred|preferable|cleaner|clearer|the\s+better\s+(?:one|"
           r"choice|option))" + _NOT_DIM + r"|(?:the\s+)?winner|(?:higher|greater)[- ]"
           + _QUALITY + r")")
# The overall comparatives "it" may take ("makes it the better one"; not "it is cleaner").
_BETTER_OVERALL = (r"(?:(?:better|superior|preferable|preferred)" + _NOT_DIM
                   + r"|(?:the\s+)?winner|(?:higher|greater)[- ]" + _QUALITY + r")")
_WORSE = (r"(?:(?:worse|inferior|poorer|less\s+preferable|noisier|the\s+worse\s+(?:one|choice|"
          r"option))" + _NOT_DIM + r"|the\s+loser|lower[- ]" + _QUALITY + r")")
_DEGREE = (r"(?:clearly\s+|slightly\s+|much\s+|noticeably\s+|overall\s+|the\s+|a\s+bit\s+|far\s+|"
           r"significantly\s+|somewhat\s+|definitely\s+|marginally\s+|a\s+little\s+|even\s+|"
           r"a\s+|of\s+|clear\s+|also\s+|still\s+|considerably\s+|substantially\s+|"
           r"notably\s+|way\s+|generally\s+)*")
# A verb linking a side to a comparative; "(?P<neg>...)" holds a negation ("is not", "doesn't
# have", "is no").
_VERB = (r"\s+(?:(?P<negverb>(?:is|was|does|did)(?:\s+not|n't)(?:\s+(?:have|sound|seem|appear|"
         r"look|offer|provide|show|get))?)|is|sounds|has|was|offers|provides|seems|appears|looks|"
         r"remains|shows|achieves|delivers|gets|had|having)\s+(?P<neg>(?:not|no)\s+)?")
_OUTPERFORM = r"(?:outperform|beat|surpass|outshine|outclass|outdo)(?:s|es|ed)?\b"
# (pattern, kind): kind "pick" names the preferred side (ignored after "would not", "never");
# "better" names it too, unless negated ("B is not better": A); "outperform" is "better" unless
# a dimension follows ("B outperforms A in loudness"); "worse" names the other side (ignored
# when negated: "not worse" is no preference); "lose" names the other side; "pronoun" is "it"
# ("makes it the better one"), resolved by the code.
_VERDICT_PATTERNS = [
    # "I prefer Speech A", "prefer B", "preference: A", "winner: B", "I'd go with B",
    # "I would select SpeechB as the better synthesized speech"
    (re.compile(r"\b(?:prefer(?:s|red)?|preference(?:\s+is|\s+goes\s+to|\s*:)?|winner\s*(?:is|:)"
                r"|choose|choice\s*(?:is|:)|pick|go(?:ing)?\s+(?:with|for)|opt\s+for|"
                r"vote\s+for|recommend|favou?r|side\s+with|select|lean(?:s|ing)?\s+towards?)"
                r"\s*(?:for\s+|to\s+)?(?:the\s+)?" + _SIDE, re.IGNORECASE), "pick"),
    # "Speech A is better", "A sounds better", "B has the higher quality", "B is not better",
    # "SpeechB has higher synthesis quality than SpeechA", "Audio 1 is of higher quality"
    (re.compile(r"(?:the\s+)?" + _SIDE + _VERB + _DEGREE + _BETTER, re.IGNORECASE), "better"),
    # "Speech A wins", "B is the clear winner", "[SpeechB]" (the authors' summary format)
    (re.compile(r"(?:the\s+)?" + _SIDE + r"\s+(?:wins|is\s+the\s+(?:clear\s+|overall\s+)?winner"
                r"|comes\s+out\s+on\s+top|takes\s+it)\b", re.IGNORECASE), "pick"),
    (re.compile(r"\[\s*" + _SIDE + r"\s*\]", re.IGNORECASE), "pick"),
    # "A is worse than B", "B is worse", "SpeechA has lower synthesis quality than SpeechB"
    (re.compile(r"(?:the\s+)?" + _SIDE + _VERB + _DEGREE + _WORSE, re.IGNORECASE), "worse"),
    # "Speech 2 outperforms speech 1", "B clearly beats A", "A does not outperform B"
    # (not "B outperforms A in loudness": one dimension)
    (re.compile(r"(?:the\s+)?" + _SIDE + r"\s+(?:(?P<neg>does\s+not|doesn't|did\s+not|didn't|"
                r"cannot|can't|fails\s+to)\s+)?" + _DEGREE + _OUTPERFORM
                + r"(?:\s+(?:the\s+)?" + _OBJECT + r")?", re.IGNORECASE), "outperform"),
    # "A is not as good as B", "SpeechA isn't quite as good as SpeechB", "A is almost as good"
    (re.compile(r"(?:the\s+)?" + _SIDE + r"\s+(?:is|was|sounds|seems|appears|looks)(?:(?:\s+not|"
                r"n't)\s+(?:quite\s+|nearly\s+)?|\s+(?:almost|nearly)\s+)as\s+(?:good|high[- ]"
                r"quality)\s+as\b", re.IGNORECASE), "lose"),
    # "SpeechA's overall synthetic quality (mos) is much higher than SpeechB's"
    (re.compile(r"(?:the\s+)?" + _SIDE + r"['’]s\s+" + _QUALITY + r"(?:\s*\([^)]*\))?\s+(?:is|was)"
                r"\s+(?P<neg>not\s+)?" + _DEGREE + r"(?:higher|better|greater)\b", re.IGNORECASE),
     "better"),
    (re.compile(r"(?:the\s+)?" + _SIDE + r"['’]s\s+" + _QUALITY + r"(?:\s*\([^)]*\))?\s+(?:is|was)"
                r"\s+(?P<neg>not\s+)?" + _DEGREE + r"(?:lower|worse|poorer)\b", re.IGNORECASE),
     "worse"),
    # "its advantages make it the better synthesized speech", "so it is the winner",
    # "makes it a better choice than SpeechB"
    (re.compile(r"\b(?:(?:makes?|making|made|renders?|rendering)\s+it|it\s+(?:is|was|remains)|"
                r"it['’]s)\s+(?P<neg>not\s+)?" + _DEGREE + _BETTER_OVERALL
                + r"(?:[^.!?;]*?\s(?:than|over|to)\s+(?:the\s+)?" + _OBJECT + r")?", re.IGNORECASE),
     "pronoun"),
]
_ORDINAL = {"first": "A", "second": "B", "former": "A", "latter": "B", "1": "A", "2": "B"}
_PICK_NEGATED = re.compile(r"(?:\bnot|n't|\bnever)\s+(?:\w+\s+)?$", re.IGNORECASE)
# "I don't think B is better": the comparison after it is negated.
_CLAIM_NEGATED = re.compile(r"(?:\bnot|n't|\bnever)\s+(?:think|believe|feel|say|agree|find)\s+"
                            r"(?:that\s+)?$", re.IGNORECASE)
_DIM_FOLLOWS = re.compile(_DIM_AFTER, re.IGNORECASE)
# Where a sentence starts (for "it": the clips the sentence names before it).
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
_NAMED_SIDE = re.compile(r"\b" + _NOUN + r"\s*((?-i:[AB])|[12](?![.,]?\d))\b", re.IGNORECASE)
_TIE = re.compile(r"\b(?:tie|equally\s+(?:good|bad|clean|matched|preferable)|equal\s+quality|"
                  r"no\s+(?:clear\s+)?preference|neither\s+(?:one\s+|clip\s+|sample\s+)?is\s+"
                  r"(?:better|preferred|preferable)|about\s+the\s+same|(?:prefer(?:s|red)?|"
                  r"select|choose|pick)\s+neither|(?:the\s+)?same\s+quality|indistinguishable|"
                  r"on\s+par|just\s+as\s+good\s+as|a\s+draw|no\s+(?:clear\s+)?winner|"
                  r"(?:both|they)\s+(?:are|sound)\s+(?:equally|equivalent|comparable))\b",
                  re.IGNORECASE)


def _other(side: str) -> str:
    return "B" if side == "A" else "A"


def _side(raw: str) -> str:
    return _ORDINAL.get(raw.lower(), raw.upper())


def _pronoun_side(text: str, start: int) -> str | None:
    """The clip "it" stands for at ``start``: the only clip ("Speech B", "clip 2") its sentence
    names before it, or ``None``."""
    begin = max([m.end() for m in _SENTENCE_END.finditer(text, 0, start)], default=0)
    named = {_side(m.group(1)) for m in _NAMED_SIDE.finditer(text, begin, start)}
    return named.pop() if len(named) == 1 else None


def parse_verdict(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` as stated in a comparison text; ``None`` if not stated.

    The last explicit statement wins. Sides are "A"/"B" (upper case only, so the article "a" is
    never read as a side: "Speech A", "SpeechB", "sample B"), "clip 1"/"Audio 2" (a digit only
    after a noun), "the first/second (one)" and "the former/latter". "B is not better", "B is
    worse" and "B is not as good as A" count as verdicts for A; "I'd go with B", "I would select
    SpeechB as the better synthesized speech", "SpeechB has higher synthesis quality than
    SpeechA", "Speech B outperforms Speech A", "Speech B wins" and "[SpeechB]" for B; "prefer
    (or select) neither", "they are equally good" are a tie. "It" counts when "makes it the better
    one" compares it ("... than Speech B") or its sentence names one clip only. A comparison of
    one dimension ("SpeechB has better continuity") and a text that names both clips without a
    preference ("Speech A vs Speech B") give no verdict.

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
    >>> parse_verdict("I think SpeechB has higher synthesis quality than SpeechA.")
    'B'
    >>> parse_verdict("SpeechA has lower synthesis quality than SpeechB.")
    'B'
    >>> parse_verdict("Speech B is not better than Speech A.")
    'A'
    >>> parse_verdict("At first B seemed better, but I prefer the first one.")
    'A'
    >>> parse_verdict("SpeechA is louder. I would select SpeechB as the better synthesized speech.")
    'B'
    >>> parse_verdict("They are equally good.")
    'tie'
    >>> parse_verdict("Speech A vs Speech B.") is None
    True
    >>> parse_verdict("SpeechB has better continuity than SpeechA.") is None
    True
    """
    found: list[tuple[int, str]] = []
    for pattern, kind in _VERDICT_PATTERNS:
        for match in pattern.finditer(text):
            groups = match.groupdict()
            raw = groups.get("side")
            if raw is not None and raw.isdigit() and not groups.get("noun"):
                continue  # a bare "1" is a number, not a clip
            negated = bool(groups.get("neg") or groups.get("negverb"))
            if _CLAIM_NEGATED.search(text[max(0, match.start() - 30):match.start()]):
                negated = not negated  # "I don't think B is better"
            if kind == "outperform":
                if _DIM_FOLLOWS.match(text, match.end()):
                    continue  # "B outperforms A in loudness": one dimension
                kind = "better"
            if kind == "pick":
                if _PICK_NEGATED.search(text[max(0, match.start() - 20):match.start()]):
                    continue  # "I would not choose A": no positive statement
                side = _side(raw)
            elif kind == "better":
                side = _other(_side(raw)) if negated else _side(raw)
            elif kind == "worse":
                if negated:
                    continue
                side = _other(_side(raw))
            elif kind == "lose":
                side = _other(_side(raw))
            else:  # pronoun: "makes it the better one (than B)"
                if negated:
                    continue
                obj = groups.get("obj")
                if obj is not None and not (obj.isdigit() and not groups.get("onoun")):
                    side = _other(_side(obj))
                else:
                    resolved = _pronoun_side(text, match.start())
                    if resolved is None:
                        continue  # "it" could be either clip: no guess
                    side = resolved
            found.append((match.start(), side))
    for match in _TIE.finditer(text):
        found.append((match.start(), "tie"))
    if not found:
        return None
    return max(found)[1]
