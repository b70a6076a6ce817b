"""Simulated NISQA-layout corpus: layout, determinism, rating model, audio, resume, errors.

Tests that synthesise speech need espeak-ng; they fail (never skip) when it is missing.
"""

import csv
import dataclasses
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbrain_alld.corpora.columns import CORPUS_FILE, NISQA_COLUMNS, subset_csv_name
from speechbrain_alld.simulation import (
    CSV_COLUMNS,
    SIM_COLUMNS,
    DegradationParams,
    SimulationConfig,
    SimulationConfigError,
    SimulationError,
    SimulationMismatchError,
    active_speech_level,
    apply_degradations,
    params_from_row,
    simulate_corpus,
    simulate_votes,
    true_ratings,
)
from speechbrain_alld.simulation import speech as sp
from speechbrain_alld.simulation.corpus import PROGRESS_FILE
from speechbrain_alld.simulation.degradations import rms_level, scale_to_level

REPO = Path(__file__).resolve().parents[1]
SIZES = {"NISQA_TRAIN_SIM": 16, "NISQA_VAL_SIM": 4, "NISQA_TEST_SIM": 6}
FS = 16000


@pytest.fixture(scope="module")
def espeak():
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: `apt-get install espeak-ng` (CI installs it)")


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def wav_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


@pytest.fixture(scope="module")
def corpus(espeak, tmp_path_factory):
    root = tmp_path_factory.mktemp("sim") / "corpus"
    summary = simulate_corpus(root, SIZES, seed=0, progress=False)
    return root, summary


@pytest.fixture(scope="module")
def clean_speech(espeak):
    x = sp.synthesize("The careful baker carried the wooden ladder to the market.",
                      "en-us", 170, 50, FS)
    x = np.concatenate([np.zeros(3200), sp.trim_silence(x), np.zeros(3200)])
    return scale_to_level(x, FS, -26.0)


