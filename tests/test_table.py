"""The miniature reproduction table: aggregation and markdown (pure), a CI-sized run of the
table script, and learning on held-out simulated clips (SFT and the regression baseline)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from speechbrain_alld.parsing import parse_mos
from speechbrain_alld.table import (
    END_MARKER,
    START_MARKER,
    aggregate,
    format_cell,
    markdown_table,
    replace_section,
)

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes/Simulated/ALLD"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


# ------------------------------------------------------------------------------ pure parts
def test_aggregate_matches_numpy():
    rng = np.random.default_rng(0)
    values = rng.normal(size=5).tolist()
    per_seed = {str(k): v for k, v in enumerate(values)} | {"5": None, "6": math.nan}
    agg = aggregate(per_seed)
    assert agg["n"] == 5 and agg["n_missing"] == 2
    assert agg["mean"] == pytest.approx(np.mean(values), abs=1e-12)
    assert agg["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    assert (agg["min"], agg["max"]) == (min(values), max(values))
    one = aggregate({"0": 0.25})
    assert one["mean"] == 0.25 and math.isnan(one["std"])
    assert aggregate({"0": None})["n"] == 0 and math.isnan(aggregate({"0": None})["mean"])


def test_format_cell():
    agg = aggregate({"0": 0.5, "1": 0.7, "2": None})
    assert format_cell(agg, "pct") == "60.0% ± 14.1 (2/3)"
    assert format_cell(aggregate({"0": 0.1234, "1": 0.1234}), "f3") == "0.123 ± 0.000"
    assert format_cell(aggregate({"0": 1.0}), "f1") == "1.0"
    assert format_cell(aggregate({"0": None}), "f1") == "n/a"
    with pytest.raises(ValueError, match="unknown format"):
        format_cell(aggregate({"0": 1.0}), "x")


def test_markdown_table_is_well_formed():
    columns = [["LCC", "mos_lcc", "f3"], ["A/B acc", "ab_accuracy", "pct"]]
    results = {"SFT": {"mos_lcc": aggregate({"0": 0.5, "1": 0.6})},
               "A/B only": {"ab_accuracy": aggregate({"0": 0.7, "1": 0.8})}}
    lines = markdown_table(results, columns).splitlines()
    assert lines[0] == "| system | LCC | A/B acc |"
    assert all(line.count("|") == 4 for line in lines)
    assert lines[2].startswith("| SFT | 0.550 ± 0.071 | – |")
    assert lines[3] == "| A/B only | – | 75.0% ± 7.1 |"


def test_replace_section():
    text = f"intro\n{START_MARKER}\nold\n{END_MARKER}\noutro\n"
    new = replace_section(text, "new table")
    assert new == f"intro\n{START_MARKER}\nnew table\n{END_MARKER}\noutro\n"
    assert replace_section(new, "new table") == new
    appended = replace_section("just text\n", "t")
    assert appended == f"just text\n\n{START_MARKER}\nt\n{END_MARKER}\n"
    with pytest.raises(ValueError, match="without"):
        replace_section(f"{END_MARKER}\n{START_MARKER}", "t")


# ------------------------------------------------------------------------------ the script
SMALL = ("{corpus_folder: '{output_folder}/corpus_{seed}', train_size: 96, valid_size: 16, "
         "test_size: 48, num_workers: 1}")
CHAIN = ("{sft: {number_of_epochs: 1}, alld: {number_of_epochs: 1, lr: 0.00001, "
         "loss: {beta: 0.4}}, max_new_tokens: 24, "
         "tiny: {expert_steps: 5, policy_config: {audio_dim: 32, audio_layers: 1, "
         "text_dim: 32, text_layers: 1}, expert_config: {hidden_size: 32, num_layers: 1}}}")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    readme = root / "README.md"
    readme.write_text(f"# Recipe\n\nprose before\n\n{START_MARKER}\nold\n{END_MARKER}\n\nafter\n")
    cmd = [sys.executable, str(RECIPES / "run_table.py"), str(RECIPES / "hparams/table.yaml"),
           "--seeds=[0]", f"--output_folder={root / 'table'}", f"--readme={readme}",
           f"--recipe_folder={RECIPES}", f"--common_overrides={SMALL}",
           f"--chain_overrides={CHAIN}",
           "--regression_overrides={number_of_epochs: 15, batch_size: 8}",
           "--noprogressbar"]
    proc = subprocess.run(cmd, cwd=root, env=ENV, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, readme, proc, cmd


def test_table_script_writes_a_well_formed_table(table_run):
    root, readme, proc, _ = table_run
    text = readme.read_text()
    assert text.startswith("# Recipe\n\nprose before\n\n" + START_MARKER)
    assert text.rstrip().endswith(f"{END_MARKER}\n\nafter")
    section = text[text.index(START_MARKER):text.index(END_MARKER)]
    assert "\nold\n" not in text  # the previous content is replaced
    assert "Command: `python " in section and "cores" in section and "Wall time" in section
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    header = rows[0]
    n_cols = header.count("|")
    assert all(line.count("|") == n_cols for line in rows)
    config_rows = ["Regression (same encoder + MSE head)", "SFT, MOS + A/B (warm-up half)",
                   "SFT + ALLD, MOS + A/B", "SFT, A/B only", "SFT + ALLD, A/B only",
                   "ALLD without warm-up (lr 1e-3)"]
    assert [r.split(" | ")[0][2:] for r in rows[1:] if not r.startswith("|---")] == config_rows
    # The table's numbers are the runs' own test summaries.
    table = json.loads((root / "table" / "table.json").read_text())
    summary = json.loads((root / "table/seed_0/regression/test_regression_summary.json")
                         .read_text())
    assert table["per_seed"][config_rows[0]]["0"]["mos_lcc"] == summary["mos_lcc"]
    reg_cell = rows[1].split(" | ")[2]  # rows[0] is the header (the rule row starts "|-")
    assert reg_cell == f"{summary['mos_lcc']:.3f}"
    runs = json.loads((root / "table" / "runs.json").read_text())
    assert set(runs) == {f"{n}/seed_0" for n in ("regression", "joint", "ab_only",
                                                 "no_warmup")}
    assert all(r["seconds"] > 0 for r in runs.values())
    assert section[len(START_MARKER):].strip() in proc.stdout  # printed == written


def test_table_script_resumes_without_rerunning(table_run):
    root, readme, _, cmd = table_run
    runs_before = (root / "table" / "runs.json").read_text()
    table_before = (root / "table" / "table.md").read_text()
    proc = subprocess.run(cmd, cwd=root, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (root / "table" / "runs.json").read_text() == runs_before
    assert (root / "table" / "table.md").read_text() == table_before


def test_regression_baseline_learns_on_held_out_clips(table_run):
    root = table_run[0]
    items = [json.loads(x) for x in (root / "table/seed_0/regression/"
                                     "test_regression_items.jsonl").read_text().splitlines()]
    pred = np.array([it["mos_pred"] for it in items])
    true = np.array([it["mos"] for it in items])
    r, p = sps.pearsonr(pred, true)
    assert len(items) == 48 and r > 0.3 and p < 0.05, (r, p)


# ------------------------------------------------------------------------------ SFT learns
def test_sft_mos_lcc_on_held_out_clips_is_clearly_positive(tmp_path):
    """The descriptive model itself learns MOS from audio: unseen test sentences and clips."""
    out = tmp_path / "sft"
    cmd = [sys.executable, str(RECIPES / "train.py"), str(RECIPES / "hparams/alld.yaml"),
           f"--output_folder={out}", f"--corpus_folder={tmp_path / 'corpus'}",
           "--train_size=480", "--valid_size=8", "--test_size=64", "--num_workers=1",
           "--tasks=[mos]", "--run_alld=False", "--testing={models: [sft]}",
           "--examples={warmup_fraction: 1.0}", "--sft={number_of_epochs: 7}",
           "--tiny={expert_steps: 5}", "--max_new_tokens=96", "--noprogressbar"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    items = [json.loads(x) for x in (out / "save/test/sft/test_sft_items.jsonl").read_text()
             .splitlines()]
    assert len(items) == 64
    pairs = [(parse_mos(it["text"]), it["mos"]) for it in items]
    parsed = [(p, t) for p, t in pairs if p is not None]
    assert len(parsed) >= 0.9 * len(items), [it["text"] for it in items[:3]]
    r, p = sps.pearsonr([x for x, _ in parsed], [y for _, y in parsed])
    assert r > 0.3 and p < 0.01, (r, p)


def test_run_table_starts_a_seeds_runs_after_its_corpus_run(tmp_path, monkeypatch):
    """The scheduler alone (the processes replaced by sleeps): the first run of each seed
    (which makes the seed's corpus) ends before any other run of that seed starts, and
    ``parallel`` runs overlap."""
    import threading
    import time

    import speechbrain_alld.table as table

    log, lock = [], threading.Lock()

    def fake_run(config, name, seed, python, threads):
        with lock:
            log.append(("start", name, seed, time.perf_counter()))
        time.sleep(0.2 if name == "corpus" else 0.05)
        folder = tmp_path / f"seed_{seed}" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "s.json").write_text(json.dumps({"mos_lcc": 0.1 * seed}))
        with lock:
            log.append(("end", name, seed, time.perf_counter()))
        return ["cmd"], 0.05

    monkeypatch.setattr(table, "_run_one", fake_run)
    config = {"output_folder": str(tmp_path), "seeds": [0, 1, 2], "parallel": 2,
              "runs": {n: {"rows": {f"row {n}": "s.json"}} for n in ("corpus", "b", "c")},
              "columns": [["LCC", "mos_lcc", "f3"]]}
    result = table.run_table(config, progress=False)
    ends = {(n, s): t for e, n, s, t in log if e == "end"}
    starts = {(n, s): t for e, n, s, t in log if e == "start"}
    assert len(starts) == 9
    for (name, seed), t in starts.items():
        if name != "corpus":
            assert t >= ends[("corpus", seed)], (name, seed)
    assert starts[("corpus", 1)] < ends[("corpus", 0)]  # two at once
    assert result["results"]["row b"]["mos_lcc"]["mean"] == pytest.approx(0.1)
    log.clear()
    table.run_table(config, progress=False)  # everything finished: nothing runs again
    assert log == []
