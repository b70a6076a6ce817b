"""Generic pretraining examples read from a simulated corpus CSV, and condition-text scores."""

import csv
import itertools

import numpy as np
import pytest

from speechbrain_alld.simulation.config import SimulationConfig
from speechbrain_alld.simulation.degradations import NOISE_TYPES, DegradationParams
from speechbrain_alld.simulation.generic_tasks import (
    GENERIC_INSTRUCTIONS,
    condition_families,
    condition_scores,
    generic_examples,
)
from speechbrain_alld.simulation.plan import clip_rng, plan_degradations

HEADER = ["db", "file", "filepath_deg", "sim_text", "con_description", "sim_duration_s"]
ROWS = [
    ["TRAIN", "TRAIN_c0", "TRAIN/deg/c0.wav", "The cat sat.", "clean", "2.5"],
    ["TRAIN", "TRAIN_c1", "TRAIN/deg/c1.wav", "A dog ran home.", "pink noise 11.9 dB", "3.25"],
    ["VAL", "VAL_c0", "VAL/deg/c0.wav", "  Birds sing.  ", "  ", "1.0"],
    ["VAL", "VAL_c1", "VAL/deg/c1.wav", "", "level -34.7 dBov", ""],
]


def write_csv(path, header=HEADER, rows=ROWS):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- generic_examples ----------------------------------------------------------------------

def test_one_example_per_clip_and_task(tmp_path):
    path = write_csv(tmp_path / "corpus.csv")
    examples, skipped = generic_examples(path)
    # 4 rows x 2 tasks, minus the two empty targets (VAL_c0 condition, VAL_c1 transcribe).
    assert sorted(examples) == sorted(["transcribe:TRAIN_c0", "condition:TRAIN_c0",
                                       "transcribe:TRAIN_c1", "condition:TRAIN_c1",
                                       "transcribe:VAL_c0", "condition:VAL_c1"])
    assert skipped == {"transcribe": 1, "condition": 1}
    ex = examples["condition:TRAIN_c1"]
    assert ex["task"] == "condition" and ex["item_id"] == "TRAIN_c1"
    assert ex["response"] == "pink noise 11.9 dB"
    assert ex["instruction"] == GENERIC_INSTRUCTIONS["condition"]
    assert ex["instruction"].count("<audio>") == 1
    assert ex["wavs"] == [str(tmp_path / "TRAIN" / "deg" / "c1.wav")]
    assert ex["duration"] == 3.25
    assert ex["mos"] == -1.0 and ex["winner"] == "" and ex["dims"] == {}
    # Targets are stripped; a missing duration reads as 0.
    assert examples["transcribe:VAL_c0"]["response"] == "Birds sing."
    assert examples["condition:VAL_c1"]["duration"] == 0.0
    assert examples["transcribe:TRAIN_c0"]["instruction"] == GENERIC_INSTRUCTIONS["transcribe"]


def test_subsets_and_tasks_filter(tmp_path):
    path = write_csv(tmp_path / "corpus.csv")
    examples, skipped = generic_examples(path, subsets=["VAL"])
    assert sorted(examples) == ["condition:VAL_c1", "transcribe:VAL_c0"]
    assert skipped == {"transcribe": 1, "condition": 1}
    examples, skipped = generic_examples(path, tasks=["transcribe"], subsets=["TRAIN"])
    assert sorted(examples) == ["transcribe:TRAIN_c0", "transcribe:TRAIN_c1"]
    assert skipped == {"transcribe": 0}
    examples, skipped = generic_examples(path, subsets=[])
    assert examples == {} and skipped == {"transcribe": 0, "condition": 0}


def test_skipped_counts_every_empty_target(tmp_path):
    rows = [["S", f"S_c{k}", f"S/c{k}.wav", "text" if k % 3 else "", "clean" if k % 2 else " ",
             "1"] for k in range(12)]
    examples, skipped = generic_examples(write_csv(tmp_path / "c.csv", rows=rows))
    n_empty_text = sum(1 for k in range(12) if k % 3 == 0)
    n_empty_cond = sum(1 for k in range(12) if k % 2 == 0)
    assert skipped == {"transcribe": n_empty_text, "condition": n_empty_cond}
    assert len(examples) == 2 * 12 - n_empty_text - n_empty_cond
    assert all(ex["response"] for ex in examples.values())


