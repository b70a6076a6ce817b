"""Importer for the paper's released JSON-lines corpus: both tasks, re-rooting, missing audio."""

import json

import pytest
from nisqa_fixture import build_corpus, make_row

from speechbrain_alld.corpora import CorpusError, export_released_jsonl, import_released_corpus
from speechbrain_alld.ratings import RatingError

AUTHOR = "/mnt/users/someone/data/NISQA_Corpus"


@pytest.fixture()
def nisqa(tmp_path):
    return build_corpus(tmp_path / "my_nisqa", {
        "NISQA_TRAIN_SIM": [make_row("NISQA_TRAIN_SIM", i) for i in range(4)],
        "NISQA_VAL_SIM": [make_row("NISQA_VAL_SIM", i) for i in range(2)],
    })


def _mos(path, mos=1.8, **extra):
    return {"audios": [path], "query": "Describe and evaluate the speech <audio>.",
            "response": f"The speech is noisy. Overall MOS: {mos}.", "mos": mos, "noi": 3.2,
            "col": 1.9, "loud": 3.3, **extra}


def _ab(path_a, path_b, winner="A", a_mos=3.1, b_mos=2.0):
    return {"audios": [path_a, path_b], "query": "A/B test between <audio> and <audio>.",
            "response": f"Speech {winner} is better.", "A_mos": a_mos, "A_noi": 3.0,
            "A_col": 3.5, "A_dis": 4.1, "A_loud": 3.8, "B_mos": b_mos, "B_noi": 1.5,
            "B_col": 3.6, "B_dis": 4.0, "B_loud": 3.9, "winner": winner}


def _write(path, objs):
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


def test_both_tasks_are_imported_and_rerooted(tmp_path, nisqa):
    src = _write(tmp_path / "released.jsonl", [
        _mos(f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00001_clip.wav"),
        "",
        _ab(f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00002_clip.wav",
            "D:\\corpora\\NISQA_VAL_SIM\\deg\\c00001_clip.wav", winner="A"),
    ])
    result = import_released_corpus(src, nisqa)
    assert result.report.n_read == 2 and result.report.n_kept == 2
    mos, ab = result.by_task("mos")[0], result.by_task("ab")[0]
    assert mos.audios == [(nisqa / "NISQA_TRAIN_SIM/deg/c00001_clip.wav").resolve()]
    assert mos.ratings[0].mos == 1.8 and mos.ratings[0].dis is None
    assert mos.response.endswith("MOS: 1.8.") and mos.origin == f"{src}:1"
    assert ab.audios[1] == (nisqa / "NISQA_VAL_SIM/deg/c00001_clip.wav").resolve()
    assert ab.winner == "A" and ab.ratings[1].noi == 1.5
    entry = ab.to_manifest_entry()
    assert entry["wav_b"].endswith("NISQA_VAL_SIM/deg/c00001_clip.wav")
    assert entry["A_mos"] == 3.1 and entry["B_dis"] == 4.0 and entry["task"] == "ab"
    assert result.winner_mismatch == []


def test_same_file_name_in_two_subsets_is_resolved_by_subset_folder(tmp_path, nisqa):
    src = _write(tmp_path / "r.jsonl", [
        _mos("/x/NISQA_VAL_SIM/deg/c00000_clip.wav"),
        _mos("/x/deg/c00003_clip.wav"),  # no subset folder; name unique among deg/ files
        _mos("/x/deg/c00000_clip.wav"),  # no subset folder; name in two subsets' deg/
    ])
    result = import_released_corpus(src, nisqa)
    assert result.records[0].audios[0].parent.parent.name == "NISQA_VAL_SIM"
    assert result.records[1].audios[0].parent.parent.name == "NISQA_TRAIN_SIM"
    assert result.report.n_skipped == 1
    assert "ambiguous" in result.report.skipped[0].reason


def test_missing_audio_is_reported_per_record(tmp_path, nisqa):
    src = _write(tmp_path / "r.jsonl", [
        _mos(f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00099_clip.wav"),
        _mos(f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00000_clip.wav"),
        _ab(f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00001_clip.wav",
            f"{AUTHOR}/NISQA_TEST_FOR/deg/c00001_clip.wav"),
    ])
    result = import_released_corpus(src, nisqa)
    assert len(result.records) == 1 and result.report.n_skipped == 2
    lines = sorted(s.line for s in result.report.skipped)
    assert lines == [1, 3]
    assert "c00099_clip.wav not found" in result.report.summary()
    with pytest.raises(CorpusError, match="2 audio reference"):
        import_released_corpus(src, nisqa, missing_audio="error")


def test_malformed_records_strict_and_lenient(tmp_path, nisqa):
    good = f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00000_clip.wav"
    src = _write(tmp_path / "r.jsonl", [
        _mos(good),
        "{not json",
        _mos(good, mos=7.0),
        {**_mos(good), "query": "no placeholder"},
        {**_ab(good, good), "winner": "C"},
        {**_ab(good, good), "audios": [good, good, good]},
    ])
    with pytest.raises(RatingError) as info:
        import_released_corpus(src, nisqa)
    assert info.value.line == 2 and "invalid JSON" in str(info.value)
    result = import_released_corpus(src, nisqa, strict=False)
    assert len(result.records) == 1
    assert [(s.line, s.field) for s in result.report.skipped] == [
        (2, "<line>"), (3, "mos"), (4, "query"), (5, "winner"), (6, "query")]


def test_winner_contradicting_mos_is_flagged(tmp_path, nisqa):
    a = f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00000_clip.wav"
    b = f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00001_clip.wav"
    src = _write(tmp_path / "r.jsonl", [_ab(a, b, winner="B", a_mos=3.0, b_mos=2.0)])
    result = import_released_corpus(src, nisqa)
    assert len(result.records) == 1 and len(result.winner_mismatch) == 1
    assert "winner B but A_mos=3" in result.winner_mismatch[0]


def test_export_then_import_round_trips(tmp_path, nisqa):
    src = _write(tmp_path / "r.jsonl", [
        _mos(f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00003_clip.wav", mos=2.345, dis=4.0),
        _ab(f"{AUTHOR}/NISQA_TRAIN_SIM/deg/c00000_clip.wav",
            f"{AUTHOR}/NISQA_VAL_SIM/deg/c00001_clip.wav", winner="B", a_mos=1.9, b_mos=4.2),
    ])
    first = import_released_corpus(src, nisqa)
    out = tmp_path / "export" / "corpus.jsonl"
    assert export_released_jsonl(first.records, out, relative_to=nisqa) == 2
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["audios"] == ["NISQA_TRAIN_SIM/deg/c00003_clip.wav"]
    assert lines[0]["mos"] == 2.3 and "mos_std" not in lines[0]
    again = import_released_corpus(out, nisqa)
    assert [r.audios for r in again.records] == [r.audios for r in first.records]
    assert again.records[1].winner == "B" and again.records[1].ratings[1].mos == 4.2
    assert again.records[0].response == first.records[0].response
