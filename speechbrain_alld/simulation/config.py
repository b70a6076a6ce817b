"""Settings of the simulated corpus: :class:`SimulationConfig`, its errors and the file layout.

Everything here is data: the knobs of the simulation (validated by
:meth:`SimulationConfig.validate`), the names of the bookkeeping files, the default subset sizes
and the CSV columns. The other modules of the package read them; none of them is read from disk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from speechbrain_alld.corpora.columns import NISQA_COLUMNS
from speechbrain_alld.ratings import RATING_KEYS
from speechbrain_alld.simulation.degradations import NOISE_TYPES, DegradationParams

#: Bumped whenever a change alters the generated audio or ratings (invalidates old runs).
GENERATOR_VERSION = 1
STATE_FILE = "simulation_state.json"
PROGRESS_FILE = "simulation_progress.jsonl"
DEFAULT_SIZES: dict[str, int] = {
    "NISQA_TRAIN_SIM": 1200, "NISQA_VAL_SIM": 200, "NISQA_TEST_SIM": 200,
}
#: Fields of :class:`DegradationParams`, each recorded in a ``sim_<field>`` column.
PARAM_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(DegradationParams))
#: Extra CSV columns after the NISQA ones.
SIM_COLUMNS: tuple[str, ...] = (
    tuple(f"sim_true_{k}" for k in RATING_KEYS)
    + tuple(f"sim_{name}" for name in PARAM_FIELDS)
    + ("sim_full_scale_clipped", "sim_duration_s", "sim_pool", "sim_text", "sim_voice",
       "sim_speed", "sim_pitch", "sim_source_file", "sim_seed", "sim_index")
)
CSV_COLUMNS: tuple[str, ...] = NISQA_COLUMNS + SIM_COLUMNS
COLORATION_KINDS: tuple[str, ...] = ("lowpass", "highpass", "bandpass", "narrowband", "clipping")
DISCONTINUITY_KINDS: tuple[str, ...] = ("packet_loss", "timeclipping")


class SimulationError(RuntimeError):
    """The simulation cannot run (bad arguments, unusable output folder, missing tools)."""


class SimulationConfigError(SimulationError, ValueError):
    """A :class:`SimulationConfig` field or a size is invalid."""


class SimulationMismatchError(SimulationError):
    """``out_dir`` holds a run made with another config, seed, sizes or clean files."""


@dataclass
class SimulationConfig:
    """Every knob of the simulated corpus. Ranges are ``(low, high)``; frequency, clipping-threshold
    ranges are sampled log-uniformly, the others uniformly. Probabilities are per clip."""

    sample_rate: int = 16000
    max_duration: float = 4.0
    pad_to_max_duration: bool = False
    #: Silence added before and after synthesised speech (s).
    silence_range: tuple[float, float] = (0.05, 0.3)
    #: Active speech level of the clean reference and nominal level of the rating model (dBov).
    speech_level_db: float = -26.0
    lang: str = "en"
    # -- espeak-ng
    espeak_binary: str = "espeak-ng"
    voices: tuple[str, ...] = (
        "en-us", "en-gb", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-us-nyc",
    )
    variants: tuple[str, ...] = ("", "+m1", "+m3", "+m5", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5")
    speed_range: tuple[int, int] = (150, 195)
    pitch_range: tuple[int, int] = (25, 75)
    # -- which degradations
    p_clean: float = 0.1
    p_noise: float = 0.5
    p_coloration: float = 0.45
    p_discontinuity: float = 0.35
    p_loudness: float = 0.3
    # -- noise
    noise_types: tuple[str, ...] = NOISE_TYPES
    noise_type_weights: tuple[float, ...] = (1.0, 1.0, 1.0)
    snr_range: tuple[float, float] = (0.0, 40.0)
    babble_talkers: int = 6
    babble_bank_size: int = 24
    # -- coloration
    coloration_kinds: tuple[str, ...] = COLORATION_KINDS
    coloration_weights: tuple[float, ...] = (3.0, 1.5, 1.5, 2.0, 2.0)
    #: Chance that a filter (not clipping) is followed by amplitude clipping too.
    p_extra_clipping: float = 0.15
    lowpass_range: tuple[float, float] = (800.0, 7000.0)
    highpass_range: tuple[float, float] = (100.0, 1500.0)
    clip_threshold_range: tuple[float, float] = (0.02, 0.5)
    filter_order: int = 4
    # -- discontinuity
    packet_loss_range: tuple[float, float] = (0.01, 0.3)
    timeclip_range: tuple[float, float] = (0.01, 0.2)
    p_both_discontinuities: float = 0.2
    frame_ms: float = 20.0
    # -- loudness (target speech level at the output, dBov)
    quiet_level_range: tuple[float, float] = (-56.0, -32.0)
    loud_level_range: tuple[float, float] = (-20.0, -4.0)
    p_quiet: float = 0.6
    # -- listeners
    votes: int = 5
    vote_sigma: float = 0.6
    listener_bias_sigma: float = 0.3

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # YAML gives lists where the defaults are tuples
            if isinstance(getattr(self, f.name), list):
                setattr(self, f.name, tuple(getattr(self, f.name)))

    def validate(self) -> None:
        """Raise :class:`SimulationConfigError` naming the first bad field.

        Example
        -------
        >>> SimulationConfig().validate()
        >>> try:
        ...     SimulationConfig(p_noise=1.5).validate()
        ... except SimulationConfigError as err:
        ...     print(err)
        SimulationConfig.p_noise: must be a probability in [0, 1] (got 1.5)
        """
        def fail(name: str, why: str) -> None:
            value = getattr(self, name)
            raise SimulationConfigError(f"SimulationConfig.{name}: {why} (got {value!r})")

        if not isinstance(self.sample_rate, int) or self.sample_rate < 16000:
            fail("sample_rate", "must be an integer >= 16000 Hz")
        if not self.max_duration > 0:
            fail("max_duration", "must be > 0 seconds")
        for f in dataclasses.fields(self):
            if f.name.endswith("_range"):
                value = getattr(self, f.name)
                if len(value) != 2 or not all(isinstance(v, (int, float)) for v in value):
                    fail(f.name, "must be a (low, high) pair of numbers")
                if value[0] > value[1]:
                    fail(f.name, "is reversed: give (low, high) with low <= high")
            if f.name.startswith("p_") and not 0.0 <= getattr(self, f.name) <= 1.0:
                fail(f.name, "must be a probability in [0, 1]")
        if self.silence_range[0] < 0:
            fail("silence_range", "must be >= 0")
        nyquist = self.sample_rate / 2
        for name in ("lowpass_range", "highpass_range"):
            lo, hi = getattr(self, name)
            if lo <= 0 or hi >= nyquist:
                fail(name, f"cutoffs must lie in (0, {nyquist:g}) Hz at this sample rate")
        if "bandpass" in self.coloration_kinds and self.highpass_range[1] >= self.lowpass_range[1]:
            fail("highpass_range", "must stay below lowpass_range for band-pass filters")
        lo, hi = self.clip_threshold_range
        if lo <= 0 or hi > 1:
            fail("clip_threshold_range", "thresholds must lie in (0, 1] (fraction of the peak)")
        for name in ("packet_loss_range", "timeclip_range"):
            lo, hi = getattr(self, name)
            if lo < 0 or hi >= 1:
                fail(name, "rates must lie in [0, 1)")
        if self.speed_range[0] < 80 or self.speed_range[1] > 450:
            fail("speed_range", "espeak-ng speeds lie in [80, 450] words per minute")
        if self.pitch_range[0] < 0 or self.pitch_range[1] > 99:
            fail("pitch_range", "espeak-ng pitches lie in [0, 99]")
        if not self.voices:
            fail("voices", "needs at least one espeak-ng voice")
        if not self.variants:
            fail("variants", "needs at least one entry ('' = the voice's default)")
        for kinds, weights, known in (
            ("noise_types", "noise_type_weights", NOISE_TYPES),
            ("coloration_kinds", "coloration_weights", COLORATION_KINDS),
        ):
            unknown = set(getattr(self, kinds)) - set(known)
            if not getattr(self, kinds) or unknown:
                fail(kinds, f"must be a non-empty subset of {known}")
            w = getattr(self, weights)
            if len(w) != len(getattr(self, kinds)) or min(w) < 0 or sum(w) <= 0:
                fail(weights, f"needs one non-negative weight per entry of {kinds}, not all 0")
        if not isinstance(self.votes, int) or self.votes < 1:
            fail("votes", "must be an integer >= 1")
        if self.vote_sigma < 0 or self.listener_bias_sigma < 0:
            fail("vote_sigma", "vote_sigma and listener_bias_sigma must be >= 0")
        if self.babble_talkers < 1 or self.babble_bank_size < 1:
            fail("babble_talkers", "babble_talkers and babble_bank_size must be >= 1")
        if self.frame_ms <= 0 or self.filter_order < 1:
            fail("frame_ms", "frame_ms must be > 0 and filter_order >= 1")

    @classmethod
    def from_dict(cls, values: Mapping) -> SimulationConfig:
        """Build from a mapping (e.g. a YAML section); unknown keys fail.

        Arguments
        ---------
        values : Mapping
            Field names and values; lists are turned into tuples.

        Returns
        -------
        The :class:`SimulationConfig` (not validated yet).

        Example
        -------
        >>> SimulationConfig.from_dict({"snr_range": [5, 10]}).snr_range
        (5, 10)
        """
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise SimulationConfigError(f"unknown SimulationConfig fields: {sorted(unknown)}")
        return cls(**values)
