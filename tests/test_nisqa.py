"""NISQA reader, the reader registry and idempotent manifest preparation."""

import importlib.util
import json
import os
from pathlib import Path

import pytest
from nisqa_fixture import build_corpus, make_row, write_csv

from speechbrain_alld.corpora import (
    CorpusError,
    CorpusReadResult,
    MissingAudioError,
    available_readers,
    get_reader,
    prepare_corpus,
    read_nisqa,
    register_reader,
)
from speechbrain_alld.corpora.columns import CORPUS_FILE, subset_csv_name
from speechbrain_alld.ratings import RatingError, RatingRecord, ReadReport

REPO = Path(__file__).resolve().parents[1]


def _two_subsets():
    return {
        "NISQA_TRAIN_SIM": [make_row("NISQA_TRAIN_SIM", i) for i in range(6)],
        "NISQA_TEST_FOR": [make_row("NISQA_TEST_FOR", i, mos_only=True, with_ref=False)
                           for i in range(4)],
    }


def test_reads_corpus_file_with_mos_only_rows_and_audio_info(tmp_path):
    root = build_corpus(tmp_path / "nisqa", _two_subsets(), extra_columns=("my_extra",))
    result = read_nisqa(root)
    assert len(result.records) == 10
    assert result.report.n_read == 10 and result.report.n_kept == 10
    assert result.report.n_skipped == 0
    by_id = {r.clip_id: r for r in result.records}
    sim = by_id["NISQA_TRAIN_SIM/c00001_clip"]
    assert sim.ratings.mos == pytest.approx(2.0) and sim.ratings.noi == pytest.approx(3.2)
    assert sim.ratings.votes == 5 and sim.condition == "1"
    assert sim.wav == (root / "NISQA_TRAIN_SIM/deg/c00001_clip.wav").resolve()
    assert sim.ref_wav == (root / "NISQA_TRAIN_SIM/ref/c00001_clip.wav").resolve()
    assert sim.sample_rate == 16000 and sim.duration == pytest.approx(0.5)
    test = by_id["NISQA_TEST_FOR/c00002_clip"]
    assert test.ratings.dimensions() == {} and test.ref_wav is None
    assert test.duration == pytest.approx(0.75)
    assert "my_extra" not in sim.extra
    assert sim.origin.endswith(f"{CORPUS_FILE}:3")


def test_subset_selection_and_per_subset_files_without_corpus_file(tmp_path):
    root = build_corpus(tmp_path / "nisqa", _two_subsets(), corpus_file=False)
    everything = read_nisqa(root)
    assert {r.subset for r in everything.records} == {"NISQA_TRAIN_SIM", "NISQA_TEST_FOR"}
    only_test = read_nisqa(root, ["NISQA_TEST_FOR"])
    assert [r.subset for r in only_test.records] == ["NISQA_TEST_FOR"] * 4
    assert only_test.records[0].origin.endswith(subset_csv_name("NISQA_TEST_FOR") + ":2")


def test_subset_missing_from_corpus_file_falls_back_to_its_own_csv(tmp_path):
    root = build_corpus(tmp_path / "nisqa", _two_subsets(), subset_files=False)
    live = [make_row("NISQA_VAL_LIVE", i, with_ref=False) for i in range(3)]
    build_corpus(root, {"NISQA_VAL_LIVE": live}, corpus_file=False)
    result = read_nisqa(root, ["NISQA_TRAIN_SIM", "NISQA_VAL_LIVE"])
    assert sorted({r.subset for r in result.records}) == ["NISQA_TRAIN_SIM", "NISQA_VAL_LIVE"]
    assert len(result.records) == 9
    with pytest.raises(CorpusError, match="NISQA_TEST_P501"):
        read_nisqa(root, ["NISQA_TEST_P501"])


