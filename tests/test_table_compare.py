"""The table's paired comparisons read from items files, checked against numpy and scipy."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from speechbrain_alld.stats import read_items
from speechbrain_alld.table_compare import (
    ab_breakdown,
    compare_systems,
    comparison_markdown,
    format_difference,
    items_path,
    pair_gaps,
)

# --- files ----------------------------------------------------------------------------------


def test_items_path(tmp_path):
    summary = tmp_path / "seed_1" / "alld" / "test_alld_summary.json"
    assert items_path(summary) == tmp_path / "seed_1" / "alld" / "test_alld_items.jsonl"
    assert items_path("test_x_summary.json") == items_path("test_x_summary.json")
    assert str(items_path("a/b/test_sft_y_summary.json")) == "a/b/test_sft_y_items.jsonl"
    for bad in ("test_alld_items.jsonl", "summary.json.bak", "test_alld.json"):
        with pytest.raises(ValueError, match="not a test summary"):
            items_path(tmp_path / bad)


def write_jsonl(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_read_items_keys(tmp_path):
    rows = [{"id": "mos:c1", "mos_pred": 3.1, "mos": 3.0},
            {"id": "ab:p1", "verdict_pred": "A", "winner": "A"},
            {"id": "c2", "mos_pred": 2.0, "mos": 2.5},  # a regression run's plain clip id
            {"id": 7, "mos_pred": None, "mos": 4.0}]
    path = write_jsonl(tmp_path / "items.jsonl",
                       [json.dumps(rows[0]), "", "   ", *(json.dumps(r) for r in rows[1:])])
    items = read_items(path)
    assert list(items) == ["mos:c1", "ab:p1", "mos:c2", "mos:7"]
    assert items["mos:c2"] == rows[2] and items["ab:p1"]["verdict_pred"] == "A"
    assert items["mos:7"]["mos_pred"] is None
    assert read_items(write_jsonl(tmp_path / "empty.jsonl", [])) == {}


@pytest.mark.parametrize("bad", ['{"id": "mos:b", "mos": 3', '{"mos_pred": 3.0, "mos": 3.0}',
                                 "not json"])
def test_read_items_bad_line_names_file_and_line(tmp_path, bad):
    path = write_jsonl(tmp_path / "items.jsonl",
                       [json.dumps({"id": "mos:a", "mos": 3.0}), "", bad])
    with pytest.raises(ValueError, match="line 3: not an item record") as err:
        read_items(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("bad", ["42", "null", '["mos:a"]'])
def test_read_items_non_object_line_names_file_and_line(tmp_path, bad):
    path = write_jsonl(tmp_path / "items.jsonl", [json.dumps({"id": "mos:a", "mos": 3.0}), bad])
    with pytest.raises(ValueError, match="line 2"):
        read_items(path)


def test_pair_gaps(tmp_path):
    manifest = {"ab:p1": {"task": "ab", "gap": 0.7}, "ab:p2": {"task": "ab", "gap": 1.25},
                "ab:p3": {"task": "ab", "gap": 0}, "mos:c1": {"task": "mos", "gap": -1.0},
                "ab:p4": {"task": "ab", "gap": -1.0},  # the collated "no gap" value
                "ab:p5": {"task": "ab", "gap": None}}
    path = tmp_path / "test.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    assert pair_gaps(path) == {"ab:p1": 0.7, "ab:p2": 1.25, "ab:p3": 0.0}
    path.write_text(json.dumps({"mos:c1": {"task": "mos"}}), encoding="utf-8")
    assert pair_gaps(path) == {}
    path.write_text(json.dumps({"ab:p1": {"task": "ab"}, "mos:c": {"task": "mos"}}),
                    encoding="utf-8")
    with pytest.raises(ValueError, match="carry no 'gap'"):
        pair_gaps(path)


# --- A/B breakdown --------------------------------------------------------------------------

def ab_item(verdict, winner):
    return {"verdict_pred": verdict, "winner": winner, "text": "..."}


def test_ab_breakdown_by_hand():
    items = {
        "ab:1": ab_item("A", "A"), "ab:2": ab_item("B", "A"),          # gaps < 0.25
        "ab:3": ab_item(None, "B"), "ab:4": ab_item("B", "B"),         # 0.25-0.5
        "ab:5": ab_item("A", "A"), "ab:6": ab_item("A", "B"),          # 0.5-1
        "ab:7": ab_item("B", "B"),
        "ab:8": ab_item(None, "A"), "ab:9": ab_item("A", "A"),         # >= 1
        "mos:c1": {"mos_pred": 3.0, "mos": 3.1},                       # not an A/B item
    }
    gaps = {"ab:1": 0.1, "ab:2": 0.2, "ab:3": 0.25, "ab:4": 0.49, "ab:5": 0.5, "ab:6": 0.75,
            "ab:7": 0.99, "ab:8": 1.0, "ab:9": 3.2, "ab:unused": 0.3}
    out = ab_breakdown(items, gaps)
    expected = {"ab_acc_<0.25": 1 / 2, "ab_n_<0.25": 2, "ab_acc_0.25-0.5": 1 / 2,
                "ab_n_0.25-0.5": 2, "ab_acc_0.5-1": 2 / 3, "ab_n_0.5-1": 3,
                "ab_acc_>=1": 1 / 2, "ab_n_>=1": 2,
                # clear: gap >= 0.5 -> items 5..9, correct 5, 7, 9 (8 unparsed: wrong)
                "ab_acc_clear": 3 / 5, "ab_n_clear": 5}
    assert out.keys() == expected.keys()
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-12), key


def test_ab_breakdown_random_against_hand_count():
    rng = np.random.default_rng(2)
    n = 400
    winners = rng.choice(["A", "B"], n)
    verdicts = [None if rng.random() < 0.1 else str(rng.choice(["A", "B", "tie"]))
                for _ in range(n)]
    gap_values = np.round(rng.uniform(0, 2.5, n), 2)
    items = {f"ab:{k}": ab_item(verdicts[k], str(winners[k])) for k in range(n)}
    gaps = {f"ab:{k}": float(gap_values[k]) for k in range(n)}
    out = ab_breakdown(items, gaps)
    correct = np.array([v is not None and v == w for v, w in zip(verdicts, winners)])
    edges = [(0.0, 0.25, "<0.25"), (0.25, 0.5, "0.25-0.5"), (0.5, 1.0, "0.5-1"),
             (1.0, np.inf, ">=1")]
    for lo, hi, label in edges:
        mask = (gap_values >= lo) & (gap_values < hi)
        assert out[f"ab_n_{label}"] == int(mask.sum())
        assert out[f"ab_acc_{label}"] == pytest.approx(correct[mask].mean(), abs=1e-12)
    clear = gap_values >= 0.5
    assert out["ab_n_clear"] == int(clear.sum())
    assert out["ab_acc_clear"] == pytest.approx(correct[clear].mean(), abs=1e-12)


def test_ab_breakdown_edge_cases():
    # No pair is clear: no ab_acc_clear; empty bins are left out.
    out = ab_breakdown({"ab:x": ab_item("A", "A")}, {"ab:x": 0.3})
    assert out == {"ab_acc_0.25-0.5": 1.0, "ab_n_0.25-0.5": 1}
    assert ab_breakdown({"mos:c": {"mos_pred": 1.0}}, {}) == {}
    with pytest.raises(ValueError, match="no gap"):
        ab_breakdown({"ab:x": ab_item("A", "A"), "ab:y": ab_item("B", "B")}, {"ab:x": 1.0})


def test_ab_breakdown_bins_a_float_gap_of_one_as_at_least_one():
    gap = abs(4.1 - 3.1)  # how a pair's gap is recorded: |MOS_A - MOS_B| unrounded
    out = ab_breakdown({"ab:x": ab_item("A", "A")}, {"ab:x": gap})
    assert out.get("ab_n_>=1") == 1


# --- paired comparisons ---------------------------------------------------------------------

def make_seed(rng, n_mos=60, n_ab=80, noise_a=0.8, noise_b=0.3, acc_a=0.6, acc_b=0.9):
    """Items of two systems on the same test set, with some unparsed and unshared items."""
    target = np.round(rng.uniform(1, 5, n_mos), 2)
    items_a, items_b = {}, {}
    for k in range(n_mos):
        pa = float(np.clip(target[k] + rng.normal(0, noise_a), 1, 5))
        pb = float(np.clip(target[k] + rng.normal(0, noise_b), 1, 5))
        items_a[f"mos:c{k}"] = {"id": f"mos:c{k}", "mos": float(target[k]),
                                "mos_pred": None if rng.random() < 0.1 else pa}
        items_b[f"mos:c{k}"] = {"id": f"mos:c{k}", "mos": float(target[k]),
                                "mos_pred": None if rng.random() < 0.1 else pb}
    items_a["mos:only_a"] = {"mos": 3.0, "mos_pred": 1.0}  # not in b: never compared
    items_b["mos:only_b"] = {"mos": 3.0, "mos_pred": 5.0}
    for k in range(n_ab):
        w = str(rng.choice(["A", "B"]))
        other = "B" if w == "A" else "A"
        va = None if rng.random() < 0.1 else (w if rng.random() < acc_a else other)
        vb = None if rng.random() < 0.05 else (w if rng.random() < acc_b else other)
        items_a[f"ab:p{k}"] = ab_item(va, w)
        items_b[f"ab:p{k}"] = ab_item(vb, w)
    items_b["ab:only_b"] = ab_item("A", "A")
    return items_a, items_b


def reference_differences(items_a, items_b):
    """b minus a: MSE/LCC/SRCC with numpy/scipy on the MOS items both parsed, and the A/B
    accuracy on the shared pairs (unparsed wrong)."""
    keys = [k for k in items_a if k.startswith("mos:") and k in items_b
            and items_a[k]["mos_pred"] is not None and items_b[k]["mos_pred"] is not None]
    a = np.array([items_a[k]["mos_pred"] for k in keys], dtype=np.float64)
    b = np.array([items_b[k]["mos_pred"] for k in keys], dtype=np.float64)
    t = np.array([items_a[k]["mos"] for k in keys], dtype=np.float64)
    ab = [k for k in items_a if k.startswith("ab:") and k in items_b]
    acc = [np.mean([x[k]["verdict_pred"] == x[k]["winner"] for k in ab]) for x in (items_a,
                                                                                   items_b)]
    return {"mse": np.mean((b - t) ** 2) - np.mean((a - t) ** 2),
            "lcc": scipy.stats.pearsonr(b, t)[0] - scipy.stats.pearsonr(a, t)[0],
            "srcc": scipy.stats.spearmanr(b, t)[0] - scipy.stats.spearmanr(a, t)[0],
            "ab_accuracy": acc[1] - acc[0], "n_mos": len(keys), "n_ab": len(ab)}


@pytest.fixture(scope="module")
def three_seeds():
    rng = np.random.default_rng(11)
    return {s: make_seed(rng) for s in (1, 2, 3)}


@pytest.fixture(scope="module")
def compared(three_seeds):
    return compare_systems(three_seeds, n_resamples=400, seed=0)


def test_per_seed_differences_match_numpy_and_scipy(three_seeds, compared):
    assert sorted(compared["per_seed"]) == ["1", "2", "3"]
    for s, (a, b) in three_seeds.items():
        ref = reference_differences(a, b)
        rec = compared["per_seed"][str(s)]
        assert sorted(rec) == ["ab_accuracy", "lcc", "mse", "srcc"]
        for metric in ("mse", "lcc", "srcc", "ab_accuracy"):
            assert rec[metric]["difference"] == pytest.approx(ref[metric], abs=1e-12), metric
        assert rec["mse"]["n"] == rec["lcc"]["n"] == ref["n_mos"] < 60
        assert rec["ab_accuracy"]["n"] == ref["n_ab"] == 80


def test_mean_is_the_mean_of_the_seed_differences(three_seeds, compared):
    for metric in ("mse", "lcc", "srcc", "ab_accuracy"):
        per_seed = [compared["per_seed"][s][metric]["difference"] for s in ("1", "2", "3")]
        rec = compared["mean"][metric]
        assert rec["difference"] == pytest.approx(np.mean(per_seed), abs=1e-12)
        assert rec["seeds"] == 3
        assert rec["n"] == sum(compared["per_seed"][s][metric]["n"] for s in ("1", "2", "3"))


def test_intervals_contain_a_clear_effect(compared):
    """b is much better (less noise, more correct verdicts): every interval brackets its point
    estimate and excludes 0 in the right direction."""
    records = [*compared["per_seed"].values(), compared["mean"]]
    for rec in records:
        for metric, sign in (("mse", -1), ("lcc", 1), ("srcc", 1), ("ab_accuracy", 1)):
            r = rec[metric]
            assert r["ci_low"] <= r["difference"] <= r["ci_high"], (metric, r)
            assert (r["ci_low"] > 0) if sign > 0 else (r["ci_high"] < 0), (metric, r)
    # Averaging three seeds narrows the interval below a single seed's.
    width = {k: r["ci_high"] - r["ci_low"] for k, r in compared["mean"].items()}
    single = {k: np.mean([rec[k]["ci_high"] - rec[k]["ci_low"]
                          for rec in compared["per_seed"].values()]) for k in width}
    assert all(width[k] < single[k] for k in width), (width, single)


def test_identical_systems_give_zero(three_seeds):
    a, _ = three_seeds[1]
    out = compare_systems({"1": (a, a), "2": (a, a)}, n_resamples=50)
    for rec in [*out["per_seed"].values(), out["mean"]]:
        for metric in ("mse", "lcc", "srcc", "ab_accuracy"):
            assert rec[metric]["difference"] == 0.0
            assert rec[metric]["ci_low"] == rec[metric]["ci_high"] == 0.0


def test_metrics_left_out_without_enough_items():
    mos_only = {f"mos:c{k}": {"mos": float(k), "mos_pred": float(k) + 0.1} for k in range(1, 5)}
    ab_only = {"ab:p": ab_item("A", "A"), "ab:q": ab_item(None, "B")}
    two_mos = {"mos:c1": {"mos": 1.0, "mos_pred": 1.0}, "mos:c2": {"mos": 2.0, "mos_pred": 2.5}}
    out = compare_systems({"1": (mos_only, mos_only), "2": (ab_only, ab_only),
                           "3": (two_mos, two_mos)}, n_resamples=20)
    assert sorted(out["per_seed"]["1"]) == ["lcc", "mse", "srcc"]
    assert sorted(out["per_seed"]["2"]) == ["ab_accuracy"]
    assert out["per_seed"]["3"] == {}  # fewer than 3 MOS items both parsed
    assert out["mean"] == {}  # no metric is present on every seed
    out = compare_systems({"1": (ab_only, ab_only), "2": (ab_only, ab_only)}, n_resamples=20)
    assert sorted(out["mean"]) == ["ab_accuracy"]


def test_different_winners_raise():
    a = {"ab:p": ab_item("A", "A")}
    b = {"ab:p": ab_item("A", "B")}
    with pytest.raises(ValueError, match="ab:p: the two systems were scored against"):
        compare_systems({"1": (a, b)}, n_resamples=10)


# --- formatting -----------------------------------------------------------------------------

def test_format_difference():
    rec = {"difference": 0.0123, "ci_low": -0.0041, "ci_high": 0.02999}
    assert format_difference(rec) == "+0.012 [-0.004, +0.030]"
    assert format_difference(rec, "f2") == "+0.01 [-0.00, +0.03]"
    assert format_difference(rec, "pct") == "+1.2 [-0.4, +3.0]"
    assert format_difference({"difference": -0.25, "ci_low": -0.5, "ci_high": 0.0}, "f1") == \
        "-0.2 [-0.5, +0.0]"  # -0.25 is exact in binary: Python rounds the half to even
    for missing in (None, {}, {"difference": None}, {"difference": float("nan"), "ci_low": 0,
                                                       "ci_high": 0}):
        assert format_difference(missing) == "–"


def test_comparison_markdown_shape(compared):
    metrics = [("ΔMSE", "mse", "f3"), ("ΔLCC", "lcc", "f3"), ("ΔA/B acc.", "ab_accuracy", "pct"),
               ("Δmissing", "ktau", "f3")]
    partial = {"per_seed": {"1": compared["per_seed"]["1"]}, "mean": {}}
    text = comparison_markdown({"b vs a": compared, "partial": partial}, [1, 2, 3], metrics)
    lines = text.split("\n")
    assert lines[0] == "| comparison (b minus a) | seed | ΔMSE | ΔLCC | ΔA/B acc. | Δmissing |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert len(lines) == 2 + 2 * (3 + 1)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert all(len(r) == 6 for r in rows)
    assert [r[:2] for r in rows] == [["b vs a", "1"], ["b vs a", "2"], ["b vs a", "3"],
                                     ["**b vs a**", "mean of seeds"], ["partial", "1"],
                                     ["partial", "2"], ["partial", "3"],
                                     ["**partial**", "mean of seeds"]]
    cell = re.compile(r"^[+-]\d+\.\d+ \[[+-]\d+\.\d+, [+-]\d+\.\d+\]$")
    # One seed: its mean row would only repeat it.
    one = comparison_markdown({"b vs a": compared}, [1], metrics).split("\n")
    assert [line.split("|")[1:3] for line in one[2:]] == [[" b vs a ", " 1 "]]
    for r in rows[:5]:
        assert all(cell.match(c) for c in r[2:5]), r
        assert r[5] == "–"
    assert all(c == "–" for r in rows[5:] for c in r[2:])
    assert rows[3][2] == format_difference(compared["mean"]["mse"])
    assert rows[0][4] == format_difference(compared["per_seed"]["1"]["ab_accuracy"], "pct")


RECIPE = Path(__file__).resolve().parents[1] / "recipes/Simulated/ALLD"


def test_compare_script_matches_a_hand_computation_on_archived_runs():
    runs = RECIPE / "runs/ablation_alld/seed_0"
    a = runs / "warmup/save/test/sft/test_sft_items.jsonl"
    b = runs / "alld_lr3e-5_b0.4/save/test/alld/test_alld_items.jsonl"
    proc = subprocess.run([sys.executable, str(RECIPE / "compare.py"), str(a), str(b),
                           "--resamples", "200"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = [c.strip() for c in proc.stdout.strip().splitlines()[-1].strip("|").split("|")]
    ia, ib = read_items(a), read_items(b)
    both = [k for k in ia if k.startswith("mos:") and ia[k]["mos_pred"] is not None
            and ib[k]["mos_pred"] is not None]
    true = np.array([ia[k]["mos"] for k in both], dtype=np.float64)
    lcc = [scipy.stats.pearsonr([d[k]["mos_pred"] for k in both], true)[0] for d in (ia, ib)]
    pairs = [k for k in ia if k.startswith("ab:")]
    acc = [np.mean([d[k]["verdict_pred"] == d[k]["winner"] for k in pairs]) for d in (ia, ib)]
    assert row[3].split(" [")[0] == f"{lcc[1] - lcc[0]:+.3f}"
    assert row[5].split(" [")[0] == f"{100 * (acc[1] - acc[0]):+.1f}"
    low, high = (float(x) for x in row[3].split("[")[1].rstrip("]").split(","))
    assert low <= lcc[1] - lcc[0] <= high


def test_compare_script_refuses_runs_without_shared_items(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "mos:x", "mos_pred": 3.0, "mos": 3.1}\n')
    (tmp_path / "b.jsonl").write_text('{"id": "mos:y", "mos_pred": 3.0, "mos": 3.1}\n')
    proc = subprocess.run([sys.executable, str(RECIPE / "compare.py"), str(tmp_path / "a.jsonl"),
                           str(tmp_path / "b.jsonl")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "share no scored items" in proc.stderr
