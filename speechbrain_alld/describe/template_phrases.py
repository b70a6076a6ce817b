"""The phrase tables of :class:`~speechbrain_alld.describe.template_expert.TemplateExpert`.

Data only: word lists and sentence templates, per dimension (``noi``, ``col``, ``dis``,
``loud``) and level band (1..5) where the wording depends on them. Every list is ordered from
the most canonical phrasing to the most adventurous one: the expert's sampler stays near the
start of a list at low temperature. Changing any entry changes the generated texts, so bump
:data:`~speechbrain_alld.describe.template_expert.TEMPLATE_VERSION` with it.

Placeholders: ``{m}`` MOS, ``{q}`` quality word, ``{x}``/``{X}`` a noun phrase (capitalised),
``{name}``/``{v}`` a dimension's name and value; in the A/B task ``{W}``/``{w}`` the winner at
the start of / inside a sentence, ``{l}`` the loser, ``{F}``/``{f}`` and ``{O}``/``{o}`` the
clip a dimension favours and the other one, ``{adv}`` a gap adverb.
"""

from __future__ import annotations

from speechbrain_alld.ratings import DIMENSIONS

#: ACR category words for bands 1..5 (ALLD-SPEC §2).
QUALITY_WORDS: dict[int, str] = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}

#: Regex stems (matched after a word boundary, case-insensitively) of the words that belong to
#: each dimension. No other part of a text uses them: a dimension absent from the ratings is
#: never mentioned.
DIMENSION_KEYWORDS: dict[str, tuple[str, ...]] = {
    "noi": ("nois", "hiss", "background", "clean"),
    "col": ("colou?r", "uncolou?r", "distort", "timbre", "muffled", "harsh", "natural",
            "unnatural", "filtering", "artifact", "mangled"),
    "dis": ("continu", "discontinu", "dropout", "break", "interrupt", "gap", "chopp",
            "fragment", "smooth"),
    "loud": ("loud", "quiet", "volume", "level"),
}

#: Predicates with a clip as subject ("The clip ...", "Speech A ..."), per dimension and band.
CLAUSES: dict[str, dict[int, tuple[str, ...]]] = {
    "noi": {
        5: ("has virtually no background noise", "is essentially free of background noise",
            "has a clean, noise-free background", "shows no trace of background noise"),
        4: ("has only faint background noise", "carries a slight, unobtrusive noise floor",
            "is mostly clean, with a little background hiss",
            "has low background noise that rarely draws attention"),
        3: ("has noticeable background noise", "carries a moderate noise floor",
            "is accompanied by clearly audible background noise",
            "has a fair amount of background hiss"),
        2: ("suffers from strong background noise", "is quite noisy",
            "has intrusive background noise that competes with the voice",
            "is marred by persistent background noise"),
        1: ("is heavily masked by noise", "is buried in background noise",
            "is dominated by intense noise", "has overwhelming background noise"),
    },
    "col": {
        5: ("sounds completely natural, with no audible distortion",
            "has a natural, uncoloured timbre", "is free of distortion",
            "shows no coloration at all"),
        4: ("sounds largely natural, with only slight coloration",
            "has a mostly natural timbre with minor distortion", "shows little distortion",
            "has only faint traces of coloration"),
        3: ("shows some coloration", "has a moderately distorted timbre",
            "sounds somewhat unnatural due to distortion", "has noticeable filtering artifacts"),
        2: ("is clearly distorted", "has a strongly coloured, unnatural timbre",
            "sounds muffled and distorted", "suffers from considerable distortion"),
        1: ("is severely distorted", "has a badly mangled timbre",
            "sounds heavily coloured and harsh", "is dominated by harsh distortion"),
    },
    "dis": {
        5: ("flows continuously, without any dropouts", "is perfectly continuous",
            "has no breaks or interruptions", "plays back without a single dropout"),
        4: ("is almost entirely continuous", "has only an occasional tiny break",
            "shows very few interruptions", "is largely free of dropouts"),
        3: ("has some noticeable breaks", "is interrupted by occasional dropouts",
            "shows moderate discontinuity", "contains a few audible gaps"),
        2: ("has frequent dropouts", "is quite choppy", "is repeatedly interrupted by breaks",
            "suffers from clear discontinuities"),
        1: ("is severely fragmented by dropouts", "breaks up constantly", "is extremely choppy",
            "is riddled with gaps and interruptions"),
    },
    "loud": {
        5: ("is at an ideal listening level", "has a perfectly comfortable loudness",
            "is played at a well-balanced volume", "has just the right loudness"),
        4: ("is loud enough for comfortable listening", "has an adequate level",
            "has good loudness", "sits at a comfortable volume"),
        3: ("is somewhat quiet", "has a moderate, slightly low level", "could be a bit louder",
            "has only fair loudness"),
        2: ("is rather quiet", "has a low volume", "is too quiet for comfortable listening",
            "has poor loudness"),
        1: ("is extremely quiet", "is barely loud enough to follow", "has a very low level",
            "has almost no usable volume"),
    },
}

