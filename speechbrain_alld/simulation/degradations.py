"""Signal degradations for the simulated corpus, with every parameter explicit and recorded.

All functions are pure numpy/scipy: they take float signals in [-1, 1] (full scale = 0 dBov),
the sample rate and the degradation parameters, plus an ``np.random.Generator`` where randomness
is involved, so the same inputs always give the same output. :func:`apply_degradations` chains
them in a fixed order (coloration -> noise -> discontinuity -> level) from a
:class:`DegradationParams` record; the corpus generator stores that record next to each clip.

Levels are measured with :func:`active_speech_level`, an implementation of the ITU-T P.56
method B (envelope, 0.2 s hangover, 15.9 dB margin) whose threshold sweep is done on a sorted
envelope, so it costs one sort per call.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import butter, lfilter, resample_poly, sosfiltfilt

#: Active speech level every clean clip is normalised to before degrading (dBov).
NOMINAL_LEVEL_DB = -26.0
NOISE_TYPES: tuple[str, ...] = ("white", "pink", "babble")
#: Sample rate of the narrowband (telephone) path.
NARROWBAND_RATE = 8000
#: Upper band edge recorded for the narrowband path (Hz): the anti-aliasing filter's cutoff.
NARROWBAND_EDGE_HZ = NARROWBAND_RATE / 2
_FULL_SCALE = 32767 / 32768


def rms_level(x: np.ndarray) -> float:
    """Mean-square level of ``x`` in dBov (``-inf`` for silence)."""
    x = np.asarray(x, dtype=np.float64)
    power = float(np.mean(x * x)) if x.size else 0.0
    return 10.0 * math.log10(power) if power > 0 else -math.inf


def active_speech_level(
    x: np.ndarray,
    fs: int,
    margin_db: float = 15.9,
    time_constant: float = 0.03,
    hangover: float = 0.2,
) -> float:
    """Active speech level in dBov, ITU-T P.56 method B (``-inf`` for silence).

    A sample is active at threshold ``c`` if the twice-smoothed rectified envelope reached ``c``
    within the last ``hangover`` seconds. The level is the energy per active sample at the
    threshold where that level exceeds the threshold by ``margin_db``.
    """
    x = np.asarray(x, dtype=np.float64)
    energy = float(np.sum(x * x))
    if x.size == 0 or energy <= 0.0:
        return -math.inf
    g = math.exp(-1.0 / (fs * time_constant))
    env = lfilter([1.0 - g], [1.0, -g], np.abs(x))
    env = lfilter([1.0 - g], [1.0, -g], env)
    h = max(int(round(hangover * fs)), 0)
    held = maximum_filter1d(env, size=h + 1, origin=h - (h + 1) // 2, mode="constant")
    held = np.sort(held)
    top = held[-1]
    if top <= 0.0:
        return rms_level(x)
    thresholds = top * 10.0 ** (-np.arange(120.0, 0.0, -0.25) / 20.0)
    active = held.size - np.searchsorted(held, thresholds, side="left")
    keep = active > 0
    thresholds, active = thresholds[keep], active[keep]
    level = 10.0 * np.log10(energy / active)
    delta = level - 20.0 * np.log10(thresholds)
    below = np.nonzero(delta <= margin_db)[0]
    if below.size == 0:
        return float(level[-1])
    j = int(below[0])
    if j == 0:
        return float(level[0])
    t = (delta[j - 1] - margin_db) / (delta[j - 1] - delta[j])
    return float(level[j - 1] + t * (level[j] - level[j - 1]))


def scale_to_level(x: np.ndarray, fs: int, level_db: float) -> np.ndarray:
    """Scale ``x`` so that its active speech level is ``level_db`` dBov."""
    current = active_speech_level(x, fs)
    if not math.isfinite(current):
        raise ValueError("cannot set the level of a silent signal")
    return x * 10.0 ** ((level_db - current) / 20.0)


# --------------------------------------------------------------------------------------- noise
def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise, unit variance."""
    return rng.standard_normal(n)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise by spectral shaping of white noise, unit variance."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(f), n)
    return noise / (np.std(noise) + 1e-12)


def babble_noise(
    n: int, talkers: list[np.ndarray], rng: np.random.Generator, n_talkers: int = 6
) -> np.ndarray:
    """Babble: ``n_talkers`` utterances from ``talkers`` at equal level, random circular offsets.

    Each talker signal is looped to ``n`` samples from a random start; the sum is normalised to
    unit variance.
    """
    if not talkers:
        raise ValueError("babble noise needs at least one talker signal")
    picks = rng.choice(len(talkers), size=n_talkers, replace=n_talkers > len(talkers))
    out = np.zeros(n)
    for k in picks:
        talker = talkers[int(k)]
        talker = talker / (np.std(talker) + 1e-12)
        reps = int(math.ceil(n / talker.size)) + 1
        start = int(rng.integers(talker.size))
        out += np.tile(talker, reps)[start : start + n]
    return out / (np.std(out) + 1e-12)


