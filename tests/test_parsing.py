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


# MOS phrasing families of the expert corpus (LLaMA-3.1-70B texts released with the paper): the
# score comes last, after "MOS" in one of these turns. Sentences written for these tests.
MOS_EXPERT_FAMILIES = [
    # "the overall MOS score is (only / about) X"
    ("The hiss is constant and the words break up, so the overall MOS score is only 1.7.", 1.7),
    ("Although the level is a little low, the overall MOS score is about 3.3.", 3.3),
    # "with an overall MOS (score) of X"
    ("With an overall MOS score of 2.3, this clip sounds somewhat unnatural.", 2.3),
    ("I think it is a fairly natural synthetic voice with an overall MOS of 3.9.", 3.9),
    ("It is a mediocre synthesized utterance with overall MOS of 2.6.", 2.6),
    # "I would rate / give its overall MOS score as / around X"
    ("Given these points, I would rate its overall MOS score as 3.1.", 3.1),
    ("With a comfortable loudness, I would give its overall MOS score around 3.5.", 3.5),
    ("Overall, I would rate the MOS score of this recording as 4.4, a high-quality result.", 4.4),
    ("I will give its overall MOS score is about 2.7.", 2.7),
    # "Overall, its MOS score is X, indicating ..."
    ("Overall, its MOS score is 1.4, indicating a very unnatural quality.", 1.4),
    ("Overall, the MOS score is about 2.9, indicating that it is somewhat unnatural.", 2.9),
    # "the overall MOS quality is X", "the overall MOS score of X is reasonable"
    ("Despite slight coloring, the overall MOS quality is 4.1, a somewhat natural result.", 4.1),
    ("With these issues, I think the overall MOS score of 2.2 is reasonable.", 2.2),
    ("Taking all factors into account, the overall mos is 4.6.", 4.6),
    # the MOS first, then more description without a number
    ("This sample is somewhat natural with an overall MOS of 3.5. There is moderate hiss, but "
     "the volume is fine.", 3.5),
]


@pytest.mark.parametrize("text,expected", MOS_EXPERT_FAMILIES)
def test_parse_mos_expert_families(text: str, expected: float) -> None:
    assert parse_mos(text) == pytest.approx(expected)


# A score for the whole clip stated without "MOS" or "overall".
MOS_CLIP_SCORES = [
    ("I would give it a score of 3.2 out of 5.", 3.2),
    ("I'd rate it 3.5/5.", 3.5),
    ("Final score: 3.2/5", 3.2),
    ("Rating: 3.7 out of 5", 3.7),
    ("The hiss is mild. I would give this recording a 2.9.", 2.9),
    ("All told, it scores 3.1 on the MOS scale.", 3.1),
    ("Taking everything into account, I rate the clip at 2.4.", 2.4),
    ("My score is 4.1 out of 5.", 4.1),
    ("I would assign this sample a rating of 3.8.", 3.8),
    ("The noise is faint, so I would give a score of 4,2 out of 5.", 4.2),
    ("Quality score: 1.9", 1.9),
    ("Everything considered, a rating of 3.6 out of 5.0.", 3.6),
    ("Rated as a whole, I'd give the utterance roughly 2.6/5.", 2.6),
]


@pytest.mark.parametrize("text,expected", MOS_CLIP_SCORES)
def test_parse_mos_clip_scores(text: str, expected: float) -> None:
    assert parse_mos(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", [
    "The noisiness gets a score of 3.2 out of 5.",
    "I would give the loudness a 4.",
    "Loudness rating: 3.5",
    "For distortion I would give it 2.5/5.",
    "I would give it 8/10.",
    "Score: 7/10",
    "The clip deserves a score of 3.",  # no "/5": too vague for a MOS
    "I rate it between 3 and 4.",
    "I would rate it 3-4.",
    "I'd give it a 6.",
])
def test_parse_mos_clip_scores_not_found(text: str) -> None:
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


# --- verdict: phrasing families of the expert corpus -------------------------------------------
# The A/B texts released with the paper (LLaMA-3.1-70B) compare a few dimensions, naming both
# clips, then conclude. The sentences below are written for these tests, one list per family.

