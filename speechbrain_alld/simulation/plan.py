"""The degradation plan of a clip: which degradations it gets, with which recorded parameters.

Determinism: every clip draws from its own generators (:func:`clip_rng`) seeded by
``(seed, subset, index, stream)``, so a clip's audio and ratings do not depend on the order in
which clips are made or on the number of workers.
"""

from __future__ import annotations

import math

import numpy as np

from speechbrain_alld.durable import stable_seed
from speechbrain_alld.simulation.config import DISCONTINUITY_KINDS, SimulationConfig
from speechbrain_alld.simulation.degradations import DegradationParams

#: One independent generator per purpose of a clip.
STREAMS: dict[str, int] = {"speech": 0, "plan": 1, "render": 2, "votes": 3}


def clip_rng(seed: int, subset: str, index: int, stream: str) -> np.random.Generator:
    """The generator of one clip and one purpose.

    Arguments
    ---------
    seed : int
        The run's seed.
    subset : str
        The clip's subset (its name is hashed, so subsets never share generators).
    index : int
        The clip's index in its subset.
    stream : str
        One of :data:`STREAMS`: ``speech``, ``plan``, ``render`` or ``votes``.

    Returns
    -------
    A ``numpy`` generator that depends on these four values only.

    Example
    -------
    >>> a = clip_rng(0, "NISQA_TRAIN_SIM", 3, "plan").random()
    >>> a == clip_rng(0, "NISQA_TRAIN_SIM", 3, "plan").random()
    True
    >>> a == clip_rng(0, "NISQA_TRAIN_SIM", 3, "votes").random()
    False
    """
    code = stable_seed(subset, n_bytes=4, algorithm="sha1")
    return np.random.default_rng([seed, code, index, STREAMS[stream]])


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _choice(rng: np.random.Generator, items: tuple, weights: tuple[float, ...]):
    p = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


def plan_degradations(config: SimulationConfig, rng: np.random.Generator) -> DegradationParams:
    """Draw the degradations of one clip.

    The clip is clean with probability ``p_clean``; otherwise each family (noise, coloration,
    discontinuity, loudness) is drawn with its own probability, at least one family per clip.
    Values are rounded to what the CSV records, so the recorded parameters are exactly the ones
    applied.

    Arguments
    ---------
    config : SimulationConfig
        Probabilities, kinds, weights and ranges of the degradations.
    rng : numpy.random.Generator
        The clip's ``plan`` generator (see :func:`clip_rng`).

    Returns
    -------
    The clip's :class:`~speechbrain_alld.simulation.degradations.DegradationParams`.

    Example
    -------
    >>> plan = plan_degradations(SimulationConfig(), clip_rng(0, "NISQA_TRAIN_SIM", 0, "plan"))
    >>> plan == plan_degradations(SimulationConfig(), clip_rng(0, "NISQA_TRAIN_SIM", 0, "plan"))
    True
    >>> plan_degradations(SimulationConfig(p_clean=1.0), np.random.default_rng(0)).description
    'clean'
    """
    if rng.random() < config.p_clean:
        return DegradationParams()
    chances = {"noise": config.p_noise, "coloration": config.p_coloration,
               "discontinuity": config.p_discontinuity, "loudness": config.p_loudness}
    families = {name: rng.random() < p for name, p in chances.items()}
    if not any(families.values()) and sum(chances.values()) > 0:
        # a degraded clip has at least one family, drawn in proportion to the chances
        families[_choice(rng, tuple(chances), tuple(chances.values()))] = True
    kw: dict = {}
    if families["noise"]:
        kw["noise_type"] = _choice(rng, config.noise_types, config.noise_type_weights)
        kw["snr_db"] = round(float(rng.uniform(*config.snr_range)), 2)
    if families["coloration"]:
        kind = _choice(rng, config.coloration_kinds, config.coloration_weights)
        if kind in ("highpass", "bandpass"):
            kw["highpass_hz"] = round(_log_uniform(rng, *config.highpass_range))
        if kind in ("lowpass", "bandpass"):
            lo = config.lowpass_range[0]
            if kind == "bandpass":  # keep at least an octave of band
                lo = min(max(lo, 2 * kw["highpass_hz"]), config.lowpass_range[1])
            kw["lowpass_hz"] = round(_log_uniform(rng, lo, config.lowpass_range[1]))
        kw["narrowband"] = kind == "narrowband"
        if kind == "clipping" or rng.random() < config.p_extra_clipping:
            kw["clip_threshold"] = round(_log_uniform(rng, *config.clip_threshold_range), 4)
    if families["discontinuity"]:
        both = rng.random() < config.p_both_discontinuities
        kind = DISCONTINUITY_KINDS[int(rng.integers(2))]
        if both or kind == "packet_loss":
            kw["packet_loss_rate"] = round(float(rng.uniform(*config.packet_loss_range)), 4)
        if both or kind == "timeclipping":
            kw["timeclip_rate"] = round(float(rng.uniform(*config.timeclip_range)), 4)
    if families["loudness"]:
        quiet = rng.random() < config.p_quiet
        span = config.quiet_level_range if quiet else config.loud_level_range
        kw["level_db"] = round(float(rng.uniform(*span)), 2)
    return DegradationParams(**kw)
