"""Generate a simulated, rated speech-quality corpus in the NISQA layout.

THIS IS A SIMULATED CORPUS: clean speech is synthesised with espeak-ng (or taken from a user
folder), degraded with recorded parameters (:mod:`.degradations`) and "rated" by the hand-written
rules of :mod:`.rating_model` plus simulated listener noise. It lets the ALLD pipeline run end to
end without the real NISQA corpus; it is not a substitute for human ratings.

Layout written under ``out_dir`` (read unchanged by the project's NISQA reader)::

    NISQA_corpus_file.csv                      all rows, column ``db`` = subset
    <SUBSET>/<SUBSET>_file.csv                 rows of one subset
    <SUBSET>/deg/c00012_c03.wav                degraded clip (mono PCM_16)
    <SUBSET>/ref/c00012_ref.wav                its clean reference at the nominal level
    simulation_state.json                      config, seed, sizes and their fingerprint
    simulation_progress.jsonl                  one finished clip per line (for resuming)

The CSVs carry :data:`~speechbrain_alld.corpora.columns.NISQA_COLUMNS` in order, then
:data:`SIM_COLUMNS` (``sim_*``: exact degradation parameters, noise-free ratings, speech source).

Clip duration: the natural duration of the utterance (synthesised speech plus a short random
silence before and after), cut to at most ``max_duration`` seconds with a 10 ms fade-out; clips are
not padded unless ``pad_to_max_duration``. Time clipping shortens a degraded clip further.

Determinism: every clip draws from its own generators seeded by ``(seed, subset, index, stream)``,
so a clip's audio and ratings do not depend on the order or the number of workers.

Resuming: each finished clip is appended (flush + fsync) to ``simulation_progress.jsonl`` after its
wav files are in place; an interrupted run picks up the missing clips only, and the CSVs are
written at the end. A run is identified by a fingerprint of (generator version, config, seed,
sizes, clean files). Rerunning a finished run with the same fingerprint does nothing. A different
fingerprint in the same folder raises :class:`SimulationMismatchError` (nothing is deleted)
unless ``overwrite=True``, which deletes the previous run's files and starts again.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speechbrain_alld.corpora.columns import CORPUS_FILE, NISQA_COLUMNS, subset_csv_name
from speechbrain_alld.corpora.prepare import write_json_atomic
from speechbrain_alld.ratings import RATING_KEYS
from speechbrain_alld.simulation import speech as sp
from speechbrain_alld.simulation.degradations import (
    NARROWBAND_EDGE_HZ,
    NOISE_TYPES,
    DegradationParams,
    apply_degradations,
    full_scale_clip,
    scale_to_level,
    to_pcm16,
)
from speechbrain_alld.simulation.rating_model import simulate_votes, true_ratings

logger = logging.getLogger(__name__)

#: Bumped whenever a change alters the generated audio or ratings (invalidates old runs).
GENERATOR_VERSION = 1
STATE_FILE = "simulation_state.json"
PROGRESS_FILE = "simulation_progress.jsonl"
DEFAULT_SIZES: dict[str, int] = {
    "NISQA_TRAIN_SIM": 1200, "NISQA_VAL_SIM": 200, "NISQA_TEST_SIM": 200,
}
_PARAM_FIELDS = tuple(f.name for f in dataclasses.fields(DegradationParams))
#: Extra CSV columns after the NISQA ones.
SIM_COLUMNS: tuple[str, ...] = (
    tuple(f"sim_true_{k}" for k in RATING_KEYS)
    + tuple(f"sim_{name}" for name in _PARAM_FIELDS)
    + ("sim_full_scale_clipped", "sim_duration_s", "sim_pool", "sim_text", "sim_voice",
       "sim_speed", "sim_pitch", "sim_source_file", "sim_seed", "sim_index")
)
CSV_COLUMNS: tuple[str, ...] = NISQA_COLUMNS + SIM_COLUMNS
COLORATION_KINDS: tuple[str, ...] = ("lowpass", "highpass", "bandpass", "narrowband", "clipping")
DISCONTINUITY_KINDS: tuple[str, ...] = ("packet_loss", "timeclipping")
_STREAMS = {"speech": 0, "plan": 1, "render": 2, "votes": 3}
# Seed tags of the per-run (not per-clip) generators.
_FOLDER_ORDER_TAG, _BABBLE_TAG = 1000, 2000


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
        """Raise :class:`SimulationConfigError` naming the first bad field."""
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
        """Build from a mapping (e.g. a YAML section); unknown keys fail."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise SimulationConfigError(f"unknown SimulationConfig fields: {sorted(unknown)}")
        return cls(**values)