#: Complete statements (without the final period), per dimension and band.
STATEMENTS: dict[str, dict[int, tuple[str, ...]]] = {
    "noi": {
        5: ("Background noise is practically absent", "There is virtually no background noise",
            "The background is completely clean"),
        4: ("Background noise is low", "There is only a faint noise floor",
            "The background is mostly clean"),
        3: ("Background noise is moderate", "There is a noticeable amount of background noise",
            "The background is somewhat noisy"),
        2: ("Background noise is strong", "There is a lot of background noise",
            "The background is quite noisy"),
        1: ("Background noise is overwhelming", "The noise almost drowns out the voice",
            "The background is extremely noisy"),
    },
    "col": {
        5: ("The timbre is entirely natural", "There is no audible distortion",
            "Coloration is absent"),
        4: ("The timbre is mostly natural", "Distortion is minimal", "Coloration is slight"),
        3: ("The timbre is somewhat coloured", "Distortion is moderate",
            "Some coloration is audible"),
        2: ("The timbre is clearly unnatural", "Distortion is pronounced",
            "Coloration is strong"),
        1: ("The timbre is severely distorted", "Distortion is extreme", "Coloration is severe"),
    },
    "dis": {
        5: ("The speech is perfectly continuous", "There are no dropouts at all",
            "Continuity is flawless"),
        4: ("Dropouts are rare", "The speech is almost entirely continuous",
            "Continuity is good"),
        3: ("Dropouts are occasional", "There are some breaks in the speech",
            "Continuity is only fair"),
        2: ("Dropouts are frequent", "The speech breaks up regularly", "Continuity is poor"),
        1: ("Dropouts are constant", "The speech is badly fragmented",
            "Continuity is very poor"),
    },
    "loud": {
        5: ("The level is ideal", "Loudness is perfectly balanced", "The volume is just right"),
        4: ("The level is good", "Loudness is adequate", "The volume is comfortable"),
        3: ("The level is somewhat low", "Loudness is only fair", "The volume is a bit low"),
        2: ("The level is low", "Loudness is poor", "The volume is too low"),
        1: ("The level is far too low", "Loudness is very poor", "The volume is extremely low"),
    },
}

#: Every phrasing that states a dimension's level, per dimension and band (for faithfulness
#: checks: a text states only phrases of the value's band).
LEVEL_PHRASES: dict[str, dict[int, tuple[str, ...]]] = {
    dim: {band: CLAUSES[dim][band] + STATEMENTS[dim][band] for band in range(1, 6)}
    for dim in DIMENSIONS
}

#: Descriptions of the overall quality of a MOS-only clip, per MOS band (no final period).
QUALITY_PHRASES: dict[int, tuple[str, ...]] = {
    1: ("The speech quality is bad, and listening to it is a real strain",
        "This is a badly degraded clip that is hard to listen to",
        "The clip sounds very poor and is tiring to follow"),
    2: ("The speech quality is poor, with clearly audible impairments",
        "The clip is noticeably degraded and unpleasant to listen to",
        "Quality is below average, and the impairments are hard to ignore"),
    3: ("The speech quality is fair: intelligible, but with some audible impairments",
        "The clip is acceptable, though far from pristine",
        "Quality is middling; the speech is understandable but clearly impaired"),
    4: ("The speech quality is good, with only minor impairments",
        "The clip sounds pleasant, with just small imperfections",
        "Quality is good, and only a careful listener would notice any flaws"),
    5: ("The speech quality is excellent, with no noticeable impairments",
        "The clip sounds pristine and effortless to listen to",
        "This is a high-quality clip without any audible flaws"),
}

#: Noun phrases for a dimension that degrades the clip (value below 3.5).
WEAK_NOUNS: dict[str, tuple[str, ...]] = {
    "noi": ("the background noise", "the noise"),
    "col": ("the distortion", "the coloration"),
    "dis": ("the discontinuity", "the choppiness"),
    "loud": ("the low level", "the low volume"),
}
#: Neutral noun phrases for a dimension, whatever its value.
NEUTRAL_NOUNS: dict[str, tuple[str, ...]] = {
    "noi": ("the background noise",),
    "col": ("the timbre",),
    "dis": ("the continuity",),
    "loud": ("the loudness",),
}
#: Topics for "In terms of ..." (A/B task).
TOPICS: dict[str, tuple[str, ...]] = {
    "noi": ("background noise", "noisiness"),
    "col": ("coloration", "distortion"),
    "dis": ("continuity", "discontinuity"),
    "loud": ("loudness", "volume"),
}
#: Comparative predicates for the clip that is better on a dimension ({adv}: gap size).
COMPARATIVES: dict[str, tuple[str, ...]] = {
    "noi": ("has {adv} less background noise", "is {adv} less noisy",
            "has a {adv} lower noise floor"),
    "col": ("is {adv} less distorted", "has a {adv} more natural timbre",
            "shows {adv} less coloration"),
    "dis": ("is {adv} more continuous", "suffers {adv} less from dropouts",
            "flows {adv} more smoothly, with fewer breaks"),
    "loud": ("is {adv} louder", "has a {adv} more comfortable level",
             "has a {adv} more adequate volume"),
}
#: Reasons the winner is preferred, by a dimension it is better on.
REASONS: dict[str, tuple[str, ...]] = {
    "noi": ("lower background noise", "less intrusive noise"),
    "col": ("more natural timbre", "lower distortion"),
    "dis": ("better continuity", "fewer dropouts"),
    "loud": ("more comfortable level", "more adequate loudness"),
}