def test_every_missing_or_unreadable_file_is_reported_at_once(tmp_path):
    root = build_corpus(tmp_path / "nisqa", _two_subsets())
    (root / "NISQA_TRAIN_SIM/deg/c00000_clip.wav").unlink()
    (root / "NISQA_TRAIN_SIM/ref/c00003_clip.wav").unlink()
    (root / "NISQA_TEST_FOR/deg/c00001_clip.wav").write_bytes(b"not a wav file at all")
    empty = root / "NISQA_TEST_FOR/deg/c00002_clip.wav"
    import soundfile as sf
    sf.write(str(empty), [], 16000)
    with pytest.raises(MissingAudioError) as info:
        read_nisqa(root)
    err = info.value
    assert len(err.problems) == 4
    message = str(err)
    assert message.startswith("4 audio file(s) missing or unreadable")
    assert "c00000_clip.wav: missing" in message and "ref/c00003_clip.wav: missing" in message
    assert "c00001_clip.wav: unreadable" in message and "empty (0 samples)" in message

    lenient = read_nisqa(root, strict=False)
    assert len(lenient.records) == 6
    assert lenient.report.n_read == 10 and lenient.report.n_kept == 6
    assert lenient.report.n_skipped == 4
    fields = sorted(s.field for s in lenient.report.skipped)
    assert fields == ["filepath_deg", "filepath_deg", "filepath_deg", "filepath_ref"]
    assert all(s.line is not None for s in lenient.report.skipped)


def test_bad_rating_rows_strict_error_and_lenient_counted_skip(tmp_path):
    rows = [make_row("NISQA_TRAIN_SIM", i) for i in range(5)]
    rows[1]["mos"] = "7.5"
    rows[3]["col"] = "abc"
    root = build_corpus(tmp_path / "nisqa", {"NISQA_TRAIN_SIM": rows})
    with pytest.raises(RatingError) as info:
        read_nisqa(root)
    assert info.value.line == 3 and info.value.field == "mos"
    assert f"{CORPUS_FILE}:3: field 'mos'" in str(info.value)
    result = read_nisqa(root, strict=False)
    assert len(result.records) == 3
    assert [(s.line, s.field) for s in result.report.skipped] == [(3, "mos"), (5, "col")]
    assert "read 5, kept 3, skipped 2" in result.report.summary()


def test_duplicate_and_pathless_rows_are_errors(tmp_path):
    rows = [make_row("NISQA_TRAIN_SIM", i) for i in range(3)]
    rows.append(dict(rows[0]))
    rows.append(make_row("NISQA_TRAIN_SIM", 9, filepath_deg=""))
    root = build_corpus(tmp_path / "nisqa", {"NISQA_TRAIN_SIM": rows[:3]})
    write_csv(root / CORPUS_FILE, rows)
    result = read_nisqa(root, strict=False)
    assert len(result.records) == 3
    reasons = [s.reason for s in result.report.skipped]
    assert "duplicate clip" in reasons[0] and "missing audio path" in reasons[1]


def test_missing_required_column_and_missing_root(tmp_path):
    root = tmp_path / "nisqa"
    root.mkdir()
    (root / CORPUS_FILE).write_text("db,file,mos\nNISQA_TRAIN_SIM,a,3.0\n")
    with pytest.raises(CorpusError, match="filepath_deg"):
        read_nisqa(root)
    with pytest.raises(CorpusError, match="not found"):
        read_nisqa(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="no NISQA_corpus_file.csv"):
        read_nisqa(empty)


def test_registry_is_pluggable_and_prepare_uses_it(tmp_path):
    assert get_reader("nisqa") is read_nisqa and "nisqa" in available_readers()
    with pytest.raises(KeyError, match="registered: .*nisqa"):
        get_reader("no-such-corpus")
    nisqa_root = build_corpus(tmp_path / "nisqa", _two_subsets())

    @register_reader("toy-mos-only")
    def read_toy(root, subsets=None, *, strict=True, tolerance=0.0, check_audio=True):
        result = read_nisqa(root, subsets, strict=strict, tolerance=tolerance,
                            check_audio=check_audio)
        for rec in result.records:
            rec.ratings = RatingRecord(mos=rec.ratings.mos)
        return CorpusReadResult(result.records, ReadReport(len(result.records),
                                                           len(result.records)))

    with pytest.raises(ValueError, match="already registered"):
        register_reader("nisqa")(read_toy)
    outputs = prepare_corpus("toy-mos-only", nisqa_root, tmp_path / "out", ["NISQA_TRAIN_SIM"])
    manifest = json.loads(outputs["NISQA_TRAIN_SIM"].read_text())
    assert len(manifest) == 6 and all(e["noi"] is None for e in manifest.values())