@pytest.mark.parametrize("column", ["file", "filepath_deg", "sim_text", "con_description"])
def test_missing_column_names_file_and_column(tmp_path, column):
    keep = [k for k, c in enumerate(HEADER) if c != column]
    path = write_csv(tmp_path / "corpus.csv", [HEADER[k] for k in keep],
                     [[row[k] for k in keep] for row in ROWS])
    with pytest.raises(ValueError) as err:
        generic_examples(path)
    assert str(path) in str(err.value) and repr(column) in str(err.value)


def test_missing_target_column_of_an_unused_task_is_fine(tmp_path):
    keep = [k for k, c in enumerate(HEADER) if c != "con_description"]
    path = write_csv(tmp_path / "corpus.csv", [HEADER[k] for k in keep],
                     [[row[k] for k in keep] for row in ROWS])
    examples, skipped = generic_examples(path, tasks=["transcribe"])
    assert len(examples) == 3 and skipped == {"transcribe": 1}


@pytest.mark.parametrize("field", ["file", "filepath_deg"])
def test_empty_required_field_names_the_line(tmp_path, field):
    rows = [list(r) for r in ROWS]
    rows[2][HEADER.index(field)] = " "  # the third data row: line 4 of the file
    path = write_csv(tmp_path / "corpus.csv", rows=rows)
    with pytest.raises(ValueError, match=rf"line 4: empty field '{field}'") as err:
        generic_examples(path)
    assert str(path) in str(err.value)
    # A row filtered out by the subsets is never checked.
    examples, _ = generic_examples(path, subsets=["TRAIN"])
    assert len(examples) == 4


@pytest.mark.parametrize("tasks", [["caption"], ["transcribe", "asr"], []])
def test_unknown_task_raises(tmp_path, tasks):
    path = write_csv(tmp_path / "corpus.csv")
    with pytest.raises(ValueError, match="unknown generic task"):
        generic_examples(path, tasks=tasks)


# --- condition_families on the simulation's own descriptions ------------------------------

def expected_families(p: DegradationParams) -> frozenset[str]:
    flags = {"noise": p.has_noise, "coloration": p.has_coloration,
             "discontinuity": p.has_discontinuity, "loudness": p.has_loudness}
    return frozenset(k for k, on in flags.items() if on)


def random_params(rng: np.random.Generator) -> DegradationParams:
    kw = {}
    if rng.random() < 0.5:
        kw["noise_type"] = str(rng.choice(NOISE_TYPES))
        kw["snr_db"] = float(rng.uniform(-10, 40))
    band = rng.integers(4)  # none, highpass, lowpass, bandpass
    if band in (1, 3):
        kw["highpass_hz"] = float(rng.uniform(50, 1000))
    if band in (2, 3):
        kw["lowpass_hz"] = float(rng.uniform(2000, 7000))
    kw["narrowband"] = bool(rng.random() < 0.25)
    if rng.random() < 0.3:
        kw["clip_threshold"] = float(rng.uniform(0.01, 1.0))
    if rng.random() < 0.4:
        kw["packet_loss_rate"] = float(rng.choice([rng.uniform(1e-4, 0.4), 0.0004]))
    if rng.random() < 0.4:
        kw["timeclip_rate"] = float(rng.uniform(1e-4, 0.3))
    if rng.random() < 0.5:
        kw["level_db"] = float(rng.uniform(-60, 0))
    return DegradationParams(**kw)


def test_families_of_random_descriptions_match_the_params():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(2000):
        p = random_params(rng)
        assert condition_families(p.description) == expected_families(p), p.description
        seen.add(expected_families(p))
    assert len(seen) == 16  # every combination of the four families was exercised


def test_families_of_every_single_degradation():
    cases = [
        (DegradationParams(), frozenset()),
        (DegradationParams(noise_type="babble", snr_db=-3.0), {"noise"}),
        (DegradationParams(narrowband=True), {"coloration"}),
        (DegradationParams(highpass_hz=300.0), {"coloration"}),
        (DegradationParams(lowpass_hz=3400.0), {"coloration"}),
        (DegradationParams(highpass_hz=300.0, lowpass_hz=3400.0), {"coloration"}),
        (DegradationParams(clip_threshold=0.3), {"coloration"}),
        (DegradationParams(packet_loss_rate=0.05), {"discontinuity"}),
        (DegradationParams(timeclip_rate=0.05), {"discontinuity"}),
        (DegradationParams(level_db=-45.0), {"loudness"}),
    ]
    for params, families in cases:
        assert condition_families(params.description) == frozenset(families), params.description
    assert DegradationParams().description == "clean"


