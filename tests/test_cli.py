"""The ``alld-evaluate`` command line: outputs, folders, skipped files, exit codes, --compare."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tiny_model import make_model_folder

from speechbrain_alld.cli import CSV_COLUMNS, collect_inputs, main

ROW_KEYS = {"path", "mos", "dimensions", "parsed", "text"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2-Audio model folder with the interface files (built offline)."""
    return make_model_folder(tmp_path_factory.mktemp("model"))


def _wav(path: Path, seconds: float, sr: int = 16000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(str(path), 0.2 * rng.standard_normal(int(seconds * sr)), sr)
    return path


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good clips in a folder tree (with a non-audio file that must be ignored)."""
    root = tmp_path_factory.mktemp("audio")
    _wav(root / "b.wav", 1.0, seed=1)
    _wav(root / "a.wav", 0.6, seed=2)
    _wav(root / "sub" / "deeper" / "c.flac", 1.4, seed=3)
    _wav(root / "sub" / "d.ogg", 0.8, seed=4)
    (root / "sub" / "notes.txt").write_text("not audio", encoding="utf-8")
    return root


def _run(capsys: pytest.CaptureFixture, args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_folder_recursion_is_sorted_and_filtered(audio_dir: Path, tmp_path: Path) -> None:
    files, problems = collect_inputs([audio_dir, audio_dir / "a.wav", tmp_path / "nope.wav"])
    rel = [p.relative_to(audio_dir).as_posix() for p in files]
    assert rel == ["a.wav", "b.wav", "sub/d.ogg", "sub/deeper/c.flac"]  # sorted, deduplicated
    assert problems == [(str(tmp_path / "nope.wav"), "file not found")]


def test_describe_jsonl_to_stdout_batched_equals_one_by_one(model_dir, audio_dir, capsys):
    base = ["--model", str(model_dir), "--device", "cpu", "--no-progress", str(audio_dir)]
    code, out, err = _run(capsys, base + ["--batch-size", "3"])
    assert code == 0, err
    rows = _jsonl(out)
    assert [Path(r["path"]).name for r in rows] == ["a.wav", "b.wav", "d.ogg", "c.flac"]
    for row in rows:
        assert set(row) == ROW_KEYS
        assert isinstance(row["text"], str) and isinstance(row["dimensions"], dict)
        assert row["parsed"] == (row["mos"] is not None)
    assert "described 4, skipped 0" in err
    code1, out1, _ = _run(capsys, base + ["--batch-size", "1"])
    assert code1 == 0
    assert [r["text"] for r in _jsonl(out1)] == [r["text"] for r in rows]


def test_jsonl_and_csv_output_files(model_dir, audio_dir, tmp_path, capsys):
    base = ["--model", str(model_dir), "--no-progress", "--batch-size", "2", str(audio_dir)]
    jsonl = tmp_path / "out" / "results.jsonl"
    code, out, err = _run(capsys, base + ["--output", str(jsonl)])
    assert code == 0, err
    assert out == ""  # results go to the file, not stdout
    rows = _jsonl(jsonl.read_text(encoding="utf-8"))
    assert len(rows) == 4 and all(set(r) == ROW_KEYS for r in rows)

    table = tmp_path / "results.csv"
    code, out, err = _run(capsys, base + ["-o", str(table)])
    assert code == 0, err
    with open(table, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        table_rows = list(reader)
    assert [r["path"] for r in table_rows] == [r["path"] for r in rows]
    assert [r["text"] for r in table_rows] == [r["text"] for r in rows]
    for row, ref in zip(table_rows, rows):
        assert row["mos"] == ("" if ref["mos"] is None else str(ref["mos"]))
        assert row["parsed"] == str(ref["parsed"])


def test_bad_files_are_skipped_and_summarised(model_dir, audio_dir, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(8000), 16000)
    missing = tmp_path / "missing.wav"
    good = [audio_dir / "a.wav", audio_dir / "b.wav"]
    args = ["--model", str(model_dir), "--no-progress", "--batch-size", "4",
            str(good[0]), str(bad), str(silent), str(good[1]), str(missing)]
    code, out, err = _run(capsys, args)
    assert code == 1
    assert [r["path"] for r in _jsonl(out)] == [str(p) for p in good]  # the batch survived
    assert "described 2, skipped 3" in err
    assert f"{bad}: cannot read audio" in err
    assert f"{silent}: audio is silent" in err
    assert f"{missing}: file not found" in err
    assert "Traceback" not in err


def test_long_audio_error_skips_only_the_long_clip(model_dir, audio_dir, tmp_path, capsys):
    long_clip = _wav(tmp_path / "long.wav", 5.0, seed=9)
    args = ["--model", str(model_dir), "--no-progress", "--long-audio", "error",
            str(audio_dir / "a.wav"), str(long_clip)]
    code, out, err = _run(capsys, args)
    assert code == 1
    assert [Path(r["path"]).name for r in _jsonl(out)] == ["a.wav"]
    assert f"{long_clip}: " in err and "longer than the model's 2 s window" in err
    code, out, _ = _run(capsys, args[:3] + ["--long-audio", "chunk", str(long_clip)])
    assert code == 0 and _jsonl(out)[0]["text"].startswith("[0-2 s]")


def test_exit_2_for_missing_model_and_no_inputs(model_dir, audio_dir, tmp_path, capsys):
    code, out, err = _run(capsys, ["--model", str(tmp_path / "no-model"), str(audio_dir)])
    assert code == 2 and out == ""
    assert "cannot load the model" in err and "Traceback" not in err

    no_yaml = tmp_path / "no-yaml"
    no_yaml.mkdir()
    code, _, err = _run(capsys, ["--model", str(no_yaml), str(audio_dir)])
    assert code == 2 and "hyperparams.yaml" in err

    code, _, err = _run(capsys, ["--model", str(model_dir)])  # no PATH at all
    assert code == 2 and "no inputs" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = _run(capsys, ["--model", str(model_dir), str(empty)])
    assert code == 2 and out == "" and "nothing to describe" in err

    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(8000), 16000)
    code, out, err = _run(capsys, ["--model", str(model_dir), "--no-progress", str(silent)])
    assert code == 2 and out == "" and "described 0, skipped 1" in err

    code, _, err = _run(capsys, ["--model", str(model_dir), "-o", "x.txt", str(audio_dir)])
    assert code == 2 and ".jsonl or .csv" in err


def test_compare_prints_one_json_object(model_dir, audio_dir, tmp_path, capsys):
    a, b = audio_dir / "a.wav", audio_dir / "b.wav"
    code, out, err = _run(capsys, ["--model", str(model_dir), "--compare", str(a), str(b)])
    assert code == 0, err
    record = json.loads(out)
    assert {"a", "b", "verdict", "agreement", "note", "texts"} <= set(record)
    assert record["a"] == str(a) and record["b"] == str(b) and len(record["texts"]) == 2
    assert record["verdict"] in (None, "A", "B", "tie")
    if record["verdict"] is None:
        assert record["note"]  # why there is no verdict (unreadable or disagreeing orders)

    code, out, _ = _run(capsys, ["--model", str(model_dir), "--compare", str(a), str(b),
                                 "--no-debias"])
    record = json.loads(out)
    assert code == 0 and len(record["texts"]) == 1 and record["agreement"] is None

    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(8000), 16000)
    for other in (silent, tmp_path / "missing.wav"):
        code, out, err = _run(capsys, ["--model", str(model_dir), "--compare", str(a),
                                       str(other)])
        assert code == 1 and out == "" and str(other) in err and "Traceback" not in err


def test_compare_disagreeing_orders_exit_0(model_dir, audio_dir, capsys, monkeypatch):
    from speechbrain_alld.models.audio_llm import AudioLLM

    monkeypatch.setattr(AudioLLM, "generate",
                        lambda self, audios, prompts, **kw: ["I prefer Speech A."] * len(audios))
    a, b = audio_dir / "a.wav", audio_dir / "b.wav"
    code, out, err = _run(capsys, ["--model", str(model_dir), "--compare", str(a), str(b)])
    record = json.loads(out)
    assert code == 0, err
    assert record["verdict"] is None and record["agreement"] is False
    assert "orders disagree" in record["note"]


def test_installed_console_script(model_dir, audio_dir, tmp_path):
    script = shutil.which("alld-evaluate") or str(Path(sys.executable).parent / "alld-evaluate")
    if not Path(script).is_file():
        pytest.skip("alld-evaluate is not installed (pip install -e .)")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"xx")
    table = tmp_path / "r.csv"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([script, "--model", str(model_dir), "--device", "cpu",
                           "--batch-size", "2", "--output", str(table), str(audio_dir),
                           str(bad)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert "described 4, skipped 1" in proc.stderr and f"{bad}: cannot read audio" in proc.stderr
    assert "describing" in proc.stderr  # the progress bar
    assert "Traceback" not in proc.stderr
    with open(table, encoding="utf-8", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