def add_noise(speech: np.ndarray, noise: np.ndarray, snr_db: float, fs: int) -> np.ndarray:
    """Return ``speech + g * noise`` with ``g`` set so that the SNR is exactly ``snr_db``.

    The SNR is the speech's active level (P.56) minus the noise's mean-square level over the
    whole clip, both in dB.
    """
    if noise.shape != speech.shape:
        raise ValueError("noise and speech must have the same shape")
    speech_db = active_speech_level(speech, fs)
    noise_db = rms_level(noise)
    gain = 10.0 ** ((speech_db - snr_db - noise_db) / 20.0)
    return speech + gain * noise


# ---------------------------------------------------------------------------------- coloration
def band_limit(
    x: np.ndarray,
    fs: int,
    highpass_hz: float | None = None,
    lowpass_hz: float | None = None,
    order: int = 4,
) -> np.ndarray:
    """Zero-phase Butterworth high-, low- or band-pass (``sosfiltfilt``); ``None`` = no edge."""
    if highpass_hz is None and lowpass_hz is None:
        return x
    nyquist = fs / 2.0
    for edge in (highpass_hz, lowpass_hz):
        if edge is not None and not 0.0 < edge < nyquist:
            raise ValueError(f"band edge {edge} Hz outside (0, {nyquist}) Hz")
    if highpass_hz is not None and lowpass_hz is not None:
        if highpass_hz >= lowpass_hz:
            raise ValueError(f"highpass {highpass_hz} Hz must be below lowpass {lowpass_hz} Hz")
        sos = butter(order, [highpass_hz, lowpass_hz], btype="bandpass", fs=fs, output="sos")
    elif highpass_hz is not None:
        sos = butter(order, highpass_hz, btype="highpass", fs=fs, output="sos")
    else:
        sos = butter(order, lowpass_hz, btype="lowpass", fs=fs, output="sos")
    return sosfiltfilt(sos, x)


