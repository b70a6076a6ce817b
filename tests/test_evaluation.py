"""evaluate(): per-item rows, summary, markdown table, scatter plot, skips and resume."""

import json

import numpy as np
import pytest
import sacrebleu
from nisqa_fixture import build_corpus, make_row
from tiny_model import make_model_folder

from speechbrain_alld.corpora import prepare_corpus
from speechbrain_alld.evaluation import evaluate, load_test_items
from speechbrain_alld.inference import DescriptiveQualityEvaluator
from speechbrain_alld.parsing import parse_mos


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    folder = make_model_folder(tmp_path_factory.mktemp("model"), window_seconds=1.0, seed=4,
                               max_new_tokens=8)
    return DescriptiveQualityEvaluator.from_hparams(
        source=str(folder), savedir=str(tmp_path_factory.mktemp("saved")))


@pytest.fixture()
def rated_manifest(tmp_path):
    rows = [make_row("NISQA_TEST_FOR", i, mos_only=True, with_ref=False, con=f"c{i % 2}")
            for i in range(5)]
    root = build_corpus(tmp_path / "nisqa", {"NISQA_TEST_FOR": rows})
    return prepare_corpus("nisqa", root, tmp_path / "m", ["NISQA_TEST_FOR"])["NISQA_TEST_FOR"]


def test_rated_manifest_gives_rows_summary_table_and_plot(evaluator, rated_manifest, tmp_path):
    manifest = json.loads(rated_manifest.read_text())
    bad = next(iter(manifest.values()))["wav"]
    open(bad, "wb").write(b"broken")  # one unusable clip: skipped and counted
    summary = evaluate(evaluator, rated_manifest, tmp_path / "out", batch_size=2,
                       bootstrap=50, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "out" / "items.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and summary["n_items"] == 5
    assert summary["n_skipped"] == 1 and "cannot read audio" in summary["skipped"][0]["reason"]
    assert summary["mos"]["n"] == 4 and "bleu" not in summary["mos"]  # no expert texts here
    for row in rows:
        if not row.get("skipped"):
            assert row["mos_pred"] == parse_mos(row["text"])
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["n_skipped"] == 1
    table = (tmp_path / "out" / "summary.md").read_text()
    assert table.startswith("| task | metric | value |") and "| all | skipped | 1 |" in table
    png = (tmp_path / "out" / "scatter.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_items_with_references_score_bleu_and_debiased_ab(evaluator, rated_manifest, tmp_path):
    clips = json.loads(rated_manifest.read_text())
    wavs = [e["wav"] for e in clips.values()]
    items = {f"mos:{k}": {"task": "mos", "wavs": [e["wav"]], "mos": e["mos"],
                          "response": f"The speech is clean. MOS: {e['mos']:.1f}."}
             for k, e in clips.items()}
    items.update({f"ab:{i}": {"task": "ab", "wavs": [wavs[i], wavs[i + 1]], "winner": "A",
                              "response": "I prefer Speech A."} for i in range(3)})
    path = tmp_path / "test.json"
    path.write_text(json.dumps(items))
    summary = evaluate(evaluator, path, tmp_path / "out", bootstrap=0, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "out" / "items.jsonl").read_text().splitlines()]
    mos_rows = [r for r in rows if r["task"] == "mos"]
    bleu = sacrebleu.corpus_bleu([r["text"] for r in mos_rows],
                                 [[r["reference"] for r in mos_rows]]).score
    assert summary["mos"]["bleu"] == pytest.approx(bleu)
    ab_rows = [r for r in rows if r["task"] == "ab"]
    assert summary["ab"]["accuracy"] == pytest.approx(
        np.mean([r["verdict_pred"] == "A" for r in ab_rows]))
    assert summary["ab"]["n_no_verdict"] == sum(r["verdict_pred"] is None for r in ab_rows)


def test_interrupted_evaluation_resumes(evaluator, rated_manifest, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = evaluator.describe_batch

    def dying(inputs, sample_rate=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(inputs, sample_rate)

    monkeypatch.setattr(evaluator, "describe_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        evaluate(evaluator, rated_manifest, tmp_path / "out", batch_size=2, progress=False)
    assert len((tmp_path / "out" / "items.jsonl").read_text().splitlines()) == 2
    seen = []
    monkeypatch.setattr(evaluator, "describe_batch",
                        lambda inputs, sample_rate=None: seen.extend(inputs) or original(inputs))
    summary = evaluate(evaluator, rated_manifest, tmp_path / "out", batch_size=2,
                       progress=False)
    assert len(seen) == 3 and summary["n_items"] == 5


def test_bad_manifests(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"x": {"foo": 1}}))
    with pytest.raises(ValueError, match="neither 'task' nor 'wav'"):
        load_test_items(path)
    path.write_text(json.dumps({"x": {"wav": "a.wav"}}))
    with pytest.raises(ValueError, match="no MOS"):
        load_test_items(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="cannot read test manifest"):
        load_test_items(path)