# ---------------------------------------------------------------------------------- layout
def test_layout_columns_and_files(corpus):
    root, summary = corpus
    assert summary.n_clips == summary.n_generated == sum(SIZES.values())
    all_rows = read_rows(root / CORPUS_FILE)
    with open(root / CORPUS_FILE, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    assert header == list(NISQA_COLUMNS) + list(SIM_COLUMNS)
    assert all(c.startswith("sim_") for c in SIM_COLUMNS)
    concatenated = []
    for subset, n in SIZES.items():
        rows = read_rows(root / subset / subset_csv_name(subset))
        assert len(rows) == n and {r["db"] for r in rows} == {subset}
        concatenated.extend(rows)
        for i, row in enumerate(rows):
            assert row["filepath_deg"] == f"{subset}/deg/{row['filename_deg']}"
            assert row["filepath_ref"] == f"{subset}/ref/{row['filename_ref']}"
            assert row["filename_deg"].startswith(f"c{i:05d}_")
            for col in ("filepath_deg", "filepath_ref"):
                info = sf.info(str(root / row[col]))
                assert (info.samplerate, info.channels, info.subtype) == (FS, 1, "PCM_16")
                assert info.duration <= 4.0 + 1e-9
            assert row["source"] == "espeak-ng" and row["lang"] == "en" and row["votes"] == "5"
            params = params_from_row(row)
            assert re.fullmatch(r"c\d\d", row["con"]) and row["con"] == params.condition_id
            assert row["con_description"] == params.description
            assert row["bgn"] == ("1" if params.has_noise else "0")
            assert row["bgn_snr"] == row["sim_snr_db"]
            assert row["clipping"] == ("1" if params.clip_threshold is not None else "0")
            assert row["timeclipping"] == ("1" if params.timeclip_rate > 0 else "0")
            lossy = params.packet_loss_rate > 0
            assert row["FER1"] == (row["sim_packet_loss_rate"] if lossy else "")
            assert row["sim_pool"] == sp.pool_for_subset(subset)
            assert sp.sentence_pool(row["sim_text"]) == row["sim_pool"]
            for key in ("mos", "noi", "col", "dis", "loud", "mos_std", "sim_true_mos"):
                assert re.fullmatch(r"\d\.\d{4}", row[key]), (key, row[key])
    assert concatenated == all_rows
    assert not list(root.rglob(".*"))  # no temporary file is left behind
    # several degradation families and some variety of voices actually occur
    assert len({r["con"] for r in all_rows}) >= 5
    assert len({r["sim_voice"] for r in all_rows}) >= 5
    assert len({r["sim_text"] for r in all_rows}) == len(all_rows)


def test_sentence_pools_are_disjoint_and_large():
    rng = np.random.default_rng(0)
    train = {sp.sample_sentence("train", rng) for _ in range(3000)}
    test = {sp.sample_sentence("test", rng) for _ in range(500)}
    assert len(train) > 2800 and len(test) > 450
    assert not train & test
    assert {sp.sentence_pool(s) for s in test} == {"test"}
    assert [sp.pool_for_subset(s) for s in ("NISQA_TRAIN_SIM", "NISQA_VAL_SIM", "X_TEST_Y")] == [
        "train", "val", "test"]


def test_votes_and_stds_are_consistent(corpus):
    root, _ = corpus
    for row in read_rows(root / CORPUS_FILE):
        for key in ("mos", "noi", "col", "dis", "loud"):
            mean, std = float(row[key]), float(row[f"{key}_std"])
            true = float(row[f"sim_true_{key}"])
            assert 1.0 <= mean <= 5.0 and 1.0 <= true <= 5.0
            assert 0.0 <= std <= 2.2
            assert abs(mean * 5 - round(mean * 5)) < 1e-3  # mean of 5 integer votes
            assert abs(mean - true) < 2.5


def test_simulate_votes_statistics():
    true = {"mos": 3.0, "noi": 1.0, "col": 4.4, "dis": 5.0, "loud": 2.2}
    exact = simulate_votes(true, 7, np.random.default_rng(0), sigma=0.0, bias_sigma=0.0)
    assert exact == {"mos": (3.0, 0.0), "noi": (1.0, 0.0), "col": (4.0, 0.0), "dis": (5.0, 0.0),
                     "loud": (2.0, 0.0)}
    many = simulate_votes(true, 4000, np.random.default_rng(1), sigma=0.6, bias_sigma=0.3)
    assert abs(many["mos"][0] - 3.0) < 0.1 and 0.5 < many["mos"][1] < 0.9
    assert simulate_votes(true, 1, np.random.default_rng(2))["mos"][1] == 0.0
    with pytest.raises(ValueError):
        simulate_votes(true, 0, np.random.default_rng(0))


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_corpus_other_seed_differs(corpus, tmp_path):
    root, _ = corpus
    again = tmp_path / "again"
    simulate_corpus(again, SIZES, seed=0, progress=False, num_workers=2)
    for name in [CORPUS_FILE] + [f"{s}/{subset_csv_name(s)}" for s in SIZES]:
        assert (again / name).read_bytes() == (root / name).read_bytes()
    assert wav_bytes(again) == wav_bytes(root)

    other = tmp_path / "other"
    simulate_corpus(other, {"NISQA_TRAIN_SIM": 4}, seed=1, progress=False)
    base = read_rows(root / CORPUS_FILE)[:4]
    changed = read_rows(other / CORPUS_FILE)
    assert [r["sim_text"] for r in changed] != [r["sim_text"] for r in base]
    assert [r["mos"] for r in changed] != [r["mos"] for r in base]
    first = "NISQA_TRAIN_SIM/ref/c00000_ref.wav"
    assert (other / first).read_bytes() != (root / first).read_bytes()


def test_clip_does_not_depend_on_subset_size(corpus, tmp_path):
    root, _ = corpus
    small = tmp_path / "small"
    simulate_corpus(small, {"NISQA_TEST_SIM": 2}, seed=0, progress=False)
    rows = read_rows(small / CORPUS_FILE)
    assert rows == read_rows(root / CORPUS_FILE)[-6:-4]


# ---------------------------------------------------------------------------- rating model
def _strictly_increasing(values):
    return all(b > a for a, b in zip(values, values[1:]))


def test_clean_ratings_are_high():
    clean = true_ratings(DegradationParams())
    assert all(4.5 <= v <= 4.8 for v in clean.values()), clean


@pytest.mark.parametrize(
    "dimension, make",
    [
        ("noi", lambda v: DegradationParams(noise_type="pink", snr_db=v)),
        ("noi", lambda v: DegradationParams(noise_type="babble", snr_db=v)),
        ("col", lambda v: DegradationParams(lowpass_hz=v * 200)),
        ("col", lambda v: DegradationParams(highpass_hz=1600 - v * 40)),
        ("col", lambda v: DegradationParams(clip_threshold=v / 50)),
        ("dis", lambda v: DegradationParams(packet_loss_rate=0.3 * ((40 - v) / 39) ** 2)),
        ("dis", lambda v: DegradationParams(timeclip_rate=0.3 * ((40 - v) / 39) ** 2)),
        ("loud", lambda v: DegradationParams(level_db=-66 + v)),  # too quiet, rising to nominal
        ("loud", lambda v: DegradationParams(level_db=14 - v)),  # too loud, falling to nominal
    ],
)
def test_each_degradation_moves_its_own_dimension(dimension, make):
    grid = [1, 5, 10, 15, 20, 25, 30, 38]  # quality improves along the grid
    ratings = [true_ratings(make(v)) for v in grid]
    assert _strictly_increasing([r[dimension] for r in ratings])
    assert _strictly_increasing([r["mos"] for r in ratings])
    assert ratings[0][dimension] < 2.0 < 4.0 < ratings[-1][dimension]
    clean = true_ratings(DegradationParams())
    for other in ("noi", "col", "dis", "loud"):
        if other != dimension:
            assert all(r[other] == clean[other] for r in ratings)


def test_coloration_and_loudness_specifics():
    clean = true_ratings(DegradationParams())
    nb = true_ratings(DegradationParams(narrowband=True))
    assert clean["col"] > nb["col"] > true_ratings(DegradationParams(lowpass_hz=1500))["col"]
    assert nb["mos"] < clean["mos"]
    unclipped = true_ratings(DegradationParams(level_db=-16.0))
    clipped = true_ratings(DegradationParams(level_db=-16.0), full_scale_clipped=0.02)
    assert clipped["loud"] < unclipped["loud"] - 1.0 and clipped["mos"] < unclipped["mos"]


def test_weakest_dimension_dominates_mos():
    one_bad = true_ratings(DegradationParams(noise_type="white", snr_db=0.0))
    assert one_bad["mos"] < 2.2  # the other three dimensions are clean
    spread = true_ratings(DegradationParams(noise_type="white", snr_db=14.0, lowpass_hz=3000,
                                            packet_loss_rate=0.04))
    dims = [spread[k] for k in ("noi", "col", "dis", "loud")]
    assert min(dims) < spread["mos"] < sum(dims) / 4


# ---------------------------------------------------------------------------- audio checks
def test_written_snr_and_level_match_request(espeak, tmp_path):
    config = SimulationConfig(p_clean=0.0, p_noise=0.5, p_coloration=0.0, p_discontinuity=0.0,
                              p_loudness=0.5, loud_level_range=(-22.0, -18.0))
    root = tmp_path / "audio"
    simulate_corpus(root, {"NISQA_TRAIN_SIM": 16}, seed=3, config=config, progress=False)
    n_noise = n_level = 0
    for row in read_rows(root / CORPUS_FILE):
        params = params_from_row(row)
        deg, fs = sf.read(str(root / row["filepath_deg"]))
        ref, _ = sf.read(str(root / row["filepath_ref"]))
        assert abs(active_speech_level(ref, fs) + 26.0) < 0.05
        if params.has_noise and not params.has_loudness:
            snr = active_speech_level(ref, fs) - rms_level(deg - ref)
            assert abs(snr - params.snr_db) < 0.5, (snr, params)
            n_noise += 1
        elif params.has_loudness and not params.has_noise:
            assert float(row["sim_full_scale_clipped"]) == 0.0
            assert abs(active_speech_level(deg, fs) - params.level_db) < 0.5
            assert float(row["asl_out_level"]) == params.level_db
            n_level += 1
    assert n_noise >= 2 and n_level >= 2


def _band_energy_db(x, fs, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / fs)
    return 10 * np.log10(spec[(f >= lo) & (f < hi)].sum() + 1e-20)


def test_degradations_act_on_the_audio(clean_speech):
    x = clean_speech
    rng = np.random.default_rng(0)

    def run(**kw):
        return apply_degradations(x, FS, DegradationParams(**kw), np.random.default_rng(0))[0]

    for snr in (0.0, 12.5, 30.0):
        y = run(noise_type="white", snr_db=snr)
        assert abs(active_speech_level(x, FS) - rms_level(y - x) - snr) < 0.05
    low = run(lowpass_hz=2000)
    assert _band_energy_db(x, FS, 4000, 8000) - _band_energy_db(low, FS, 4000, 8000) > 30
    high = run(highpass_hz=1000)
    assert _band_energy_db(x, FS, 0, 400) - _band_energy_db(high, FS, 0, 400) > 20
    nb = run(narrowband=True)
    assert _band_energy_db(x, FS, 4500, 8000) - _band_energy_db(nb, FS, 4500, 8000) > 30
    for out in (low, high, nb, run(clip_threshold=0.1)):  # coloration keeps the speech level
        assert abs(active_speech_level(out, FS) + 26.0) < 0.05
    clipped = run(clip_threshold=0.1)
    assert np.max(np.abs(clipped)) < np.max(np.abs(x))
    dense = x + 1e-4 * rng.standard_normal(x.size)  # no frame is silent before the loss
    n_frames = x.size // 320
    lossy = apply_degradations(dense, FS, DegradationParams(packet_loss_rate=0.2), rng)[0]
    zeroed = np.all(lossy[: n_frames * 320].reshape(-1, 320) == 0, axis=1)
    assert lossy.size == x.size and zeroed.sum() == round(0.2 * n_frames)
    short = run(timeclip_rate=0.1)
    assert short.size == x.size - round(0.1 * n_frames) * 320
    quiet = run(level_db=-45.0)
    assert abs(active_speech_level(quiet, FS) + 45.0) < 0.05
    loud, info = apply_degradations(x, FS, DegradationParams(level_db=-5.0), rng)
    assert info["full_scale_clipped"] > 0 and np.max(np.abs(loud)) <= 1.0
    assert np.array_equal(run(), x)


def test_active_speech_level_ignores_pauses():
    rng = np.random.default_rng(0)
    burst = 0.1 * rng.standard_normal(16000)
    with_pause = np.concatenate([burst, np.zeros(32000), burst])
    assert abs(active_speech_level(burst, FS) - rms_level(burst)) < 0.25
    assert abs(active_speech_level(with_pause, FS) - rms_level(burst)) < 1.0
    assert rms_level(with_pause) < rms_level(burst) - 2.5  # half of it is silence
    assert active_speech_level(np.zeros(100), FS) == -math.inf


def test_sample_rate_48k(espeak, tmp_path):
    root = tmp_path / "hi"
    simulate_corpus(root, {"NISQA_TEST_SIM": 2}, seed=0,
                    config=SimulationConfig(sample_rate=48000), progress=False)
    for row in read_rows(root / CORPUS_FILE):
        assert sf.info(str(root / row["filepath_deg"])).samplerate == 48000


# ---------------------------------------------------------------------------------- resume
class Interrupt(Exception):
    pass


def test_resume_after_interruption(espeak, tmp_path):
    sizes = {"NISQA_TRAIN_SIM": 8, "NISQA_TEST_SIM": 4}
    root = tmp_path / "resumed"
    seen = []

    def stop_after_five(row):
        seen.append(row["filepath_deg"])
        if len(seen) == 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        simulate_corpus(root, sizes, seed=5, progress=False, on_clip=stop_after_five)
    assert not (root / CORPUS_FILE).exists()
    with open(root / PROGRESS_FILE, "a", encoding="utf-8") as f:
        f.write('{"subset": "NISQA_TEST_SIM", "index": 2, "ro')  # torn last line
    stamps = {p: (root / p).stat().st_mtime_ns for p in seen}

    summary = simulate_corpus(root, sizes, seed=5, progress=False)
    assert (summary.n_resumed, summary.n_generated) == (5, 7)
    assert {p: (root / p).stat().st_mtime_ns for p in seen} == stamps

    straight = tmp_path / "straight"
    simulate_corpus(straight, sizes, seed=5, progress=False)
    assert (root / CORPUS_FILE).read_bytes() == (straight / CORPUS_FILE).read_bytes()
    assert wav_bytes(root) == wav_bytes(straight)

    csv_stamp = (root / CORPUS_FILE).stat().st_mtime_ns
    log_stamp = (root / PROGRESS_FILE).stat().st_mtime_ns
    again = simulate_corpus(root, sizes, seed=5, progress=False)
    assert again.n_generated == 0 and again.clips_per_min is None
    assert (root / CORPUS_FILE).stat().st_mtime_ns == csv_stamp
    assert (root / PROGRESS_FILE).stat().st_mtime_ns == log_stamp

    (root / seen[0]).unlink()  # a lost file is made again, identically
    assert simulate_corpus(root, sizes, seed=5, progress=False).n_generated == 1
    assert wav_bytes(root) == wav_bytes(straight)


def _progress_lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / PROGRESS_FILE).read_text().splitlines()]