# "I think SpeechB has higher synthesis quality than SpeechA" (the defect: one-word "SpeechB",
# "has higher ... quality than").
AB_HIGHER_QUALITY = [
    ("I think SpeechB has higher synthesis quality than SpeechA.", "B"),
    ("I think SpeechA has higher synthesis quality than SpeechB.", "A"),
    ("So I think SpeechA has much higher synthesis quality than SpeechB.", "A"),
    ("I would conclude that Speech B has a much higher synthesis quality than Speech A.", "B"),
    ("speechB has a noticeably higher overall synthetic quality (mos) than speechA.", "B"),
    ("In my view SPEECH A has higher synthesized quality than SPEECH B!", "A"),
    ("Sample B has the higher MOS score of the two.", "B"),
    ("Clip A has a higher mean opinion score than clip B", "A"),
    ("Recording B is of much higher quality than recording A.", "B"),
    ("SpeechA is of higher overall quality than SpeechB.", "A"),
    ("I believe SpeechB has significantly better synthesis quality than SpeechA.", "B"),
    ("SpeechA has greater perceived quality than SpeechB, I think.", "A"),
    ("Weighing everything, SpeechB has higher-quality synthesis than SpeechA.", "B"),
    ("with SpeechA having a much higher MOS score", "A"),
]

# Reversals: the subject is the loser ("A has lower quality than B": B).
AB_REVERSALS = [
    ("SpeechA has lower synthesis quality than SpeechB.", "B"),
    ("SpeechB has lower synthesis quality than SpeechA.", "A"),
    ("Speech B has a much lower MOS than Speech A.", "A"),
    ("SpeechA has lower overall synthetic quality and is noisier than SpeechB.", "B"),
    ("Clip A is of lower quality than clip B.", "B"),
    ("sample B is clearly inferior to sample A.", "A"),
    ("SpeechB is worse than SpeechA overall.", "A"),
    ("SpeechA is not as good as SpeechB.", "B"),
    ("Speech B isn't quite as good as Speech A.", "A"),
    ("Recording A is almost as good as recording B.", "B"),
    ("SpeechA's overall synthetic quality (mos) is much higher than SpeechB's.", "A"),
    ("SpeechB's MOS is lower than SpeechA's.", "A"),
]

# Negations of a comparative: "B is not better" is a verdict for A, as the module defines it.
AB_NEGATIONS = [
    ("SpeechB does not have higher synthesis quality than SpeechA.", "A"),
    ("SpeechA doesn't have better quality than SpeechB.", "B"),
    ("SpeechB isn't better than SpeechA.", "A"),
    ("Speech A is no better than Speech B.", "B"),
    ("I don't think SpeechA is better than SpeechB.", "B"),
    ("I do not think SpeechB has higher synthesis quality than SpeechA.", "A"),
    ("Clip B does not sound better than clip A.", "A"),
    ("Speech A does not outperform Speech B.", "B"),
    ("I would not select SpeechA; I would select SpeechB as the better synthesized speech.", "B"),
]

# "I would select SpeechB as (the) better synthesized speech" and the other picks.
AB_PICKS = [
    ("I would select SpeechB as the better synthesized speech.", "B"),
    ("Considering these factors, I would select SpeechA as the better synthesized speech.", "A"),
    ("I would select speechA as better synthesized speech.", "A"),
    ("I would select Speech B as better synthesised speech.", "B"),
    ("Therefore I choose speech 2.", "B"),
    ("I prefer audio 1.", "A"),
    ("My pick is the first audio: I'd go with the first audio.", "A"),
    ("I would choose the second recording.", "B"),
    ("I prefer SpeechB over SpeechA.", "B"),
    ("Winner: Clip A", "A"),
    ("[SpeechB]", "B"),
    ("[Speech A]", "A"),
]

# "B outperforms A", "B wins", "B is the winner", "B is superior to A".
AB_OUTPERFORMS = [
    ("Speech 2 outperforms speech 1.", "B"),
    ("SpeechA clearly outperforms SpeechB.", "A"),
    ("Clip 2 clearly beats clip 1.", "B"),
    ("SpeechB surpasses SpeechA in every respect.", "B"),
    ("SpeechA is the clear winner in this A/B test.", "A"),
    ("Overall SpeechB wins.", "B"),
    ("Clip A is superior to clip B.", "A"),
    ("Audio 2 is better than audio 1.", "B"),
    ("The second clip is preferable.", "B"),
    ("Speech1 is the better one.", "A"),
]

# "it": resolved by a "than/over/to" object, or by the one clip its sentence names.
AB_PRONOUNS = [
    ("Although SpeechB is a bit quieter, its advantages make it the better synthesized speech.",
     "B"),
    ("Despite SpeechA's noise, its lack of distortion makes it a better choice than SpeechB.",
     "A"),
    ("SpeechA has a much higher overall synthetic quality (mos) than SpeechB, so it is the "
     "winner.", "A"),
    ("SpeechB has fewer breaks; this makes it superior to SpeechA.", "B"),
    ("Clip 2 has no dropouts at all, which makes it the better recording.", "B"),
    ("It is louder, and it's the better speech compared to Speech B.", "A"),
    ("Speech A is noisy. Because Speech B has no dropouts, it is the winner.", "B"),
    ("SpeechA keeps a steady level throughout, which makes it the preferable option.", "A"),
]

