"""Simulated listening test: degradation parameters -> "true" ratings -> noisy listener votes.

THIS IS A SIMULATION. No person rated these clips. The rules below were chosen by hand to follow
the qualitative behaviour of real listening tests (NISQA, ITU-T P.800/P.808 ACR, the E-model of
ITU-T G.107); their constants are not fitted to any human data. The simulated corpus exists so
that the ALLD pipeline can be built, tested and demonstrated without the real NISQA corpus; numbers
measured on it say nothing about real listeners.

Rationale
---------
Each quality dimension depends only on the degradations of its own family, through a documented
monotone function, so a model that hears the audio can in principle recover every rating:

* ``dim = FLOOR + (CLEAN[dim] - FLOOR) * prod(u_k)`` where each factor ``u_k`` in (0, 1] is one
  degradation's normalised quality (1 when that degradation is absent). Independent impairments
  multiply. ``FLOOR`` is 1 (bad), the clean values are 4.6-4.8 (listeners rarely give 5 to
  everything).
* **noi** (noisiness), from the SNR in dB: a logistic ``u = sigmoid((snr - mid) / 4 dB)`` with
  ``mid = 12 dB`` shifted by the noise type (babble +2 dB: speech-like interference distracts more;
  white +1 dB: broadband hiss; pink 0).
* **col** (coloration): the upper band edge ``f_hi`` (low-pass cutoff, or 4 kHz for the narrowband
  path) through ``sigmoid(log2(f_hi / 2.5 kHz) / 0.55)`` (a 3.4-4 kHz telephone band costs about
  one point, below 1 kHz is bad); the lower band edge ``f_lo`` through
  ``1 - sigmoid(log2(f_lo / 700 Hz) / 0.5)`` (thin, tinny sound); amplitude clipping at a
  threshold ``th`` (fraction of the peak) through ``sigmoid(log10(th / 0.08) / 0.35)``.
* **dis** (discontinuity), from the rate of zeroed 20 ms frames ``p`` and of removed frames
  ``q``, with the E-model's packet-loss form ``u = B / (B + 100 * rate)`` (G.107 ``Ie,eff``):
  ``B = 5`` for packet loss without concealment, ``B = 8`` for time clipping.
* **loud** (loudness), from the speech level deviation ``d = level - nominal`` (-26 dBov):
  too quiet, ``sigmoid((d + 18 dB) / 4 dB)``; too loud, ``sigmoid((16 dB - d) / 4 dB)`` (both
  divided by their value at ``d = 0`` so the nominal level scores ``CLEAN``); clipping at full
  scale (fraction ``c`` of samples) multiplies by ``1 / (1 + c / 0.02)``.
* **mos** combines the dimensions so that the weakest one dominates, as in listening tests where
  one strong impairment caps the overall judgement: ``mos = 0.75 * min(dims) + 0.25 * mean(dims)``.
  It is monotone (non-decreasing in every dimension, strictly in each through the mean).

Listeners: each clip gets ``votes`` simulated listeners. Listener ``l`` has a bias
``b_l ~ N(0, bias_sigma)`` shared by all five scales of that clip (so the scales' errors are
correlated, as with real people); each vote is ``round(true + b_l + N(0, sigma))`` clipped to the
ACR scale 1..5. The reported value is the mean of the votes, the spread their sample standard
deviation (0 for a single vote).
"""

from __future__ import annotations

import math

import numpy as np

from speechbrain_alld.ratings import DIMENSIONS, RATING_KEYS
from speechbrain_alld.simulation.degradations import (
    NARROWBAND_EDGE_HZ,
    NOMINAL_LEVEL_DB,
    DegradationParams,
)

FLOOR = 1.0
#: Value of each dimension for an undegraded clip.
CLEAN: dict[str, float] = {"noi": 4.7, "col": 4.6, "dis": 4.8, "loud": 4.6}

SNR_MID_DB = 12.0
SNR_SLOPE_DB = 4.0
NOISE_TYPE_OFFSET_DB: dict[str, float] = {"white": 1.0, "pink": 0.0, "babble": 2.0}

LOWPASS_MID_HZ = 2500.0
LOWPASS_SLOPE_OCT = 0.55
HIGHPASS_MID_HZ = 700.0
HIGHPASS_SLOPE_OCT = 0.5
CLIP_MID = 0.08
CLIP_SLOPE_DECADES = 0.35

PACKET_LOSS_ROBUSTNESS = 5.0
TIMECLIP_ROBUSTNESS = 8.0

QUIET_MID_DB = -18.0
LOUD_MID_DB = 16.0
LEVEL_SLOPE_DB = 4.0
FULL_SCALE_CLIP_HALF = 0.02

MOS_MIN_WEIGHT = 0.75


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _dimension(key: str, factors: list[float]) -> float:
    return FLOOR + (CLEAN[key] - FLOOR) * math.prod(factors)