def test_stale_progress_entry_is_made_again(espeak, tmp_path):
    root = tmp_path / "stale"
    sizes = {"NISQA_TEST_SIM": 3}
    simulate_corpus(root, sizes, seed=0, progress=False)
    before = wav_bytes(root)
    entry = next(e for e in _progress_lines(root) if e["index"] == 1)
    with open(root / PROGRESS_FILE, "a", encoding="utf-8") as f:  # the last entry of a key wins
        f.write(json.dumps({**entry, "fingerprint": "another-run"}) + "\n")
    summary = simulate_corpus(root, sizes, seed=0, progress=False)
    assert (summary.n_resumed, summary.n_generated) == (2, 1)
    assert wav_bytes(root) == before


def test_progress_log_of_an_older_version_is_resumed(espeak, tmp_path):
    root = tmp_path / "legacy"
    sizes = {"NISQA_TEST_SIM": 3}
    simulate_corpus(root, sizes, seed=0, progress=False)
    legacy = [{k: e[k] for k in ("subset", "index", "row")} for e in _progress_lines(root)]
    (root / PROGRESS_FILE).write_text("".join(json.dumps(e) + "\n" for e in legacy)
                                      + '{"subset": "NISQA_TEST_SIM", "ind')  # torn last line
    summary = simulate_corpus(root, sizes, seed=0, progress=False)
    assert (summary.n_resumed, summary.n_generated) == (3, 0)
    assert {e["key"] for e in _progress_lines(root)} == {f"NISQA_TEST_SIM:{i}" for i in range(3)}