#: Adverbs for the size of a dimension gap, by the smallest gap they describe (largest first).
GAP_ADVERBS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (2.0, ("much", "far", "substantially")),
    (1.0, ("noticeably", "clearly", "markedly")),
    (0.0, ("somewhat", "slightly", "moderately")),
)

MOS_INTROS = ("Here is my assessment of this clip.", "Let me summarise what I hear.",
               "Let me go through the main quality factors.")
MOS_ONLY_INTROS = ("Here is my assessment of this clip.", "Let me summarise what I hear.")
SUBJECTS_FIRST = ("The clip", "The recording", "The speech", "This sample", "The audio")
SUBJECTS_LATER = SUBJECTS_FIRST + ("It",)
NUMBER_FORMATS = (" ({name} {v})", " ({name}: {v})", " ({name} score {v})", " ({name} {v}/5)")
MOS_FINALS = (
    "Overall MOS: {m}.",
    "Taking everything into account, I would rate its MOS at {m}.",
    "The overall quality is {q}, giving an overall MOS of {m}.",
    "All in all, the quality is {q}, with a MOS of {m}.",
    "My estimate of the MOS is {m}.",
    "I would give it a MOS of {m}.",
    "Overall quality: {q}, MOS {m}.",
    "Overall, the mean opinion score is {m}.",
)
#: The final sentence of a brief MOS text (``TemplateExpert(detail="brief")``).
BRIEF_MOS_FINALS = ("MOS: {m}.", "Overall MOS: {m}.", "MOS {m}.")
ANALYSIS_ONE = (
    "{X} is the main factor holding the overall quality back.",
    "The overall quality is limited mainly by {x}.",
    "Most of the degradation comes from {x}.",
    "{X} weighs most heavily on the overall impression.",
    "It is above all {x} that drags the quality down.",
)
ANALYSIS_TWO = (
    "{X} and {y} are the main factors holding the overall quality back.",
    "The overall quality is limited mainly by {x} and {y}.",
    "Most of the degradation comes from {x} and {y}.",
    "{X} and {y} weigh most heavily on the overall impression.",
)
ANALYSIS_GOOD = (
    "No single aspect stands out as a problem; the clip is good throughout.",
    "All aspects are rated well, so nothing drags the quality down noticeably.",
    "Every factor is in good shape, leaving little to criticise.",
)
ANALYSIS_IF_ANYTHING = ("If anything, {x} is the weakest aspect.",
                         "The weakest aspect, if any, is {x}.")
STRENGTHS = ("By contrast, {x} is not a concern.", "{X}, on the other hand, holds up well.")

# A/B task. {W}/{L}: winner/loser at the start of a sentence, {w}/{l}: inside a sentence.
NAMINGS = (("Speech {}", "Speech {}"), ("Clip {}", "clip {}"), ("Sample {}", "sample {}"),
            ("Recording {}", "recording {}"))
AB_INTROS = ("Comparing the two clips:", "Let me compare the two recordings.",
              "Here is how the two clips compare.")
CONCESSIONS = ("Admittedly, {f} {comp}{nums}.", "To be fair, {f} {comp} than {o}{nums}.",
                "On {topic}, {f} actually comes out ahead{nums}.",
                "{F} does have the edge in {topic}{nums}, though.")
OVERALL_SAME_BAND = (
    "Both clips are of {q} quality overall, but {w} is rated {slightly}higher{nums}.",
    "Overall, {w} is rated {slightly}higher{nums}, although both are of {q} quality.",
)
OVERALL_DIFF_BAND = (
    "Overall, {w} is of {qw} quality, while {l} is only {ql}{nums}.",
    "{W} is rated higher overall{nums}.",
    "In overall quality, {w} comes out ahead{nums}.",
)
VERDICTS = (
    "Therefore, I prefer {w}.",
    "{W} is the better one overall.",
    "My preference goes to {w}.",
    "All in all, {w} is clearly better.",
    "I would choose {w}.",
    "{W} is preferred.",
    "So the winner is {w}.",
    "{W} offers the higher quality.",
)
VERDICTS_WITH_REASONS = (
    "Given its {reasons}, {w} is the better one overall.",
    "I therefore prefer {w} for its {reasons}.",
    "With its {reasons}, {w} is clearly better.",
    "Because of its {reasons}, my preference goes to {w}.",
)
TIES = (
    "Overall, the two clips are of equal quality, so it is a tie.",
    "I have no preference between them: this is a tie.",
    "Neither is better overall, so I call it a tie.",
)
