"""The table's archive of finished runs: a table resumes on a machine that lost its outputs,
reads exactly the archived numbers, and refuses results made with other settings.

The runs' processes are replaced by a function that writes a run's test files (the recipes
themselves are run by tests/test_table.py); everything else is the real scheduler."""

import json
import shutil
import threading

import numpy as np
import pytest

import speechbrain_alld.table as table
import speechbrain_alld.table_archive as table_archive
from speechbrain_alld.table_compare import ab_breakdown, pair_gaps


def _fake_runs(monkeypatch):
    """Replace the run processes by a writer of deterministic test files; returns the log."""
    log, lock = [], threading.Lock()

    def fake_run(config, name, seed, python, threads):
        cmd = table.run_command(config, name, seed, python)
        rng = np.random.default_rng([len(name), int(seed)])
        folder = table.Path(config["output_folder"]) / f"seed_{seed}" / name
        (folder / "save/data").mkdir(parents=True, exist_ok=True)
        (folder / "model.bin").write_bytes(b"weights")  # what the archive must not keep
        true = rng.uniform(1, 5, size=12)
        items = [{"id": f"mos:c{k}", "mos": float(t), "mos_pred": float(t + rng.normal())}
                 for k, t in enumerate(true)]
        gaps = rng.uniform(0, 2, size=10)
        items += [{"id": f"ab:p{k}", "winner": "A", "verdict_pred": "AB"[int(rng.random() < .3)]}
                  for k in range(10)]
        (folder / "test_items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
        manifest = {f"ab:p{k}": {"task": "ab", "gap": float(g), "prompt": "long text " * 50}
                    for k, g in enumerate(gaps)}
        manifest["mos:c0"] = {"task": "mos", "gap": None, "prompt": "x"}
        (folder / "save/data/test.json").write_text(json.dumps(manifest))
        pred = np.array([i["mos_pred"] for i in items[:12]])
        (folder / "test_summary.json").write_text(json.dumps(
            {"mos_lcc": float(np.corrcoef(pred, true)[0, 1]), "ab_n": 10}))
        with lock:
            log.append((name, seed))
        return cmd, 1.5

    monkeypatch.setattr(table, "_run_one", fake_run)
    return log


def _forget(root, key):
    """Drop one run's record from the archive (as if it had never finished there)."""
    records = json.loads((root / "archive/runs.json").read_text())
    del records[key]
    (root / "archive/runs.json").write_text(json.dumps(records))


def _config(root, **runs_overrides):
    runs = {n: {"script": "train.py", "hparams": "h.yaml", "overrides": {"lr": 1},
                "rows": {f"row {n}": "test_summary.json"}} for n in ("corpus", "b", "c")}
    for name, spec in runs_overrides.items():
        runs[name].update(spec)
    return {"output_folder": str(root / "out"), "archive_folder": str(root / "archive"),
            "recipe_folder": "recipes/X", "seeds": [0, 1], "parallel": 2, "bootstrap": 200,
            "runs": runs,
            "columns": [["LCC", "mos_lcc", "f3"], ["clear", "ab_acc_clear", "pct"]],
            "comparisons": [{"name": "c minus b", "a": ["b", "test_summary.json"],
                             "b": ["c", "test_summary.json"]}],
            "comparison_columns": [["LCC", "lcc", "f3"], ["A/B acc", "ab_accuracy", "pct"]]}


def test_an_archived_table_resumes_on_a_machine_without_its_outputs(tmp_path, monkeypatch):
    log = _fake_runs(monkeypatch)
    monkeypatch.setattr(table_archive, "git_commit", lambda cwd=".": "0123456789abcdef")
    config = _config(tmp_path)
    first = table.run_table(config, progress=False)
    assert sorted(log) == sorted((n, s) for n in ("corpus", "b", "c") for s in (0, 1))
    # The run log in the output folder has no commit; the archive's record does, and wins.
    assert first["commits"] == "Runs made at commit 0123456 (6)."
    archive = tmp_path / "archive"
    kept = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*") if p.is_file())
    assert "seed_0/b/model.bin" not in kept
    assert {"seed_0/b/test_summary.json", "seed_0/b/test_items.jsonl",
            "seed_0/b/save/data/test.json", "runs.json", "wall.json"} <= set(kept)
    # The manifest keeps the A/B gaps only, and they give the same breakdown.
    out_manifest = tmp_path / "out/seed_0/b/save/data/test.json"
    assert pair_gaps(archive / "seed_0/b/save/data/test.json") == pair_gaps(out_manifest)
    assert "prompt" not in (archive / "seed_0/b/save/data/test.json").read_text()
    records = json.loads((archive / "runs.json").read_text())
    assert records["b/seed_1"]["seconds"] == 1.5
    assert records["b/seed_1"]["command"][0] == "recipes/X/train.py"  # no interpreter

    shutil.rmtree(tmp_path / "out")  # a new machine: the outputs are gone
    log.clear()
    again = table.run_table(config, progress=False)
    assert log == []
    assert again["per_seed"] == first["per_seed"] and again["results"] == first["results"]
    assert again["comparisons"] == first["comparisons"]
    assert again["run_seconds"] == first["run_seconds"]
    # The breakdown is the archived files' own (recomputed here from them).
    items = table.read_items(archive / "seed_1/c/test_items.jsonl")
    expected = ab_breakdown(items, pair_gaps(archive / "seed_1/c/save/data/test.json"))
    assert again["per_seed"]["row c"]["1"]["ab_acc_clear"] == expected["ab_acc_clear"]
    assert again["commits"] == "Runs made at commit 0123456 (6)."
    text = table.report(again, config, "python run_table.py t.yaml")
    assert again["commits"] in text


def test_a_run_made_with_other_settings_is_refused_not_reused(tmp_path, monkeypatch):
    log = _fake_runs(monkeypatch)
    table.run_table(_config(tmp_path), progress=False)
    shutil.rmtree(tmp_path / "out")
    changed = _config(tmp_path, c={"overrides": {"lr": 2}})
    with pytest.raises(ValueError, match=r"c/seed_0.*\n.*was: --lr=1\n  now: --lr=2"):
        table.run_table(changed, progress=False)
    # In the output folder too (same machine, changed budget).
    log.clear()
    shutil.rmtree(tmp_path / "archive")
    table.run_table(_config(tmp_path), progress=False)
    with pytest.raises(ValueError, match="another command"):
        table.run_table(_config(tmp_path, b={"overrides": {"lr": 3}}), progress=False)


def test_only_missing_runs_run_again_and_the_corpus_run_first(tmp_path, monkeypatch):
    log = _fake_runs(monkeypatch)
    config = _config(tmp_path)
    table.run_table(config, progress=False)
    shutil.rmtree(tmp_path / "out")
    _forget(tmp_path, "b/seed_1")
    log.clear()
    table.run_table(config, progress=False)
    # b/seed_1 is missing; seed 1's corpus run remakes the corpus it reads; seed 0 is whole.
    assert log == [("corpus", 1), ("b", 1)]


def test_a_run_that_needs_an_archived_runs_model_is_refused(tmp_path, monkeypatch):
    _fake_runs(monkeypatch)
    config = _config(tmp_path, c={"after": ["b"]})
    table.run_table(config, progress=False)
    shutil.rmtree(tmp_path / "out")
    _forget(tmp_path, "c/seed_0")
    with pytest.raises(ValueError, match=r"c/seed_0 starts from b/seed_0's folder.*archived"):
        table.run_table(config, progress=False)


def test_a_kept_model_lets_a_later_sitting_run_the_dependent_run(tmp_path, monkeypatch):
    """b keeps its model in the archive: after the outputs are lost, c (after: b) still runs,
    b is not retrained, and c's command points at the archived copy."""
    log = _fake_runs(monkeypatch)
    config = _config(tmp_path, b={"keep": ["model.bin"]},
                     c={"after": ["b"], "overrides": {"lr": 1,
                                                       "model": "{archive_folder}/seed_{seed}/b"}})
    table.run_table(config, progress=False)
    assert (tmp_path / "archive/seed_0/b/model.bin").read_bytes() == b"weights"
    assert not (tmp_path / "archive/seed_0/c/model.bin").exists()  # c keeps nothing
    shutil.rmtree(tmp_path / "out")
    _forget(tmp_path, "c/seed_0")
    log.clear()
    table.run_table(config, progress=False)
    assert log == [("corpus", 0), ("c", 0)]
    command = table.run_command(config, "c", 0)
    assert f"--model={tmp_path / 'archive'}/seed_0/b" in command
    # A kept path the run did not write is an error naming it, not a silent gap.
    config["runs"]["c"]["keep"] = ["missing.bin"]
    _forget(tmp_path, "c/seed_1")
    with pytest.raises(FileNotFoundError, match="c/seed_1 keeps missing.bin"):
        table.run_table(config, progress=False)


def test_only_runs_a_subset_and_the_partial_table_says_what_is_missing(tmp_path, monkeypatch):
    """A sitting that runs part of a table (``only``) still writes a table: the finished runs'
    numbers, the missing ones named, and no mean of seeds for a comparison with seeds to go."""
    log = _fake_runs(monkeypatch)
    monkeypatch.setattr(table_archive, "git_commit", lambda cwd=".": "0123456789abcdef")
    config = {**_config(tmp_path), "only": ["b"]}
    nothing = table.run_table({**config, "only": []}, progress=False)  # starts no run at all
    assert log == [] and len(nothing["missing"]) == 6
    partial = table.run_table(config, progress=False)
    assert sorted(log) == [("b", 0), ("b", 1), ("corpus", 0), ("corpus", 1)]
    assert partial["missing"] == ["c/seed_0", "c/seed_1"]
    assert partial["commits"] == "Runs made at commit 0123456 (4)."  # the 4 finished ones
    assert table_archive.commits_line({}, ["b/seed_0"]) == "Runs made at commit unrecorded (1)."
    assert partial["results"]["row c"] == {}  # its cells print as "–"
    assert "c minus b" not in partial["comparisons"]
    text = table.report(partial, config, "python run_table.py t.yaml --only=[b]")
    assert "**Not run yet** (2 of 6 runs" in text and "c/seed_0, c/seed_1." in text
    # One seed of c: its comparison has that seed's row and no mean of seeds yet.
    log.clear()
    table.run_table({**config, "only": ["c"], "seeds": [0]}, progress=False)
    assert log == [("c", 0)]
    half = table.collect_table(config)
    assert half["missing"] == ["c/seed_1"]
    compared = half["comparisons"]["c minus b"]
    assert set(compared["per_seed"]) == {"0"} and compared["mean"] == {}
    whole = table.run_table({**config, "only": None}, progress=False)
    assert log == [("c", 0), ("c", 1)] and whole["missing"] == []
    assert whole["comparisons"]["c minus b"]["per_seed"]["0"] == compared["per_seed"]["0"]
    assert whole["comparisons"]["c minus b"]["mean"]["lcc"]["seeds"] == 2
    log.clear()
    assert table.run_table({**config, "only": []}, progress=False) == whole and log == []
    with pytest.raises(ValueError, match=r"only: \['d'\] are not runs"):
        table.run_table({**config, "only": ["d"]}, progress=False)