def test_changed_settings_raise_unless_overwrite(espeak, tmp_path):
    root = tmp_path / "c"
    simulate_corpus(root, {"NISQA_TEST_SIM": 2}, seed=0, progress=False)
    with pytest.raises(SimulationMismatchError, match="overwrite=True"):
        simulate_corpus(root, {"NISQA_TEST_SIM": 2}, seed=1, progress=False)
    with pytest.raises(SimulationMismatchError):
        simulate_corpus(root, {"NISQA_TEST_SIM": 3}, seed=0, progress=False)
    simulate_corpus(root, {"NISQA_VAL_SIM": 2}, seed=1, progress=False, overwrite=True)
    assert not (root / "NISQA_TEST_SIM").exists()
    rows = read_rows(root / CORPUS_FILE)
    assert {(r["db"], r["sim_seed"]) for r in rows} == {("NISQA_VAL_SIM", "1")}


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sizes": {}}, "sizes is empty"),
        ({"sizes": {"NISQA_TRAIN_SIM": 0}}, ">= 1"),
        ({"sizes": {"../x": 2}}, "subset name"),
        ({"seed": -1}, "seed"),
        ({"config": SimulationConfig(snr_range=(30.0, 5.0))}, "snr_range.*reversed"),
        ({"config": SimulationConfig(p_noise=1.5)}, "p_noise"),
        ({"config": SimulationConfig(lowpass_range=(800.0, 9000.0))}, "lowpass_range"),
        ({"config": SimulationConfig(sample_rate=8000)}, "sample_rate"),
        ({"config": SimulationConfig(votes=0)}, "votes"),
        ({"config": SimulationConfig(pitch_range=(10, 120))}, "pitch_range"),
        ({"config": SimulationConfig(highpass_range=(100.0, 7500.0))}, "highpass_range"),
        ({"config": SimulationConfig(voices=())}, "voices"),
        ({"config": SimulationConfig(noise_types=("white", "brown"))}, "noise_types"),
    ],
)
def test_bad_config_is_refused(tmp_path, kwargs, message):
    args = {"sizes": {"NISQA_TRAIN_SIM": 2}, **kwargs}
    with pytest.raises(SimulationConfigError, match=message):
        simulate_corpus(tmp_path / "x", progress=False, **args)
    assert not (tmp_path / "x").exists()


