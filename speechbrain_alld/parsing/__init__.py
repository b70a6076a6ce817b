"""Read the MOS, the dimensions and the A/B verdict back out of a generated evaluation text.

Every parser returns ``None`` (or, for :func:`parse_dimensions`, leaves the key out) when the text
does not state the value, instead of guessing: the callers count such texts as unparsed
(ALLD-SPEC §6), never drop them silently.

- :func:`parse_mos`: the number stated as the overall MOS ("MOS of 3.4", "MOS score is about 3",
  "overall quality 2.5/5", "the mean opinion score I would assign is 3.2", "MOS: 3,4",
  "rated 3.5 out of 5 overall", "a score of 3.2 out of 5"). The last statement wins (the text
  ends with it); a number outside 1..5, a range ("MOS between 3 and 4") or a score on another
  scale ("7/10") is not a MOS.
- :func:`parse_dimensions`: noisiness (``noi``), coloration (``col``), discontinuity (``dis``) and
  loudness (``loud``), from a stated number ("noisiness: 3.2/5") or, failing that, from level
  words ("very noisy", "free of background noise", "slightly low level"). Level words map to the
  ACR category value they name (:data:`LEVEL_VALUES`: 1 bad .. 5 excellent).
- :func:`parse_verdict`: "A", "B" or "tie" ("I prefer Speech A", "the second one is better",
  "B is not better than A", "A is worse than B", "they are equally good"), including the released
  LLaMA-3.1-70B comparisons' phrasings ("I think SpeechB has higher synthesis quality than
  SpeechA", "I would select SpeechA as the better synthesized speech", "[SpeechB]", "I would
  select neither"). A comparison of one dimension ("SpeechA has better continuity") is not a
  verdict.
- :func:`parse_evaluation`: all of the above for one text, with a ``parsed`` flag per task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from speechbrain_alld.parsing.levels import (
    LEVEL_VALUES,
    parse_dimension_levels,
    parse_dimensions,
)
from speechbrain_alld.parsing.mos import parse_dimension_numbers, parse_mos
from speechbrain_alld.parsing.verdict import parse_verdict

__all__ = ["LEVEL_VALUES", "ParsedEvaluation", "parse_dimension_levels", "parse_dimension_numbers",
           "parse_dimensions", "parse_evaluation", "parse_mos", "parse_verdict"]

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