def _load_recipe_prepare():
    spec = importlib.util.spec_from_file_location(
        "nisqa_prepare", REPO / "recipes/NISQA/nisqa_prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_nisqa_writes_manifests_and_is_idempotent(tmp_path):
    prepare_nisqa = _load_recipe_prepare().prepare_nisqa
    root = build_corpus(tmp_path / "nisqa", _two_subsets())
    save = tmp_path / "manifests"
    splits = ["NISQA_TRAIN_SIM", "NISQA_TEST_FOR"]
    outputs = prepare_nisqa(root, save, splits)
    assert set(outputs) == set(splits)
    train = json.loads(outputs["NISQA_TRAIN_SIM"].read_text())
    assert len(train) == 6
    entry = train["NISQA_TRAIN_SIM/c00002_clip"]
    assert Path(entry["wav"]).is_file() and entry["subset"] == "NISQA_TRAIN_SIM"
    assert entry["sample_rate"] == 16000 and entry["duration"] == pytest.approx(0.75)
    assert entry["mos"] == pytest.approx(2.5) and entry["dis"] == pytest.approx(4.6)
    assert entry["condition"] == "2" and entry["votes"] == 5 and Path(entry["ref_wav"]).is_file()
    test = json.loads(outputs["NISQA_TEST_FOR"].read_text())
    assert all(e["noi"] is None and e["mos"] is not None for e in test.values())

    # Same options: nothing is rewritten.
    os.utime(outputs["NISQA_TRAIN_SIM"], ns=(1, 1))
    again = prepare_nisqa(root, save, splits)
    assert again == outputs and outputs["NISQA_TRAIN_SIM"].stat().st_mtime_ns == 1
    # Changed options redo the work.
    prepare_nisqa(root, save, splits, tolerance=0.1)
    assert outputs["NISQA_TRAIN_SIM"].stat().st_mtime_ns != 1
    # A changed CSV redoes the work too.
    rows = _two_subsets()
    rows["NISQA_TRAIN_SIM"][0]["mos"] = "4.9000"
    build_corpus(root, rows, write_audio=False)
    prepare_nisqa(root, save, splits, tolerance=0.1)
    train = json.loads(outputs["NISQA_TRAIN_SIM"].read_text())
    assert train["NISQA_TRAIN_SIM/c00000_clip"]["mos"] == pytest.approx(4.9)
    # skip_prep returns the expected paths without reading anything.
    assert prepare_nisqa(tmp_path / "absent", save, splits, skip_prep=True) == outputs


def test_prepare_lenient_writes_a_report(tmp_path):
    root = build_corpus(tmp_path / "nisqa", _two_subsets())
    (root / "NISQA_TRAIN_SIM/deg/c00004_clip.wav").unlink()
    with pytest.raises(MissingAudioError):
        prepare_corpus("nisqa", root, tmp_path / "strict", ["NISQA_TRAIN_SIM"])
    assert not (tmp_path / "strict" / "prepare_opts.json").exists()
    outputs = prepare_corpus("nisqa", root, tmp_path / "m", ["NISQA_TRAIN_SIM"], strict=False)
    assert len(json.loads(outputs["NISQA_TRAIN_SIM"].read_text())) == 5
    report = json.loads((tmp_path / "m" / "prepare_report.json").read_text())
    assert report["n_skipped"] == 1 and "c00004_clip.wav" in report["skipped"][0]["reason"]