def test_missing_espeak_says_how_to_install(tmp_path):
    config = SimulationConfig(espeak_binary="espeak-ng-not-installed-here")
    with pytest.raises(SimulationError, match="apt-get install espeak-ng"):
        simulate_corpus(tmp_path / "x", {"NISQA_TRAIN_SIM": 2}, config=config, progress=False)


def test_bad_clean_dir_and_foreign_folder(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no audio")
    with pytest.raises(SimulationError, match="no .wav/.flac files"):
        simulate_corpus(tmp_path / "x", {"NISQA_TRAIN_SIM": 2}, clean_dir=empty, progress=False)
    with pytest.raises(SimulationError, match="not a folder"):
        simulate_corpus(tmp_path / "x", {"NISQA_TRAIN_SIM": 2}, clean_dir=tmp_path / "nope",
                        progress=False)
    foreign = tmp_path / "real_nisqa"
    foreign.mkdir()
    (foreign / CORPUS_FILE).write_text("db,con\n")
    with pytest.raises(SimulationError, match="not a simulation output folder"):
        simulate_corpus(foreign, {"NISQA_TRAIN_SIM": 2}, progress=False)
    assert (foreign / CORPUS_FILE).read_text() == "db,con\n"


def test_config_from_dict_and_lists():
    config = SimulationConfig.from_dict({"snr_range": [5, 10], "voices": ["en-us"]})
    assert config.snr_range == (5, 10) and config.voices == ("en-us",)
    config.validate()
    with pytest.raises(SimulationConfigError, match="unknown"):
        SimulationConfig.from_dict({"snr": 3})
    assert {f.name for f in dataclasses.fields(SimulationConfig)} >= {
        "sample_rate", "votes", "vote_sigma", "voices", "snr_range"}


# ------------------------------------------------------------------------------- clean_dir
def _speechlike(seconds: float, fs: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    f0 = 110 + 60 * rng.random()
    voiced = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 3 * t) > 0).astype(float)
    return 0.2 * voiced * envelope + 0.01 * rng.standard_normal(t.size)