@dataclass
class SimulationSummary:
    """What :func:`simulate_corpus` did."""

    root: Path
    corpus_csv: Path
    subset_csvs: dict[str, Path]
    sizes: dict[str, int]
    n_clips: int
    n_generated: int
    n_resumed: int
    seconds: float
    clips_per_min: float | None = None
    fingerprint: str = ""


# ----------------------------------------------------------------------------- per-clip logic
def clip_rng(seed: int, subset: str, index: int, stream: str) -> np.random.Generator:
    """The generator of one clip and one purpose (``speech``, ``plan``, ``render``, ``votes``)."""
    code = int.from_bytes(hashlib.sha1(subset.encode("utf-8")).digest()[:4], "big")
    return np.random.default_rng([seed, code, index, _STREAMS[stream]])


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _choice(rng: np.random.Generator, items: tuple, weights: tuple[float, ...]):
    p = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


def plan_degradations(config: SimulationConfig, rng: np.random.Generator) -> DegradationParams:
    """Draw the degradations of one clip: clean with ``p_clean``, otherwise each family with its
    own probability (at least one). Values are rounded to what the CSV records, so the recorded
    parameters are exactly the ones applied."""
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


class _CleanSource:
    """Clean speech for a clip: espeak-ng sentences, or files of a user folder."""

    def __init__(self, config: SimulationConfig, seed: int, clean_dir: Path | None = None,
                 pool_files: dict[str, list[Path]] | None = None):
        self.config = config
        self.seed = seed
        self.clean_dir = clean_dir
        self.pool_files = pool_files or {}
        self._babble: list[np.ndarray] | None = None

    @property
    def kind(self) -> str:
        return "espeak-ng" if self.clean_dir is None else "user"

    def _fit(self, x: np.ndarray, rng: np.random.Generator, random_crop: bool) -> np.ndarray:
        c = self.config
        return sp.fit_duration(x, c.sample_rate, c.max_duration, rng, random_crop,
                               pad=c.pad_to_max_duration)

    def _synth(self, pool: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        c = self.config
        text = sp.sample_sentence(pool, rng)
        voice = c.voices[int(rng.integers(len(c.voices)))]
        voice += c.variants[int(rng.integers(len(c.variants)))]
        speed = int(rng.integers(int(c.speed_range[0]), int(c.speed_range[1]) + 1))
        pitch = int(rng.integers(int(c.pitch_range[0]), int(c.pitch_range[1]) + 1))
        audio = sp.trim_silence(sp.synthesize(text, voice, speed, pitch, c.sample_rate,
                                              c.espeak_binary))
        lead, tail = (int(rng.uniform(*c.silence_range) * c.sample_rate) for _ in range(2))
        audio = np.concatenate([np.zeros(lead), audio, np.zeros(tail)])
        meta = {"text": text, "voice": voice, "speed": speed, "pitch": pitch, "source_file": ""}
        return audio, meta

    def clean(self, pool: str, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """Clean clip at the nominal active level, and what it is (text/voice or file)."""
        c = self.config
        if self.clean_dir is None:
            audio, meta = self._synth(pool, rng)
            audio = self._fit(audio, rng, random_crop=False)
        else:
            files = self.pool_files[pool]
            order = np.random.default_rng([self.seed, _FOLDER_ORDER_TAG + sp.POOLS.index(pool)])
            order = order.permutation(len(files))
            path = files[int(order[index % len(files)])]
            audio = self._fit(sp.load_clean_file(path, c.sample_rate), rng, random_crop=True)
            meta = {"text": "", "voice": "", "speed": "", "pitch": "",
                    "source_file": path.relative_to(self.clean_dir).as_posix()}
        try:
            audio = scale_to_level(audio, c.sample_rate, c.speech_level_db)
        except ValueError as err:
            raise SimulationError(f"silent clean speech ({meta}): {err}") from err
        return audio, meta

    def babble_talkers(self) -> list[np.ndarray]:
        """Talker signals for babble noise (built once per process, from the seed only):
        sentences of the ``babble`` pool, or files of the user folder."""
        if self._babble is None:
            c = self.config
            rng = np.random.default_rng([self.seed, _BABBLE_TAG])
            if self.clean_dir is None:
                talkers = [self._synth("babble", rng)[0] for _ in range(c.babble_bank_size)]
            else:
                files = sorted(f for fs in self.pool_files.values() for f in fs)
                picks = rng.choice(len(files), size=min(c.babble_bank_size, len(files)),
                                   replace=False)
                talkers = [self._fit(sp.load_clean_file(files[int(k)], c.sample_rate), rng, True)
                           for k in picks]
            self._babble = [t for t in talkers if np.any(t)]
        return self._babble


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _flag(on: bool) -> str:
    return "1" if on else "0"


def _write_wav(path: Path, audio: np.ndarray, fs: int) -> None:
    tmp = path.with_name(path.name + ".part")
    sf.write(str(tmp), to_pcm16(audio), fs, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def _param_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _flag(value)
    return str(value)


def params_from_row(row: Mapping[str, str]) -> DegradationParams:
    """The :class:`DegradationParams` recorded in a CSV row's ``sim_*`` columns."""
    kw: dict = {}
    for name in _PARAM_FIELDS:
        cell = row.get(f"sim_{name}", "")
        if cell == "":
            continue
        if name == "noise_type":
            kw[name] = cell
        elif name == "narrowband":
            kw[name] = cell == "1"
        else:
            kw[name] = float(cell)
    return DegradationParams(**kw)


def render_clip(
    config: SimulationConfig, source: _CleanSource, seed: int, root: Path, subset: str, index: int
) -> dict[str, str]:
    """Make one clip: write its reference and degraded wav files, return its CSV row."""
    c = config
    fs = c.sample_rate
    pool = sp.pool_for_subset(subset)
    clean, meta = source.clean(pool, index, clip_rng(seed, subset, index, "speech"))
    params = plan_degradations(c, clip_rng(seed, subset, index, "plan"))
    babble = source.babble_talkers() if params.noise_type == "babble" else None
    deg, measured = apply_degradations(
        clean, fs, params, clip_rng(seed, subset, index, "render"), babble_talkers=babble,
        frame_ms=c.frame_ms, filter_order=c.filter_order, nominal_level_db=c.speech_level_db,
    )
    clipped = measured["full_scale_clipped"]
    true = true_ratings(params, clipped, nominal_level_db=c.speech_level_db)
    rated = simulate_votes(true, c.votes, clip_rng(seed, subset, index, "votes"), c.vote_sigma,
                           c.listener_bias_sigma)

    con = params.condition_id
    name_deg, name_ref = f"c{index:05d}_{con}.wav", f"c{index:05d}_ref.wav"
    for folder, name, audio in (("deg", name_deg, deg), ("ref", name_ref, clean)):
        (root / subset / folder).mkdir(parents=True, exist_ok=True)
        _write_wav(root / subset / folder / name, full_scale_clip(audio)[0], fs)

    band_high = [f for f in (params.lowpass_hz, NARROWBAND_EDGE_HZ if params.narrowband else None)
                 if f]
    row = {col: "" for col in CSV_COLUMNS}
    row.update(
        db=subset, con=con, file=f"{subset}_c{index:05d}", con_description=params.description,
        filename_deg=name_deg, filename_ref=name_ref, source=source.kind, lang=c.lang,
        votes=str(c.votes), filepath_deg=f"{subset}/deg/{name_deg}",
        filepath_ref=f"{subset}/ref/{name_ref}",
        filter=_flag(params.highpass_hz is not None or bool(band_high)),
        timeclipping=_flag(params.timeclip_rate > 0), bgn=_flag(params.has_noise),
        clipping=_flag(params.clip_threshold is not None), asl_in="1",
        asl_out=_flag(params.has_loudness), bgn_snr=_param_cell(params.snr_db),
        tc_fer=_param_cell(params.timeclip_rate or None),
        cl_th=_param_cell(params.clip_threshold), bp_low=_param_cell(params.highpass_hz),
        bp_high=_param_cell(min(band_high) if band_high else None),
        FER1=_param_cell(params.packet_loss_rate or None),
        asl_in_level=_param_cell(c.speech_level_db),
        asl_out_level=_param_cell(params.level_db if params.has_loudness else c.speech_level_db),
    )
    for key, (mean, std) in rated.items():
        row[key], row[f"{key}_std"] = _fmt(mean), _fmt(std)
        row[f"sim_true_{key}"] = _fmt(true[key])
    for name, value in params.to_dict().items():
        row[f"sim_{name}"] = _param_cell(value)
    row.update(
        sim_full_scale_clipped=_fmt(clipped, 6), sim_duration_s=_fmt(deg.size / fs),
        sim_pool=pool, sim_text=meta["text"], sim_voice=meta["voice"],
        sim_speed=str(meta["speed"]), sim_pitch=str(meta["pitch"]),
        sim_source_file=meta["source_file"], sim_seed=str(seed), sim_index=str(index),
    )
    return row


# ------------------------------------------------------------------------------ workers
_WORKER: dict = {}


def _init_worker(config: SimulationConfig, seed: int, root: Path, clean_dir: Path | None,
                 pool_files: dict[str, list[Path]] | None) -> None:
    _WORKER.update(config=config, seed=seed, root=root,
                   source=_CleanSource(config, seed, clean_dir, pool_files))


def _work(task: tuple[str, int]) -> tuple[str, int, dict[str, str]]:
    subset, index = task
    row = render_clip(_WORKER["config"], _WORKER["source"], _WORKER["seed"], _WORKER["root"],
                      subset, index)
    return subset, index, row


def _run_tasks(tasks: list[tuple[str, int]], num_workers: int, init_args: tuple
               ) -> Iterator[tuple[str, int, dict[str, str]]]:
    if num_workers <= 1 or len(tasks) <= 1:
        _init_worker(*init_args)
        for task in tasks:
            yield _work(task)
        return
    # forkserver (or spawn): forking a parent that runs threads (torch, tqdm) can deadlock
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
    else:
        ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(num_workers, initializer=_init_worker, initargs=init_args) as pool:
        yield from pool.imap_unordered(_work, tasks, chunksize=2)


# ------------------------------------------------------------------------------ bookkeeping
def _check_sizes(sizes: Mapping[str, int]) -> dict[str, int]:
    if not sizes:
        raise SimulationConfigError("sizes is empty: give at least one subset, e.g. "
                                    "{'NISQA_TRAIN_SIM': 200}")
    out = {}
    for subset, n in sizes.items():
        if not subset or not all(ch.isalnum() or ch in "_-" for ch in subset):
            raise SimulationConfigError(f"subset name {subset!r}: use letters, digits, _ and -")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SimulationConfigError(f"size of {subset} must be an integer >= 1 (got {n!r})")
        out[str(subset)] = int(n)
    return out


def _fingerprint(config: SimulationConfig, seed: int, sizes: dict[str, int],
                 clean: list[dict] | None) -> str:
    payload = {"version": GENERATOR_VERSION, "config": asdict(config), "seed": seed,
               "sizes": sizes, "clean": clean}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _read_progress(root: Path, sizes: dict[str, int]) -> dict[tuple[str, int], dict[str, str]]:
    """Finished clips whose files still exist; rewrites the log without torn or stale lines."""
    path = root / PROGRESS_FILE
    done: dict[tuple[str, int], dict[str, str]] = {}
    if not path.exists():
        return done
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for line in lines:
        try:
            record = json.loads(line)
            key, row = (record["subset"], int(record["index"])), record["row"]
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by an interruption
        if key[0] in sizes and key[1] < sizes[key[0]] and all(
            (root / row[col]).is_file() for col in ("filepath_deg", "filepath_ref")
        ):
            done[key] = row
    if len(done) != len(lines) or (lines and not lines[-1].endswith("\n")):
        _atomic_write_text(path, "".join(
            json.dumps({"subset": s, "index": i, "row": r}) + "\n" for (s, i), r in done.items()))
    return done


def _prepare_folder(root: Path, fingerprint: str, state: dict, overwrite: bool) -> None:
    state_path = root / STATE_FILE
    if state_path.exists():
        old = json.loads(state_path.read_text(encoding="utf-8"))
        if old.get("fingerprint") == fingerprint:
            return
        if not overwrite:
            raise SimulationMismatchError(
                f"{root} holds a simulated corpus made with another config, seed, sizes or clean "
                f"files (fingerprint {old.get('fingerprint')} != {fingerprint}). Use another "
                "out_dir, or overwrite=True to delete that run and start again."
            )
        for subset in old.get("sizes", {}):
            shutil.rmtree(root / subset, ignore_errors=True)
        for name in (CORPUS_FILE, PROGRESS_FILE, STATE_FILE):
            (root / name).unlink(missing_ok=True)
    else:
        clashes = [p.name for p in [root / CORPUS_FILE] + [root / s for s in state["sizes"]]
                   if p.exists()]
        if clashes:
            raise SimulationError(
                f"{root} already holds {clashes} but no {STATE_FILE}: it is not a simulation "
                "output folder (a real NISQA copy?). Choose an empty out_dir."
            )
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(state_path, state)


def simulate_corpus(
    out_dir: str | Path,
    sizes: Mapping[str, int] | None = None,
    seed: int = 0,
    config: SimulationConfig | None = None,
    clean_dir: str | Path | None = None,
    num_workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    on_clip: Callable[[dict[str, str]], None] | None = None,
) -> SimulationSummary:
    """Generate (or finish, or leave alone) a simulated NISQA-layout corpus in ``out_dir``.

    ``sizes`` maps subset names to clip counts (default :data:`DEFAULT_SIZES`); subsets whose name
    contains TEST / VAL (or DEV) draw speech from the test / validation sentence pool, others
    from the training pool. ``clean_dir`` replaces espeak-ng by a folder of clean recordings.
    ``on_clip`` is called with each finished row (after it is saved for resuming). Prints the
    throughput in clips/min when ``progress``. See the module docstring for layout and resuming.
    """
    t0 = time.perf_counter()
    config = config or SimulationConfig()
    config.validate()
    sizes = _check_sizes(DEFAULT_SIZES if sizes is None else sizes)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SimulationConfigError(f"seed must be an integer >= 0 (got {seed!r})")
    root = Path(out_dir)
    pools = tuple(dict.fromkeys(sp.pool_for_subset(s) for s in sizes))

    pool_files: dict[str, list[Path]] | None = None
    clean_info: list[dict] | None = None
    clean_path = None
    if clean_dir is not None:
        clean_path = Path(clean_dir).resolve()
        try:
            files = sp.list_audio_files(clean_path)
        except sp.SpeechSourceError as err:
            raise SimulationError(str(err)) from err
        pool_files = sp.split_files(files, clean_path, pools)
        empty = [p for p in pools if not pool_files[p]]
        if empty:
            raise SimulationError(
                f"clean_dir {clean_path} has {len(files)} file(s): too few to give the "
                f"{'/'.join(empty)} pool(s) their own speech; add files or drop those subsets"
            )
        clean_info = [{"file": f.relative_to(clean_path).as_posix(), "bytes": f.stat().st_size}
                      for f in files]

    fingerprint = _fingerprint(config, seed, sizes, clean_info)
    state = {"fingerprint": fingerprint, "generator_version": GENERATOR_VERSION, "seed": seed,
             "sizes": sizes, "clean_dir": clean_path and str(clean_path), "config": asdict(config),
             "complete": False, "note": "simulated corpus: ratings are not human judgements"}
    _prepare_folder(root, fingerprint, state, overwrite)

    done = _read_progress(root, sizes)
    todo = [(s, i) for s, n in sizes.items() for i in range(n) if (s, i) not in done]
    n_resumed = len(done)
    csv_paths = {s: root / s / subset_csv_name(s) for s in sizes}
    corpus_csv = root / CORPUS_FILE
    summary = SimulationSummary(
        root=root, corpus_csv=corpus_csv, subset_csvs=csv_paths, sizes=sizes,
        n_clips=sum(sizes.values()), n_generated=0, n_resumed=n_resumed, seconds=0.0,
        fingerprint=fingerprint,
    )
    previous = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
    outputs = [corpus_csv, *csv_paths.values()]
    if not todo and previous.get("complete") and all(p.exists() for p in outputs):
        summary.seconds = time.perf_counter() - t0
        if progress:
            print(f"Simulated corpus already complete: {root} ({summary.n_clips} clips)")
        return summary
    if todo and clean_path is None:
        try:
            sp.check_espeak(config.espeak_binary)
        except sp.SpeechSourceError as err:
            raise SimulationError(str(err)) from err

    t_gen = time.perf_counter()
    if todo:
        bar = tqdm(total=summary.n_clips, initial=n_resumed, disable=not progress,
                   desc="simulating clips", unit="clip")
        init_args = (config, seed, root, clean_path, pool_files)
        with open(root / PROGRESS_FILE, "a", encoding="utf-8") as log, bar:
            for subset, index, row in _run_tasks(todo, num_workers, init_args):
                log.write(json.dumps({"subset": subset, "index": index, "row": row}) + "\n")
                log.flush()
                os.fsync(log.fileno())
                done[(subset, index)] = row
                summary.n_generated += 1
                bar.update(1)
                if on_clip is not None:
                    on_clip(row)
    gen_seconds = time.perf_counter() - t_gen

    all_rows = []
    for subset, n in sizes.items():
        rows = [done[(subset, i)] for i in range(n)]
        _write_csv(csv_paths[subset], rows)
        all_rows.extend(rows)
    _write_csv(corpus_csv, all_rows)
    state["complete"] = True
    write_json_atomic(root / STATE_FILE, state)

    summary.seconds = time.perf_counter() - t0
    if summary.n_generated:
        summary.clips_per_min = 60.0 * summary.n_generated / max(gen_seconds, 1e-9)
    if progress:
        rate = f"{summary.clips_per_min:.0f} clips/min" if summary.clips_per_min else "no new clips"
        print(f"Simulated corpus at {root}: {summary.n_clips} clips ({summary.n_generated} new, "
              f"{n_resumed} resumed) in {summary.seconds:.1f} s; generation speed {rate} "
              f"at {config.sample_rate} Hz with {max(num_workers, 1)} worker(s)")
    logger.info("simulated corpus %s: %d clips, %s clips/min", root, summary.n_clips,
                summary.clips_per_min)
    return summary
