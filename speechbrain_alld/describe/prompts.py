"""Expert prompts (x_t) and audio-LLM instructions (ALLD-SPEC §4), in this project's own words.

* :func:`build_mos_prompt`: explains the five factors and their 1..5 anchors, gives one clip's
  rating tuple and asks for a short evaluation of noi/col/dis/loud, their influence on the overall
  quality, ending with the MOS.
* :func:`build_ab_prompt`: both tuples; pick the clip with the higher MOS, compare on 1..3
  dimensions with a clear gap, state the preference with reasons.
* :func:`build_verdict_prompt`: asks only "A" or "B" for a comparison text.

Ratings are shown with one decimal; a dimension missing from a clip is left out, never invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from speechbrain_alld.ratings import DIMENSION_NAMES, DIMENSIONS, RatingRecord

AUDIO_PLACEHOLDER = "<audio>"

#: Instructions the audio LLM sees (x_a) with audio placeholders, one per task.
DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "mos": f"Describe and evaluate the quality of the speech {AUDIO_PLACEHOLDER}",
    "ab": f"A/B test: which speech has the better quality, {AUDIO_PLACEHOLDER} (Speech A) or "
          f"{AUDIO_PLACEHOLDER} (Speech B)? Compare them and explain your preference.",
}

FACTOR_EXPLANATION = """\
Speech quality is rated on five factors, each from 1 to 5 (higher is better):
- MOS (mean opinion score), the overall quality: 1 bad, 2 poor, 3 fair, 4 good, 5 excellent.
- Noisiness: background noise or other non-speech interference; 1 very noisy, 5 completely clean.
- Coloration: unnatural timbre caused by distortion or filtering; 1 severely distorted, \
5 no distortion.
- Discontinuity: breaks, dropouts or stutter in the signal; 1 severely discontinuous, \
5 fully continuous.
- Loudness: the perceived level of the speech; 1 extremely quiet, 5 perfectly loud."""

DEFAULT_SYSTEM_PROMPT = (
    "You are an expert in speech quality assessment who writes short, precise evaluations."
)


@dataclass(frozen=True)
class PromptExample:
    """An in-context example: the rating tuple(s) and the expert text for them.

    Arguments
    ---------
    ratings : tuple[RatingRecord, ...]
        One record (MOS task) or two (A/B task: Speech A, Speech B).
    text : str
        The expert text written for them.

    Example
    -------
    >>> ex = PromptExample((RatingRecord(mos=4.0),), "Clean speech. MOS: 4.0")
    >>> build_mos_prompt(RatingRecord(mos=3.0), [ex]).splitlines()[7:9]
    ['Example 1. Ratings: MOS 4.0.', 'Evaluation: Clean speech. MOS: 4.0']
    """

    ratings: tuple[RatingRecord, ...]
    text: str


def format_ratings(rating: RatingRecord) -> str:
    """The rating tuple as text, with one decimal; dimensions not rated are left out.

    Arguments
    ---------
    rating : RatingRecord
        The ratings of one clip.

    Returns
    -------
    str
        ``"MOS 3.2, noisiness 2.5, coloration 4.0, ..."``.

    Example
    -------
    >>> format_ratings(RatingRecord(mos=3.26, noi=2.04, loud=3.349))
    'MOS 3.3, noisiness 2.0, loudness 3.3'
    """
    parts = [f"MOS {rating.mos:.1f}"]
    parts += [f"{DIMENSION_NAMES[d]} {v:.1f}" for d, v in rating.dimensions().items()]
    return ", ".join(parts)


def _dimension_list(ratings: Sequence[RatingRecord]) -> list[str]:
    present = [d for d in DIMENSIONS if any(getattr(r, d) is not None for r in ratings)]
    return [DIMENSION_NAMES[d] for d in present]


def build_mos_prompt(
    rating: RatingRecord, examples: Sequence[PromptExample] = ()
) -> str:
    """The expert prompt asking for a description of one clip, ending with its MOS.

    Arguments
    ---------
    rating : RatingRecord
        The clip's ratings; only the dimensions it has are shown and asked about.
    examples : Sequence[PromptExample]
        In-context examples (one record each), shown before the clip.

    Returns
    -------
    str
        :data:`FACTOR_EXPLANATION`, the examples, the clip's ratings and the request.

    Example
    -------
    >>> prompt = build_mos_prompt(RatingRecord(mos=3.26, noi=2.04, loud=3.349))
    >>> prompt.startswith(FACTOR_EXPLANATION)
    True
    >>> prompt.splitlines()[-2]
    'Ratings of the speech clip: MOS 3.3, noisiness 2.0, loudness 3.3.'
    >>> "Describe its noisiness and loudness," in prompt, "(for example 'MOS: 3.3')" in prompt
    (True, True)
    """
    dims = _dimension_list([rating])
    lines = [FACTOR_EXPLANATION, ""]
    for k, ex in enumerate(examples, start=1):
        lines += [f"Example {k}. Ratings: {format_ratings(ex.ratings[0])}.", f"Evaluation: "
                  f"{ex.text}", ""]
    lines.append(f"Ratings of the speech clip: {format_ratings(rating)}.")
    if dims:
        what = ", ".join(dims[:-1]) + (" and " if len(dims) > 1 else "") + dims[-1]
        lines.append(
            f"Write a short evaluation of this clip as if you had listened to it. Describe its "
            f"{what}, analyse how they influence the overall quality, and end with the overall "
            f"MOS, stated with one decimal (for example 'MOS: {rating.mos:.1f}')."
        )
    else:
        lines.append(
            "Write a short evaluation of this clip as if you had listened to it. Describe its "
            "overall quality and end with the overall MOS, stated with one decimal (for example "
            f"'MOS: {rating.mos:.1f}')."
        )
    return "\n".join(lines)


def build_ab_prompt(
    rating_a: RatingRecord,
    rating_b: RatingRecord,
    examples: Sequence[PromptExample] = (),
    min_gap: float = 0.5,
) -> str:
    """The expert prompt asking for an A/B comparison that prefers the clip with higher MOS.

    Arguments
    ---------
    rating_a : RatingRecord
        The ratings of Speech A.
    rating_b : RatingRecord
        The ratings of Speech B.
    examples : Sequence[PromptExample]
        In-context examples (two records each), shown before the pair.
    min_gap : float
        The dimension gap the prompt calls a clear difference.

    Returns
    -------
    str
        :data:`FACTOR_EXPLANATION`, the examples, both clips' ratings and the request.

    Example
    -------
    >>> prompt = build_ab_prompt(RatingRecord(mos=4.1, noi=4.5), RatingRecord(mos=2.2, noi=1.5))
    >>> prompt.splitlines()[-3:-1]
    ['Speech A ratings: MOS 4.1, noisiness 4.5.', 'Speech B ratings: MOS 2.2, noisiness 1.5.']
    >>> "(a gap of about 0.5 or more)" in prompt
    True
    """
    lines = [FACTOR_EXPLANATION, ""]
    for k, ex in enumerate(examples, start=1):
        lines += [
            f"Example {k}. Speech A: {format_ratings(ex.ratings[0])}. Speech B: "
            f"{format_ratings(ex.ratings[1])}.",
            f"Comparison: {ex.text}",
            "",
        ]
    lines += [
        f"Speech A ratings: {format_ratings(rating_a)}.",
        f"Speech B ratings: {format_ratings(rating_b)}.",
        "Compare the two clips as if you had listened to both. Pick the clip with the higher "
        f"MOS. Compare them on one to three of the factors where they clearly differ (a gap of "
        f"about {min_gap:.1f} or more), explain how these differences shape the overall "
        "quality, and finish by stating which speech you prefer (Speech A or Speech B) and why.",
    ]
    return "\n".join(lines)


def build_verdict_prompt(comparison: str) -> str:
    """Ask for the verdict of a comparison text, answered only with ``A`` or ``B``.

    Arguments
    ---------
    comparison : str
        A comparison of Speech A and Speech B.

    Returns
    -------
    str
        The prompt, quoting ``comparison`` on its own line(s).

    Example
    -------
    >>> print(build_verdict_prompt("Speech A is cleaner."))
    Here is a comparison of two speech clips, Speech A and Speech B:
    Speech A is cleaner.
    Which speech does the comparison prefer? Answer with a single letter, A or B.
    """
    return (
        "Here is a comparison of two speech clips, Speech A and Speech B:\n"
        f"{comparison}\n"
        "Which speech does the comparison prefer? Answer with a single letter, A or B."
    )


def build_prompt(task: str, ratings: Sequence[RatingRecord],
                 examples: Sequence[PromptExample] = (), min_gap: float = 0.5) -> str:
    """The expert prompt for ``task``: :func:`build_mos_prompt` or :func:`build_ab_prompt`.

    Arguments
    ---------
    task : str
        ``"mos"`` (one record) or ``"ab"`` (two records: Speech A, Speech B).
    ratings : Sequence[RatingRecord]
        The clip's or the pair's ratings.
    examples : Sequence[PromptExample]
        In-context examples for the task.
    min_gap : float
        The A/B prompt's clear-difference gap.

    Returns
    -------
    str
        The prompt.

    Example
    -------
    >>> a, b = RatingRecord(mos=4.1), RatingRecord(mos=2.2)
    >>> build_prompt("ab", [a, b]) == build_ab_prompt(a, b)
    True
    >>> build_prompt("mos", [a, b])
    Traceback (most recent call last):
    ...
    ValueError: the MOS prompt takes 1 rating record, got 2
    """
    if task == "mos":
        if len(ratings) != 1:
            raise ValueError(f"the MOS prompt takes 1 rating record, got {len(ratings)}")
        return build_mos_prompt(ratings[0], examples)
    if task == "ab":
        if len(ratings) != 2:
            raise ValueError(f"the A/B prompt takes 2 rating records, got {len(ratings)}")
        return build_ab_prompt(ratings[0], ratings[1], examples, min_gap)
    raise ValueError(f"unknown task {task!r} (expected 'mos' or 'ab')")