def test_clean_dir_source(tmp_path):
    clean = tmp_path / "clean"
    (clean / "spk1").mkdir(parents=True)
    for k in range(9):
        sf.write(str(clean / "spk1" / f"u{k}.wav"), _speechlike(3.0 + 0.3 * k, 22050, k), 22050)
    stereo = np.stack([_speechlike(6.0, 44100, 20), _speechlike(6.0, 44100, 21)], axis=1)
    sf.write(str(clean / "long_stereo.flac"), stereo, 44100)
    config = SimulationConfig(espeak_binary="espeak-ng-not-needed", noise_types=("babble",),
                              noise_type_weights=(1.0,), p_noise=1.0, p_clean=0.0)
    root = tmp_path / "user"
    sizes = {"NISQA_TRAIN_SIM": 10, "NISQA_TEST_SIM": 3}
    simulate_corpus(root, sizes, seed=0, config=config, clean_dir=clean, progress=False)
    rows = read_rows(root / CORPUS_FILE)
    assert len(rows) == 13 and {r["source"] for r in rows} == {"user"}
    files = {r["db"]: set() for r in rows}
    for row in rows:
        files[row["db"]].add(row["sim_source_file"])
        info = sf.info(str(root / row["filepath_ref"]))
        assert (info.samplerate, info.channels) == (FS, 1) and info.duration <= 4.0 + 1e-9
        assert row["sim_noise_type"] == "babble"
    assert not files["NISQA_TRAIN_SIM"] & files["NISQA_TEST_SIM"]
    assert len(files["NISQA_TRAIN_SIM"]) >= 7


# ---------------------------------------------------------------------------------- recipe
def test_recipe_script(espeak, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "recipes/Simulated/simulate_prepare.py"),
         str(REPO / "recipes/Simulated/hparams/simulate.yaml"), "--train_size=3",
         "--valid_size=1", "--test_size=1", "--num_workers=1",
         f"--output_folder={tmp_path / 'exp'}", f"--data_folder={tmp_path / 'data'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "clips/min" in proc.stdout
    rows = read_rows(tmp_path / "data" / CORPUS_FILE)
    assert [r["db"] for r in rows] == ["NISQA_TRAIN_SIM"] * 3 + ["NISQA_VAL_SIM", "NISQA_TEST_SIM"]
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert (tmp_path / "exp" / "hyperparams.yaml").exists()
    for split in ("NISQA_TRAIN_SIM", "NISQA_VAL_SIM", "NISQA_TEST_SIM"):
        assert (tmp_path / "exp" / "save" / f"{split}.json").exists()
