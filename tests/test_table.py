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
TINY = ("max_new_tokens: 24, tiny: {pretrained_policy: null, expert_steps: 5, policy_config: "
        "{audio_dim: 32, audio_layers: 1, text_dim: 32, text_layers: 1}, "
        "expert_config: {hidden_size: 32, num_layers: 1}}")
WARMUP = "{sft: {number_of_epochs: 1}, " + TINY + "}"
ALLD = "{alld: {number_of_epochs: 1, lr: 0.00001, loss: {beta: 0.4}}, " + TINY + "}"
SFT_ALL = ("{run_alld: False, examples: {warmup_fraction: 1.0}, testing: {models: [sft]}, "
           "sft: {number_of_epochs: 1, optimizer_step_limit: 20}, " + TINY + "}")
ROWS = ["Listener-noise ceiling (the noise-free ratings)",
        "Regression (pretrained encoder + MSE head)", "SFT only (all items, same steps)",
        "SFT warm-up (half of the items)", "SFT warm-up + ALLD (other half)",
        "A/B only: SFT warm-up", "A/B only: SFT warm-up + ALLD", "ALLD without warm-up"]


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    readme = root / "README.md"
    readme.write_text(f"# Recipe\n\nprose before\n\n{START_MARKER}\nold\n{END_MARKER}\n\nafter\n")
    # The ALLD runs start only with a validated setting equal to theirs (select_setting.py's
    # record; the grid itself is tested in tests/test_table_select.py).
    import yaml
    selection = root / "selection.json"
    selection.write_text(json.dumps({"row": "grid row", "seeds": [0],
                                     "overrides": yaml.safe_load(ALLD)}))
    cmd = [sys.executable, str(RECIPES / "run_table.py"), str(RECIPES / "hparams/table.yaml"),
           "--seeds=[0]", f"--output_folder={root / 'table'}", f"--readme={readme}",
           f"--archive_folder={root / 'archive'}",
           f"--recipe_folder={RECIPES}", f"--common_overrides={SMALL}",
           f"--warmup_overrides={WARMUP}", f"--alld_overrides={ALLD}",
           f"--sft_all_overrides={SFT_ALL}",
           f"--requires_selection={{budget: alld_overrides, file: {selection}}}",
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
    blocks, block = [], []  # the markdown tables of the section: systems, then comparisons
    for line in section.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            blocks, block = blocks + [block], []
    assert len(blocks) == 2, section
    rows = blocks[0]
    n_cols = rows[0].count("|")
    assert all(line.count("|") == n_cols for line in rows)
    table_rows = [r for r in rows[1:] if not r.startswith("|---")]
    assert [r.split(" | ")[0][2:] for r in table_rows] == ROWS
    # Five comparisons x one seed (a mean row would only repeat it), each a well-formed row.
    comparison_rows = [r for r in blocks[1][1:] if not r.startswith("|---")]
    assert len(comparison_rows) == 5
    assert all(r.count("|") == blocks[1][0].count("|") for r in comparison_rows)
    # The table's numbers are the runs' own test summaries.
    table = json.loads((root / "table" / "table.json").read_text())
    summary = json.loads((root / "table/seed_0/regression/test_regression_summary.json")
                         .read_text())
    assert table["per_seed"][ROWS[1]]["0"]["mos_lcc"] == summary["mos_lcc"]
    reg_cell = table_rows[1].split(" | ")[2]
    assert reg_cell == f"{summary['mos_lcc']:.3f}"
    runs = json.loads((root / "table" / "runs.json").read_text())
    assert set(runs) == {f"{n}/seed_0" for n in ("ceiling", "regression", "sft_all", "warmup",
                                                 "joint", "ab_warmup", "ab_only", "no_warmup")}
    assert all(r["seconds"] > 0 for r in runs.values())
    assert section[len(START_MARKER):].strip() in proc.stdout  # printed == written


def _items(path):
    return {json.loads(x)["id"]: json.loads(x) for x in path.read_text().splitlines()}


def test_table_comparisons_and_ceiling_are_the_runs_numbers(table_run):
    """Independent recomputations: the paired MSE difference of ALLD minus its warm-up on
    the items both parsed, the listener ceiling from the corpus CSV, and the SFT-only run's
    stop at its optimiser-step limit."""
    root = table_run[0]
    seed = root / "table/seed_0"
    table = json.loads((root / "table" / "table.json").read_text())
    sft = _items(seed / "warmup/save/test/sft/test_sft_items.jsonl")
    alld = _items(seed / "joint/save/test/alld/test_alld_items.jsonl")
    both = [k for k in sft if k.startswith("mos:") and sft[k]["mos_pred"] is not None
            and alld[k]["mos_pred"] is not None]
    result = table["comparisons"]["ALLD minus its warm-up"]
    if len(both) >= 3:  # the tiny 1-epoch models may write no parsable MOS
        target = np.array([sft[k]["mos"] for k in both])
        mse = [float(np.mean((np.array([x[k]["mos_pred"] for k in both]) - target) ** 2))
               for x in (sft, alld)]
        record = result["per_seed"]["0"]["mse"]
        assert record["n"] == len(both)
        assert math.isclose(record["difference"], mse[1] - mse[0], abs_tol=1e-9)
        assert record["ci_low"] <= record["difference"] <= record["ci_high"]
    else:
        assert "mse" not in result["per_seed"]["0"] and "mse" not in result["mean"]
    pairs = [k for k in sft if k.startswith("ab:")]
    accuracy = [np.mean([x[k]["verdict_pred"] == x[k]["winner"] for k in pairs])
                for x in (sft, alld)]
    record = result["per_seed"]["0"]["ab_accuracy"]
    assert record["n"] == len(pairs) > 0
    assert math.isclose(record["difference"], accuracy[1] - accuracy[0], abs_tol=1e-9)
    assert record["ci_low"] <= record["difference"] <= record["ci_high"]
    # One seed: the mean of seeds is that seed's difference.
    assert math.isclose(result["mean"]["ab_accuracy"]["difference"], record["difference"],
                        abs_tol=1e-9)

    import csv
    rows = [r for r in csv.DictReader(open(root / "table/corpus_0/NISQA_corpus_file.csv"))
            if r["db"] == "NISQA_TEST_SIM"]
    r, _ = sps.pearsonr([float(x["sim_true_mos"]) for x in rows],
                        [float(x["mos"]) for x in rows])
    ceiling = table["per_seed"][ROWS[0]]["0"]["mos_lcc"]
    assert len(rows) == 48 and math.isclose(ceiling, r, abs_tol=1e-9)

    import yaml
    brain = sorted((seed / "sft_all/save/sft/checkpoints").glob("CKPT*/brain.ckpt"))
    assert brain and yaml.safe_load(brain[-1].read_text())["optimizer_step"] == 20


def test_table_script_resumes_without_rerunning(table_run):
    root, readme, _, cmd = table_run
    runs_before = (root / "table" / "runs.json").read_text()
    table_before = (root / "table" / "table.md").read_text()
    proc = subprocess.run(cmd, cwd=root, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (root / "table" / "runs.json").read_text() == runs_before
    assert (root / "table" / "table.md").read_text() == table_before
    archived = json.loads((root / "archive" / "runs.json").read_text())
    assert set(archived) == set(json.loads(runs_before))
    assert (root / "archive/seed_0/joint/save/test/alld/test_alld_items.jsonl").read_bytes() == \
        (root / "table/seed_0/joint/save/test/alld/test_alld_items.jsonl").read_bytes()
    # The warm-ups' models and experts are kept, byte for byte, and the ALLD runs started from
    # that model with that expert.
    def files(folder):
        return {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()}

    for run, alld in (("warmup", "joint"), ("ab_warmup", "ab_only")):
        for part in ("sft/model", "tiny/expert"):
            made = files(root / f"table/seed_0/{run}/save/{part}")
            assert "model.safetensors" in made
            assert files(root / f"archive/seed_0/{run}/save/{part}") == made
        assert files(root / f"table/seed_0/{alld}/save/tiny/expert") == \
            files(root / f"table/seed_0/{run}/save/tiny/expert")
        command = " ".join(json.loads((root / "table/runs.json").read_text())
                           [f"{alld}/seed_0"]["command"])
        assert f"{root / 'archive'}/seed_0/{run}/save/sft/model" in command
        assert f"{root / 'archive'}/seed_0/{run}/save/tiny/expert" in command


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
    """The descriptive model itself learns MOS from audio: unseen test sentences and clips
    (the embedded default's policy: the shipped pretrained tiny Qwen2-Audio)."""
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
        return table.run_command(config, name, seed, python), 0.05

    monkeypatch.setattr(table, "_run_one", fake_run)
    config = {"output_folder": str(tmp_path), "seeds": [0, 1, 2], "parallel": 2,
              "recipe_folder": "r", "runs": {n: {"script": "t.py", "hparams": "h.yaml",
                                                 "rows": {f"row {n}": "s.json"}}
                                             for n in ("corpus", "b", "c")},
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


def test_wall_times_carry_rounded_seconds_into_the_minute():
    from speechbrain_alld.table import _minutes

    assert _minutes(3239.7) == "54 min 00 s"  # not "53 min 60 s"
    assert _minutes(59.4) == "0 min 59 s"
    assert _minutes(125.0) == "2 min 05 s"
