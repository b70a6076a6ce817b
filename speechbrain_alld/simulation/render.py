"""Rendering one clip: clean speech plus its planned degradations, rated, written as wav files.

:func:`render_clip` writes a clip's degraded and reference wav files (mono PCM_16, each through
:func:`~speechbrain_alld.durable.atomic_output`) and returns its CSV row;
:func:`params_from_row` reads the recorded degradation parameters back from such a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_alld.durable import atomic_output
from speechbrain_alld.simulation import speech as sp
from speechbrain_alld.simulation.config import CSV_COLUMNS, PARAM_FIELDS, SimulationConfig
from speechbrain_alld.simulation.degradations import (
    NARROWBAND_EDGE_HZ,
    DegradationParams,
    apply_degradations,
    full_scale_clip,
    to_pcm16,
)
from speechbrain_alld.simulation.plan import clip_rng, plan_degradations
from speechbrain_alld.simulation.rating_model import simulate_votes, true_ratings
from speechbrain_alld.simulation.source import CleanSource


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _flag(on: bool) -> str:
    return "1" if on else "0"


def _param_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _flag(value)
    return str(value)


def _write_wav(path: Path, audio: np.ndarray, fs: int) -> None:
    with atomic_output(path) as tmp:
        sf.write(str(tmp), to_pcm16(audio), fs, subtype="PCM_16", format="WAV")


def params_from_row(row: Mapping[str, str]) -> DegradationParams:
    """The degradation parameters recorded in a CSV row's ``sim_*`` columns.

    Arguments
    ---------
    row : Mapping
        A row of a simulated corpus CSV (column name to cell text).

    Returns
    -------
    The :class:`~speechbrain_alld.simulation.degradations.DegradationParams` the clip was made
    with.

    Example
    -------
    >>> params_from_row({"sim_noise_type": "pink", "sim_snr_db": "12.5", "sim_narrowband": "0"})
    DegradationParams(noise_type='pink', snr_db=12.5, highpass_hz=None, lowpass_hz=None, \
narrowband=False, clip_threshold=None, packet_loss_rate=0.0, timeclip_rate=0.0, level_db=None)
    """
    kw: dict = {}
    for name in PARAM_FIELDS:
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
    config: SimulationConfig, source: CleanSource, seed: int, root: Path, subset: str, index: int
) -> dict[str, str]:
    """Make one clip: write its reference and degraded wav files, return its CSV row.

    Arguments
    ---------
    config : SimulationConfig
        The run's settings.
    source : CleanSource
        Where the clean speech (and the babble talkers) come from.
    seed : int
        The run's seed.
    root : Path
        The corpus folder; the files go to ``<subset>/deg/`` and ``<subset>/ref/`` under it.
    subset : str
        The clip's subset.
    index : int
        The clip's index in its subset.

    Returns
    -------
    The clip's row: every column of :data:`~speechbrain_alld.simulation.config.CSV_COLUMNS`, as
    text.
    """
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