def narrowband(x: np.ndarray, fs: int, rate: int = NARROWBAND_RATE) -> np.ndarray:
    """Telephone-band path: resample to ``rate`` and back (polyphase, anti-aliased)."""
    if fs <= rate:
        raise ValueError(f"narrowband needs a sample rate above {rate} Hz (got {fs})")
    g = math.gcd(fs, rate)
    y = resample_poly(resample_poly(x, rate // g, fs // g), fs // g, rate // g)
    return _fit_length(y, x.size)


def clip_amplitude(x: np.ndarray, threshold: float) -> np.ndarray:
    """Hard-clip at ``threshold`` times the signal's peak magnitude (0 < threshold <= 1)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"clipping threshold must be in (0, 1] (got {threshold})")
    limit = threshold * float(np.max(np.abs(x), initial=0.0))
    return np.clip(x, -limit, limit)


# ------------------------------------------------------------------------------- discontinuity
def _frames_to_hit(n: int, fs: int, rate: float, frame_ms: float, rng: np.random.Generator):
    frame = max(int(round(frame_ms * fs / 1000.0)), 1)
    n_frames = n // frame
    count = int(round(rate * n_frames))
    chosen = rng.choice(n_frames, size=count, replace=False) if count else np.zeros(0, int)
    return frame, np.sort(chosen)


def packet_loss(
    x: np.ndarray, fs: int, rate: float, rng: np.random.Generator, frame_ms: float = 20.0
) -> np.ndarray:
    """Zero ``round(rate * n_frames)`` randomly chosen frames of ``frame_ms`` (no concealment)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"loss rate must be in [0, 1) (got {rate})")
    frame, lost = _frames_to_hit(x.size, fs, rate, frame_ms, rng)
    y = x.copy()
    for k in lost:
        y[k * frame : (k + 1) * frame] = 0.0
    return y


def time_clip(
    x: np.ndarray, fs: int, rate: float, rng: np.random.Generator, frame_ms: float = 20.0
) -> np.ndarray:
    """Remove ``round(rate * n_frames)`` randomly chosen frames; the clip gets shorter."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"time-clipping rate must be in [0, 1) (got {rate})")
    frame, removed = _frames_to_hit(x.size, fs, rate, frame_ms, rng)
    if removed.size == 0:
        return x.copy()
    mask = np.ones(x.size, dtype=bool)
    for k in removed:
        mask[k * frame : (k + 1) * frame] = False
    return x[mask]


# -------------------------------------------------------------------------------------- level
def apply_gain(x: np.ndarray, gain_db: float) -> np.ndarray:
    """Multiply by ``gain_db`` dB."""
    return x * 10.0 ** (gain_db / 20.0)


def full_scale_clip(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Clip to the 16-bit full scale; return the signal and the fraction of clipped samples."""
    over = np.abs(x) > _FULL_SCALE
    fraction = float(np.mean(over)) if x.size else 0.0
    return np.clip(x, -1.0, _FULL_SCALE), fraction


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1) to int16 with rounding and saturation (no wrap-around)."""
    return np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype(np.int16)


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    if y.size >= n:
        return y[:n]
    return np.pad(y, (0, n - y.size))


# -------------------------------------------------------------------------------------- chain
@dataclass(frozen=True)
class DegradationParams:
    """The degradations of one clip; ``None``/0 means that degradation is absent.

    ``level_db`` is the target active level of the speech at the output (dBov); ``None`` keeps the
    nominal level. ``clip_threshold`` is relative to the speech peak.
    """

    noise_type: str | None = None
    snr_db: float | None = None
    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    narrowband: bool = False
    clip_threshold: float | None = None
    packet_loss_rate: float = 0.0
    timeclip_rate: float = 0.0
    level_db: float | None = None

    def __post_init__(self) -> None:
        if (self.noise_type is None) != (self.snr_db is None):
            raise ValueError("noise_type and snr_db must be given together")
        if self.noise_type is not None and self.noise_type not in NOISE_TYPES:
            raise ValueError(f"unknown noise type {self.noise_type!r}; use one of {NOISE_TYPES}")

    @property
    def has_noise(self) -> bool:
        return self.noise_type is not None

    @property
    def has_coloration(self) -> bool:
        return (self.highpass_hz is not None or self.lowpass_hz is not None or self.narrowband
                or self.clip_threshold is not None)

    @property
    def has_discontinuity(self) -> bool:
        return self.packet_loss_rate > 0.0 or self.timeclip_rate > 0.0

    @property
    def has_loudness(self) -> bool:
        return self.level_db is not None

    @property
    def condition_id(self) -> str:
        """``cNN``: bit mask of the degradation families (1 noise, 2 coloration,
        4 discontinuity, 8 loudness); ``c00`` is clean."""
        flags = (self.has_noise, self.has_coloration, self.has_discontinuity, self.has_loudness)
        return f"c{sum(1 << i for i, on in enumerate(flags) if on):02d}"

    @property
    def description(self) -> str:
        """Human-readable condition, e.g. ``"pink noise 12.0 dB + lowpass 3.4 kHz"``."""
        parts = []
        if self.has_noise:
            parts.append(f"{self.noise_type} noise {self.snr_db:.1f} dB")
        if self.narrowband:
            parts.append("narrowband 8 kHz")
        if self.highpass_hz is not None and self.lowpass_hz is not None:
            parts.append(f"bandpass {self.highpass_hz:.0f} Hz-{self.lowpass_hz / 1000:.1f} kHz")
        elif self.highpass_hz is not None:
            parts.append(f"highpass {self.highpass_hz:.0f} Hz")
        elif self.lowpass_hz is not None:
            parts.append(f"lowpass {self.lowpass_hz / 1000:.1f} kHz")
        if self.clip_threshold is not None:
            parts.append(f"clipping at {self.clip_threshold:.2f} of peak")
        if self.packet_loss_rate > 0:
            parts.append(f"packet loss {100 * self.packet_loss_rate:.1f}%")
        if self.timeclip_rate > 0:
            parts.append(f"time clipping {100 * self.timeclip_rate:.1f}%")
        if self.has_loudness:
            parts.append(f"level {self.level_db:.1f} dBov")
        return " + ".join(parts) if parts else "clean"

    def to_dict(self) -> dict:
        return asdict(self)


def apply_degradations(
    speech: np.ndarray,
    fs: int,
    params: DegradationParams,
    rng: np.random.Generator,
    babble_talkers: list[np.ndarray] | None = None,
    frame_ms: float = 20.0,
    filter_order: int = 4,
    nominal_level_db: float = NOMINAL_LEVEL_DB,
) -> tuple[np.ndarray, dict[str, float]]:
    """Degrade ``speech`` (at ``nominal_level_db``) as ``params`` says.

    Order: coloration (narrowband, band limits, clipping; then the speech is set back to the
    nominal level so coloration does not change loudness) -> additive noise at ``snr_db`` relative
    to the coloured speech -> packet loss / time clipping -> gain to ``level_db`` -> clip to full
    scale. Returns the degraded signal (not clipped to length) and measurements:
    ``full_scale_clipped`` (fraction of samples clipped at full scale).
    """
    y = np.asarray(speech, dtype=np.float64)
    if params.has_coloration:
        if params.narrowband:
            y = narrowband(y, fs)
        y = band_limit(y, fs, params.highpass_hz, params.lowpass_hz, order=filter_order)
        if params.clip_threshold is not None:
            y = clip_amplitude(y, params.clip_threshold)
        y = scale_to_level(y, fs, nominal_level_db)
    if params.has_noise:
        if params.noise_type == "white":
            noise = white_noise(y.size, rng)
        elif params.noise_type == "pink":
            noise = pink_noise(y.size, rng)
        else:
            noise = babble_noise(y.size, babble_talkers or [], rng)
        y = add_noise(y, noise, params.snr_db, fs)
    if params.packet_loss_rate > 0:
        y = packet_loss(y, fs, params.packet_loss_rate, rng, frame_ms)
    if params.timeclip_rate > 0:
        y = time_clip(y, fs, params.timeclip_rate, rng, frame_ms)
    if params.has_loudness:
        y = apply_gain(y, params.level_db - nominal_level_db)
    y, clipped = full_scale_clip(y)
    return y, {"full_scale_clipped": clipped}
