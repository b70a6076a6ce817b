"""Parsers: MOS, dimensions and A/B verdict from generated texts; "not found" is never a guess."""

from __future__ import annotations

import random

import pytest

from speechbrain_alld.describe.experts import PAPER_VARIANTS, GenerationRequest
from speechbrain_alld.describe.template_expert import TemplateExpert, level_band
from speechbrain_alld.parsing import (
    LEVEL_VALUES,
    ParsedEvaluation,
    parse_dimension_levels,
    parse_dimensions,
    parse_evaluation,
    parse_mos,
    parse_verdict,
)
from speechbrain_alld.ratings import DIMENSIONS, RatingRecord

# --- MOS ---------------------------------------------------------------------------------------

MOS_POSITIVE = [
    ("MOS: 3.4", 3.4),
    ("The MOS of this clip is 3.4.", 3.4),
    ("I would give it a MOS of 3.4.", 3.4),
    ("The MOS score is about 3.", 3.0),
    ("Overall quality 2.5/5.", 2.5),
    ("The overall quality is fair, giving an overall MOS of 3.2.", 3.2),
    ("The mean opinion score I would assign is 3.2.", 3.2),
    ("Taking all of this into account, so the MOS comes out at 3.2.", 3.2),
    ("MOS=4", 4.0),
    ("MOS: 3,4", 3.4),
    ("I have rated 3.5 out of 5 overall.", 3.5),
    ("MOS 2.5/5", 2.5),
    ("I would estimate a MOS around 4.", 4.0),
    ("Overall MOS: 4.7.", 4.7),
    ("Overall quality: fair, MOS 3.2.", 3.2),
    ("Overall, the mean opinion score is 1.0.", 1.0),
    ("Predicted MOS (1-5 scale): 2.8", 2.8),
    ("On a 1-5 scale, the MOS is 3.9.", 3.9),
    ("mean opinion score (MOS) is 2.5", 2.5),
    ("MOS ≈ 3.6", 3.6),
    ("Overall rating: 4.2 out of 5.", 4.2),
    ("Overall: 3.5/5", 3.5),
    ("MOS: 5", 5.0),
    ("The noise is strong (noisiness 1.8). MOS: 2.1", 2.1),
    # the last statement wins
    ("An initial MOS of 2.0 seemed right, but on reflection the MOS is 3.0.", 3.0),
    ("MOS: 2.5. ... Final answer: MOS 3.1", 3.1),
]

MOS_NEGATIVE = [
    "MOS: 7",
    "The MOS of 0.5 is impossible.",
    "The clip has a decent MOS.",
    "The MOS is hard to judge here.",
    "Noisiness 3.2, coloration 4.1.",
    "The noisiness is 3.2 and the loudness is rated 4.0.",
    "The clip lasts 3 seconds.",
    "Overall, 8/10.",
    "MOS: 3-4",
    "The MOS is between 3 and 4.",
    "Overall, it is a good recording.",
    "",
    # the last statement is not a valid MOS: not found, even though an earlier one was
    "MOS: 3.2 ... corrected MOS: 9",
]