def test_families_of_planned_degradations():
    """The corpus generator's own draws (realistic ranges and combinations)."""
    config = SimulationConfig()
    for k in range(300):
        p = plan_degradations(config, clip_rng(0, "NISQA_TRAIN_SIM", k, "plan"))
        assert condition_families(p.description) == expected_families(p), p.description


# --- condition_scores -----------------------------------------------------------------------

def test_condition_scores_by_hand():
    targets = {
        "a": "pink noise 12.0 dB + lowpass 3.4 kHz",
        "b": "level -40.0 dBov",
        "c": "white noise -5.0 dB + packet loss 3.0%",
        "d": "clean",
    }
    predictions = {
        "a": "white noise 10.5 dB + lowpass 3.4 kHz",  # exact families, SNR off by 1.5
        "b": "babble noise 3.0 dB + level -40.0 dBov",  # noise wrong; 3 of 4 families right
        "c": "pink noise 1.0 dB",  # discontinuity missed; SNR off by 6
        # "d" missing: read as "" (no families), which is right for "clean"
        "extra": "noise 1.0 dB",  # not a target: ignored
    }
    out = condition_scores(predictions, targets)
    assert out["n"] == 4
    assert out["families_exact"] == pytest.approx(2 / 4)
    assert out["family_accuracy"] == pytest.approx((4 + 3 + 3 + 4) / 16)
    assert out["snr_n"] == 2
    assert out["snr_mae"] == pytest.approx((1.5 + 6.0) / 2)


def test_condition_scores_against_random_descriptions():
    """Scores of random predicted conditions against random targets, recomputed from the
    parameters (families from has_*, SNR from the rounded snr_db) instead of from the text."""
    rng = np.random.default_rng(7)
    targets, predictions, params = {}, {}, {}
    for k in range(400):
        t, p = random_params(rng), random_params(rng)
        targets[f"i{k}"], predictions[f"i{k}"] = t.description, p.description
        params[f"i{k}"] = (t, p)
    out = condition_scores(predictions, targets)
    exact = np.mean([expected_families(t) == expected_families(p) for t, p in params.values()])
    per_family = np.mean([[(f in expected_families(t)) == (f in expected_families(p))
                           for f in ("noise", "coloration", "discontinuity", "loudness")]
                          for t, p in params.values()])
    errors = [abs(round(t.snr_db, 1) - round(p.snr_db, 1)) for t, p in params.values()
              if t.has_noise and p.has_noise]
    assert out["families_exact"] == pytest.approx(exact, abs=1e-12)
    assert out["family_accuracy"] == pytest.approx(per_family, abs=1e-12)
    assert out["snr_n"] == len(errors) > 50
    # The texts state the SNR with one decimal, as round(., 1) does.
    assert out["snr_mae"] == pytest.approx(np.mean(errors), abs=1e-9)


def test_condition_scores_perfect_and_empty():
    texts = {"a": "pink noise 12.0 dB", "b": "clean", "c": "time clipping 2.0% + level -30.0 dBov"}
    out = condition_scores(texts, texts)
    assert out == {"families_exact": 1.0, "family_accuracy": 1.0, "snr_mae": 0.0, "snr_n": 1,
                   "n": 3}
    out = condition_scores({}, {"b": "clean", "c": "level -30.0 dBov"})
    assert out["snr_mae"] is None and out["snr_n"] == 0
    assert out["families_exact"] == 0.5 and out["family_accuracy"] == pytest.approx(7 / 8)
    with pytest.raises(ValueError, match="no targets"):
        condition_scores({"a": "clean"}, {})


def test_all_family_subsets_scored_against_each_other():
    """Every (target, prediction) pair of family subsets: family_accuracy is 1 - Hamming/4."""
    one = {"noise": "white noise 5.0 dB", "coloration": "highpass 300 Hz",
           "discontinuity": "packet loss 2.0%", "loudness": "level -20.0 dBov"}
    subsets = [c for r in range(5) for c in itertools.combinations(one, r)]
    for ts, ps in itertools.product(subsets, subsets):
        t = " + ".join(one[f] for f in ts) or "clean"
        p = " + ".join(one[f] for f in ps) or "clean"
        out = condition_scores({"x": p}, {"x": t})
        assert out["families_exact"] == float(set(ts) == set(ps))
        assert out["family_accuracy"] == pytest.approx(1 - len(set(ts) ^ set(ps)) / 4)