# Whole texts: both clips are compared on dimensions (often in the loser's favour) before the
# conclusion, which must win.
AB_TEXTS = [
    ("SpeechA and SpeechB are similarly noisy. But because SpeechA breaks up and is distorted, "
     "I think SpeechB has higher synthesis quality than SpeechA.", "B"),
    ("SpeechA and SpeechB have similar loudness. SpeechA is cleaner than SpeechB and has better "
     "continuity, but given the MOS gap I think SpeechB has higher synthesis quality than "
     "SpeechA.", "B"),
    ("SpeechB is cleaner than SpeechA. Still, SpeechA has less distortion and is louder, so "
     "I would select SpeechA as the better synthesized speech.", "A"),
    ("Both have moderate hiss. SpeechB has better continuity than SpeechA. However, SpeechA is "
     "much louder and sounds natural, so I think SpeechA has higher synthesis quality than "
     "SpeechB.", "A"),
    ("SpeechA and SpeechB differ a lot in overall quality, with SpeechB having a much higher MOS "
     "score.\n\nSpeechA is slightly louder. Given the gap, I would select SpeechB as the better "
     "synthesized speech.", "B"),
    ("I would select SpeechB as the better synthesized speech, although SpeechA has better "
     "loudness.", "B"),
    ("SpeechA has better distortion and continuity than SpeechB. SpeechB is cleaner. But due to "
     "its much lower overall synthetic quality, I would select speechA as better synthesized "
     "speech.", "A"),
    ("SpeechB is louder and cleaner than SpeechA. Since SpeechA has higher overall synthetic "
     "quality (mos) than SpeechB, I would select SpeechA as the better synthesized speech.", "A"),
    ("At first SpeechA seemed better. On reflection, SpeechA is not as good as SpeechB.", "B"),
    ("SpeechB has fewer dropouts and less hiss than SpeechA; SpeechB outperforms SpeechA in "
     "loudness too. I would pick SpeechB.", "B"),
]

AB_TIES = [
    ("SpeechA has better continuity than SpeechB. But due to its lower overall synthetic quality, "
     "I would select neither as better synthesized speech.", "tie"),
    ("They sound equally good, so it is a draw.", "tie"),
    ("There is no clear winner between Speech A and Speech B.", "tie"),
    ("Speech A is just as good as Speech B.", "tie"),
    ("SpeechA is cleaner, SpeechB is louder: I choose neither.", "tie"),
    ("I prefer SpeechA at first, but overall they are about the same.", "tie"),
]


@pytest.mark.parametrize("text,expected", AB_HIGHER_QUALITY)
def test_parse_verdict_higher_quality(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text,expected", AB_REVERSALS)
def test_parse_verdict_reversals(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text,expected", AB_NEGATIONS)
def test_parse_verdict_negations(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text,expected", AB_PICKS)
def test_parse_verdict_picks(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text,expected", AB_OUTPERFORMS)
def test_parse_verdict_outperforms(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text,expected", AB_PRONOUNS)
def test_parse_verdict_pronouns(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text,expected", AB_TEXTS)
def test_parse_verdict_conclusion_wins(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text,expected", AB_TIES)
def test_parse_verdict_ties(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


def test_parse_verdict_defect_sentence() -> None:
    """The phrasing that was read as no verdict at all (tracked defect)."""
    assert parse_verdict("I think SpeechB has higher synthesis quality than SpeechA.") == "B"


@pytest.mark.parametrize("text", [
    # one dimension compared: no verdict
    "SpeechB has better continuity than SpeechA.",
    "SpeechA has much better continuity, cleanliness and loudness than SpeechB.",
    "SpeechB has better overall noise quality than SpeechA.",
    "SpeechA is better in terms of loudness.",
    "SpeechB outperforms SpeechA in loudness.",
    "SpeechA is louder than SpeechB.",
    "SpeechA and SpeechB have similar levels of distortion and loudness.",
    # no decision stated
    "Which one has higher synthesis quality, SpeechA or SpeechB?",
    "SpeechA and SpeechB both have a MOS of 3.0.",
    "It is better to listen to both clips twice.",
    "SpeechA and SpeechB differ, and it is the better one.",  # "it" could be either clip
    "The second half of the recording is better.",
    "Between 1 and 2, 2 is better.",  # bare digits are numbers, not clips
    "Speech 1.5 seconds in is better than the start.",
    "I would never choose SpeechA.",
    "SpeechB is not worse than SpeechA.",
])
def test_parse_verdict_no_decision(text: str) -> None:
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