def noise_factor(snr_db: float | None, noise_type: str | None = "pink") -> float:
    """Normalised noisiness quality for an SNR in dB (1 without noise)."""
    if snr_db is None:
        return 1.0
    mid = SNR_MID_DB + NOISE_TYPE_OFFSET_DB.get(noise_type or "pink", 0.0)
    return _sigmoid((snr_db - mid) / SNR_SLOPE_DB)


def coloration_factors(
    lowpass_hz: float | None = None,
    highpass_hz: float | None = None,
    narrowband: bool = False,
    clip_threshold: float | None = None,
) -> list[float]:
    """Normalised coloration qualities of the upper band edge, lower band edge and clipping."""
    upper = [f for f in (lowpass_hz, NARROWBAND_EDGE_HZ if narrowband else None) if f]
    u_hi = _sigmoid(math.log2(min(upper) / LOWPASS_MID_HZ) / LOWPASS_SLOPE_OCT) if upper else 1.0
    u_lo = 1.0
    if highpass_hz:
        u_lo = 1.0 - _sigmoid(math.log2(highpass_hz / HIGHPASS_MID_HZ) / HIGHPASS_SLOPE_OCT)
    u_cl = 1.0
    if clip_threshold is not None:
        u_cl = _sigmoid(math.log10(clip_threshold / CLIP_MID) / CLIP_SLOPE_DECADES)
    return [u_hi, u_lo, u_cl]


def discontinuity_factors(packet_loss_rate: float = 0.0, timeclip_rate: float = 0.0) -> list[float]:
    """Normalised continuity qualities for the packet-loss and time-clipping rates (0..1)."""
    return [
        PACKET_LOSS_ROBUSTNESS / (PACKET_LOSS_ROBUSTNESS + 100.0 * packet_loss_rate),
        TIMECLIP_ROBUSTNESS / (TIMECLIP_ROBUSTNESS + 100.0 * timeclip_rate),
    ]


def loudness_factors(
    level_db: float | None,
    full_scale_clipped: float = 0.0,
    nominal_level_db: float = NOMINAL_LEVEL_DB,
) -> list[float]:
    """Normalised loudness qualities of the speech level (dBov) and of full-scale clipping."""
    d = 0.0 if level_db is None else level_db - nominal_level_db
    if d < 0:
        u_level = _sigmoid((d - QUIET_MID_DB) / LEVEL_SLOPE_DB) / _sigmoid(
            -QUIET_MID_DB / LEVEL_SLOPE_DB)
    else:
        u_level = _sigmoid((LOUD_MID_DB - d) / LEVEL_SLOPE_DB) / _sigmoid(
            LOUD_MID_DB / LEVEL_SLOPE_DB)
    return [u_level, 1.0 / (1.0 + full_scale_clipped / FULL_SCALE_CLIP_HALF)]


def combine_mos(dims: dict[str, float]) -> float:
    """Overall quality from the four dimensions: ``0.75 * min + 0.25 * mean``."""
    values = [dims[k] for k in DIMENSIONS]
    return MOS_MIN_WEIGHT * min(values) + (1.0 - MOS_MIN_WEIGHT) * sum(values) / len(values)


def true_ratings(
    params: DegradationParams,
    full_scale_clipped: float = 0.0,
    nominal_level_db: float = NOMINAL_LEVEL_DB,
) -> dict[str, float]:
    """Noise-free ratings ``{"mos", "noi", "col", "dis", "loud"}`` of a degraded clip.

    ``full_scale_clipped`` is the measured fraction of samples clipped at full scale (see
    :func:`speechbrain_alld.simulation.degradations.apply_degradations`); loudness is judged
    relative to ``nominal_level_db``.
    """
    dims = {
        "noi": _dimension("noi", [noise_factor(params.snr_db, params.noise_type)]),
        "col": _dimension("col", coloration_factors(
            params.lowpass_hz, params.highpass_hz, params.narrowband, params.clip_threshold)),
        "dis": _dimension("dis", discontinuity_factors(
            params.packet_loss_rate, params.timeclip_rate)),
        "loud": _dimension("loud", loudness_factors(
            params.level_db, full_scale_clipped, nominal_level_db)),
    }
    return {"mos": combine_mos(dims), **dims}


def simulate_votes(
    true: dict[str, float],
    votes: int,
    rng: np.random.Generator,
    sigma: float = 0.6,
    bias_sigma: float = 0.3,
) -> dict[str, tuple[float, float]]:
    """Simulated ACR votes: ``{key: (mean, sample std)}`` for every key of ``true``.

    Every vote is ``round(true + listener_bias + N(0, sigma))`` clipped to 1..5.
    """
    if votes < 1:
        raise ValueError(f"votes must be >= 1 (got {votes})")
    bias = rng.normal(0.0, bias_sigma, size=votes) if bias_sigma > 0 else np.zeros(votes)
    out = {}
    for key in RATING_KEYS:
        if key not in true:
            continue
        raw = true[key] + bias + rng.normal(0.0, sigma, size=votes)
        ballots = np.clip(np.floor(raw + 0.5), 1.0, 5.0)
        std = float(np.std(ballots, ddof=1)) if votes > 1 else 0.0
        out[key] = (float(np.mean(ballots)), std)
    return out