@pytest.mark.parametrize("text,expected", MOS_POSITIVE)
def test_parse_mos_positive(text: str, expected: float) -> None:
    assert parse_mos(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", MOS_NEGATIVE)
def test_parse_mos_not_found(text: str) -> None:
    assert parse_mos(text) is None


@pytest.mark.parametrize("text", [
    "MOS noisiness 3.2",
    "The MOS breakdown: noisiness 3.2, coloration 4.1, discontinuity 2.0, loudness 3.5.",
    "MOS-wise, the noisiness of 2.0 and the loudness of 3.0 matter most.",
    "The overall impression: noise level 2.3.",
    "Overall, the loudness is rated 3.5.",
])
def test_parse_mos_never_reads_a_dimension(text: str) -> None:
    assert parse_mos(text) is None


def test_parse_mos_never_returns_a_dimension_number() -> None:
    rng = random.Random(3)
    expert = TemplateExpert(include_numbers=True)
    for i in range(300):
        record = RatingRecord(mos=rng.uniform(1, 5),
                              **{d: rng.uniform(1, 5) for d in DIMENSIONS})
        text = expert.generate_one(GenerationRequest(f"x{i}", "mos", "p", (record,),
                                                     rng.choice(PAPER_VARIANTS), i))
        # Keep the dimension statements, drop the final MOS sentence: no MOS left to read.
        body = text[: text.rfind(". ") + 1] if ". " in text else text
        if "MOS" not in body and "opinion" not in body:
            assert parse_mos(body) is None, body
        assert parse_mos(text) == pytest.approx(round(record.mos, 1))


# --- dimensions --------------------------------------------------------------------------------

DIM_NUMBERS = [
    ("noisiness 3.2", {"noi": 3.2}),
    ("noisiness: 3.2/5", {"noi": 3.2}),
    ("The coloration (4.1/5) is fine.", {"col": 4.1}),
    ("a discontinuity of 2.0", {"dis": 2.0}),
    ("The loudness is rated 3.5.", {"loud": 3.5}),
    ("noisiness score 1.9, coloration: 2.2, discontinuity 4.4/5, loudness 5.0",
     {"noi": 1.9, "col": 2.2, "dis": 4.4, "loud": 5.0}),
    ("Very noisy (noisiness 2.8).", {"noi": 2.8}),  # a stated number wins over the words
    ("noisiness 7.5", {}),  # outside 1..5: not found
    ("noisiness 3.2 vs 2.1", {}),  # a comparison of two clips, not this clip's value
]


@pytest.mark.parametrize("text,expected", DIM_NUMBERS)
def test_parse_dimensions_numbers(text: str, expected: dict[str, float]) -> None:
    assert parse_dimensions(text) == pytest.approx(expected)


DIM_LEVELS = [
    # noisiness
    ("The recording is very noisy.", "noi", 1),
    ("The speech is heavily masked by noise.", "noi", 1),
    ("The background is noisy.", "noi", 2),
    ("There is noticeable background noise.", "noi", 3),
    ("It has only faint background hiss.", "noi", 4),
    ("The clip is clean.", "noi", 5),
    ("There is no background noise.", "noi", 5),
    ("The clip is free of background noise.", "noi", 5),
    ("The recording isn't noisy at all.", "noi", 5),
    ("The recording is not very noisy.", "noi", 4),
    ("The background is not clean.", "noi", 2),
    # coloration
    ("The voice is severely distorted.", "col", 1),
    ("The timbre sounds unnatural.", "col", 2),
    ("There is some coloration.", "col", 3),
    ("The voice sounds mostly natural.", "col", 4),
    ("It sounds natural.", "col", 5),
    ("There is no audible distortion.", "col", 5),
    ("The voice doesn't sound natural.", "col", 2),
    ("The speech is not distorted.", "col", 5),
    # discontinuity
    ("The speech is extremely choppy.", "dis", 1),
    ("There are frequent dropouts.", "dis", 2),
    ("There are occasional breaks.", "dis", 3),
    ("Dropouts are rare.", "dis", 4),
    ("The speech is continuous, with no dropouts.", "dis", 5),
    ("There are no breaks or interruptions.", "dis", 5),
    # loudness
    ("The clip is very quiet.", "loud", 1),
    ("The clip is too quiet.", "loud", 2),
    ("The clip is somewhat quiet.", "loud", 3),
    ("The clip is loud enough.", "loud", 4),
    ("The level is ideal.", "loud", 5),
    ("The speech is loud and clear.", "loud", 4),
    ("The clip is not too quiet.", "loud", 4),
    ("The volume is not loud enough.", "loud", 2),
]


@pytest.mark.parametrize("text,dim,level", DIM_LEVELS)
def test_parse_dimensions_level_words(text: str, dim: str, level: int) -> None:
    parsed = parse_dimensions(text)
    assert set(parsed) == {dim}, parsed
    assert parsed[dim] == LEVEL_VALUES[level]
    assert parse_dimension_levels(text) == {dim: level}


@pytest.mark.parametrize("text", [
    "",
    "The speech quality is fair.",
    "The background noise is the main factor holding the overall quality back.",
    "The low level and the distortion weigh most heavily on the overall impression.",
    "By contrast, the timbre is not a concern.",
    "MOS: 3.4",
])
def test_parse_dimensions_nothing_stated(text: str) -> None:
    assert parse_dimensions(text) == {}


def _template_mos_texts(include_numbers: bool, n: int = 500,
                        seed: int = 0) -> list[tuple[RatingRecord, str]]:
    rng = random.Random(seed)
    expert = TemplateExpert(include_numbers=include_numbers)
    out = []
    for i in range(n):
        record = RatingRecord(mos=rng.uniform(1, 5), **{d: rng.uniform(1, 5) for d in DIMENSIONS})
        request = GenerationRequest(f"clip{i}", "mos", "prompt", (record,),
                                    rng.choice(PAPER_VARIANTS), i)
        out.append((record, expert.generate_one(request)))
    return out


def test_template_level_words_recover_the_band() -> None:
    """Level words alone (no numbers) give back the template's band for >= 95% of texts."""
    pairs = _template_mos_texts(include_numbers=False)
    hits = {d: 0 for d in DIMENSIONS}
    for record, text in pairs:
        parsed = parse_dimensions(text)
        for d in DIMENSIONS:
            if d in parsed and level_band(parsed[d]) == level_band(getattr(record, d)):
                hits[d] += 1
    rates = {d: hits[d] / len(pairs) for d in DIMENSIONS}
    print("level-band recovery per dimension:", rates)
    assert sum(hits.values()) / (len(pairs) * len(DIMENSIONS)) >= 0.95
    assert min(rates.values()) >= 0.9


def test_template_numbers_recovered_exactly() -> None:
    pairs = _template_mos_texts(include_numbers=True, seed=1)
    with_numbers = 0
    for record, text in pairs:
        parsed = parse_dimensions(text)
        if "(" not in text:  # this text states no numbers; level words only
            continue
        with_numbers += 1
        for d in DIMENSIONS:
            assert parsed[d] == pytest.approx(round(getattr(record, d), 1)), text
    assert with_numbers > 100


def test_template_partial_records_mention_only_rated_dimensions() -> None:
    rng = random.Random(5)
    expert = TemplateExpert(include_numbers=False)
    for i in range(200):
        dims = {d: rng.uniform(1, 5) for d in DIMENSIONS if rng.random() < 0.5}
        record = RatingRecord(mos=rng.uniform(1, 5), **dims)
        text = expert.generate_one(GenerationRequest(f"p{i}", "mos", "p", (record,),
                                                     rng.choice(PAPER_VARIANTS), i))
        assert set(parse_dimensions(text)) <= set(dims), text


# --- verdict -----------------------------------------------------------------------------------

VERDICTS = [
    ("I prefer Speech A.", "A"),
    ("I prefer SpeechB.", "B"),
    ("Speech A is better.", "A"),
    ("Sample B sounds clearly better than sample A.", "B"),
    ("The first one is better.", "A"),
    ("The second one is better.", "B"),
    ("The second sample is preferable.", "B"),
    ("I'd go with B.", "B"),
    ("I would go with Speech A.", "A"),
    ("Speech A wins.", "A"),
    ("B is preferable.", "B"),
    ("My preference goes to recording B.", "B"),
    ("So the winner is clip A.", "A"),
    ("I prefer neither.", "tie"),
    ("They are equally good.", "tie"),
    ("It is a tie.", "tie"),
    ("Neither is better overall, so I call it a tie.", "tie"),
    ("Speech B is not better than A.", "A"),
    ("A is worse than B.", "B"),
    ("B is worse.", "A"),
    ("Speech A has less noise, but overall Speech B is better.", "B"),
    ("I prefer the latter.", "B"),
    ("Clip B is the better one overall.", "B"),
    ("Between the two, I lean towards B.", "B"),
    ("I think speech A is slightly better.", "A"),
]


@pytest.mark.parametrize("text,expected", VERDICTS)
def test_parse_verdict(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text", [
    "",
    "Speech A vs Speech B.",
    "Comparing Speech A and Speech B: both have some noise.",
    "I prefer a cleaner recording in general.",  # the article "a" is not a side
    "This is a better way to listen.",
    "I would not choose A.",
    "A is not worse than B.",
    "Speech A has noticeably less background noise than speech B.",
])
def test_parse_verdict_not_found(text: str) -> None:
    assert parse_verdict(text) is None


# --- everything --------------------------------------------------------------------------------


def test_parse_evaluation() -> None:
    mos_text = "The clip is very noisy (noisiness 1.4). It is somewhat quiet. MOS: 2.1"
    result = parse_evaluation(mos_text, "mos")
    assert result == ParsedEvaluation(mos=2.1, dimensions={"noi": 1.4, "loud": 3.0},
                                      verdict=None, parsed=True)
    assert not parse_evaluation("No idea.", "mos").parsed
    ab = parse_evaluation("Speech A is noisier. I prefer Speech B.", "ab")
    assert ab.verdict == "B" and ab.parsed and ab.mos is None
    assert not parse_evaluation("Speech A vs Speech B", "ab").parsed
    with pytest.raises(ValueError):
        parse_evaluation("MOS: 3", "xyz")
