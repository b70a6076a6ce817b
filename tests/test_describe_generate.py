"""Description generation end to end: validation, retries, cache resume, manifests, export."""

import json
from dataclasses import replace

import pytest
from nisqa_fixture import build_corpus, make_row

from speechbrain_alld.corpora import import_released_corpus, prepare_corpus
from speechbrain_alld.describe.experts import PAPER_VARIANTS, GenerationRequest, SamplingConfig
from speechbrain_alld.describe.generate import (
    CACHE_FILE,
    DescribeConfig,
    check_text,
    generate_descriptions,
    load_rated_manifest,
)
from speechbrain_alld.describe.hf_expert import HFExpert
from speechbrain_alld.describe.prompts import FACTOR_EXPLANATION, build_mos_prompt
from speechbrain_alld.describe.template_expert import TemplateExpert
from speechbrain_alld.hub import resolve_dtype
from speechbrain_alld.models.tiny import build_tiny_causal_lm, train_tiny_tokenizer
from speechbrain_alld.ratings import RatingRecord


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    rows = [make_row("NISQA_TRAIN_SIM", i) for i in range(8)]
    root = build_corpus(tmp / "nisqa", {"NISQA_TRAIN_SIM": rows})
    return prepare_corpus("nisqa", root, tmp / "manifests", ["NISQA_TRAIN_SIM"])[
        "NISQA_TRAIN_SIM"]


@pytest.fixture(scope="module")
def tiny_lm():
    texts = [FACTOR_EXPLANATION, build_mos_prompt(RatingRecord(3.2, 2.1, 4.0, 1.5, 3.3)),
             "The speech is clean and continuous. MOS: 3.4. I prefer Speech A."] * 3
    tokenizer = train_tiny_tokenizer(texts, vocab_size=420)
    return build_tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1), tokenizer


class Interrupting(TemplateExpert):
    """A template expert whose process 'dies' after a number of generate calls."""

    def __init__(self, die_after=None, **kw):
        super().__init__(**kw)
        self.die_after = die_after
        self.calls = 0
        self.texts = 0

    def generate(self, requests):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.texts += len(requests)
        return super().generate(requests)


class WrongFirstTry(TemplateExpert):
    """Writes a wrong MOS / reversed verdict on the first attempt of every request."""

    def generate(self, requests):
        texts = super().generate(requests)
        out = []
        for req, text in zip(requests, texts):
            if req.seed == 0 and req.task == "mos":
                wrong = RatingRecord(mos=1.0 if req.ratings[0].mos > 3 else 5.0)
                text = super().generate([replace(req, ratings=(wrong,))])[0]
            elif req.seed == 0:
                text = super().generate([replace(req, ratings=req.ratings[::-1])])[0]
            out.append(text)
        return out


class Contrarian(TemplateExpert):
    """Writes faithful texts but its verdict summariser always names the loser."""

    def __init__(self):
        super().__init__()
        self.asked = 0

    def summarise_verdict(self, texts):
        self.asked += len(texts)
        return [{"A": "B", "B": "A"}[v] for v in super().summarise_verdict(texts)]


CONFIG = DescribeConfig(variants=PAPER_VARIANTS[:3], n_pairs=6, min_gap=0.4, batch_size=4)


def test_template_run_writes_valid_manifests_and_an_importable_export(tmp_path, manifest):
    entries = load_rated_manifest(manifest)
    summary = generate_descriptions(entries, TemplateExpert(), tmp_path, "train", CONFIG,
                                    progress=False)
    n_requests = 8 * 3 + 6 * 3
    assert summary.requested == n_requests and summary.accepted == n_requests
    assert summary.generated == n_requests and summary.rejected == []
    mos = json.loads((tmp_path / "train_mos.json").read_text())
    ab = json.loads((tmp_path / "train_ab.json").read_text())
    assert len(mos) == 8 and len(ab) == 6
    clip = mos["NISQA_TRAIN_SIM/c00003_clip"]
    assert set(clip["responses"]) == {"default", "t0.9-p0.85", "t0.9-p0.95"}
    assert clip["instruction"].count("<audio>") == 1 and "MOS 3.0" in clip["prompt"]
    assert clip["wav"].endswith("c00003_clip.wav") and clip["mos"] == 3.0
    pair = next(iter(ab.values()))
    assert pair["winner"] in ("A", "B") and abs(pair["A_mos"] - pair["B_mos"]) >= 0.4
    assert pair["instruction"].count("<audio>") == 2
    stored = json.loads((tmp_path / "train_summary.json").read_text())
    assert stored["accepted"] == n_requests and stored["n_rejected"] == 0

    imported = import_released_corpus(tmp_path / "train_released.jsonl",
                                      manifest.parent.parent / "nisqa")
    assert imported.report.n_kept == n_requests and imported.report.n_skipped == 0
    assert len(imported.by_task("mos")) == 24 and len(imported.by_task("ab")) == 18
    assert imported.winner_mismatch == []
    written = {t for e in [*mos.values(), *ab.values()] for t in e["responses"].values()}
    assert {r.response for r in imported.records} == written


def test_failed_texts_are_retried_with_a_new_seed_then_accepted(tmp_path, manifest):
    entries = load_rated_manifest(manifest)
    summary = generate_descriptions(entries, WrongFirstTry(), tmp_path, "train", CONFIG,
                                    progress=False)
    n_requests = 8 * 3 + 6 * 3
    assert summary.accepted == n_requests and summary.retried == n_requests
    assert summary.generated == 2 * n_requests
    lines = [json.loads(x) for x in (tmp_path / CACHE_FILE).read_text().splitlines()]
    assert all(e["attempts"] == 2 and len(e["reasons"]) == 1 for e in lines)
    mos_reasons = [e["reasons"][0] for e in lines if e["task"] == "mos"]
    assert all("differs from the rating" in r for r in mos_reasons)
    ab_reasons = [e["reasons"][0] for e in lines if e["task"] == "ab"]
    assert all(r.startswith("verdict") and "but the winner is" in r for r in ab_reasons)


def test_summariser_disagreement_rejects_ab_texts(tmp_path, manifest):
    expert = Contrarian()
    config = replace(CONFIG, use_summariser=True, max_retries=1)
    summary = generate_descriptions(load_rated_manifest(manifest), expert, tmp_path, "train",
                                    config, progress=False)
    assert summary.accepted == 8 * 3  # every MOS text
    assert len(summary.rejected) == 6 * 3 and expert.asked == 2 * 6 * 3
    assert all(r["task"] == "ab" and len(r["reasons"]) == 2 for r in summary.rejected)
    assert all(x.startswith("summariser says") for r in summary.rejected for x in r["reasons"])
    assert json.loads((tmp_path / "train_ab.json").read_text()) == {}


def test_interrupted_run_resumes_without_losing_or_repeating(tmp_path, manifest):
    entries = load_rated_manifest(manifest)
    dying = Interrupting(die_after=3)
    with pytest.raises(KeyboardInterrupt):
        generate_descriptions(entries, dying, tmp_path, "train", CONFIG, progress=False)
    done_before = len((tmp_path / CACHE_FILE).read_text().splitlines())
    assert done_before == dying.texts == 12  # three batches of four reached the cache
    resumed = Interrupting()
    summary = generate_descriptions(load_rated_manifest(manifest), resumed, tmp_path, "train",
                                    CONFIG, progress=False)
    n_requests = 8 * 3 + 6 * 3
    assert summary.from_cache == 12 and resumed.texts == n_requests - 12
    keys = [json.loads(x)["key"] for x in (tmp_path / CACHE_FILE).read_text().splitlines()]
    assert len(keys) == len(set(keys)) == n_requests
    fresh = tmp_path / "fresh"
    generate_descriptions(load_rated_manifest(manifest), TemplateExpert(), fresh, "train",
                          CONFIG, progress=False)
    assert (fresh / "train_mos.json").read_text() == (tmp_path / "train_mos.json").read_text()
    assert (fresh / "train_ab.json").read_text() == (tmp_path / "train_ab.json").read_text()
    again = Interrupting()
    rerun = generate_descriptions(load_rated_manifest(manifest), again, tmp_path, "train",
                                  CONFIG, progress=False)
    assert again.texts == 0 and rerun.from_cache == n_requests


def test_check_text_reasons():
    rating = RatingRecord(mos=3.26)
    req = GenerationRequest("c", "mos", "p", (rating,), PAPER_VARIANTS[0], 0)
    assert check_text(req, "Overall MOS: 3.3.", None, 0.05) is None
    assert "differs" in check_text(req, "Overall MOS: 3.4.", None, 0.05)
    assert check_text(req, "Overall MOS: 3.4.", None, 0.2) is None
    assert check_text(req, "nothing", None, 0.05) == "no MOS found in the text"
    assert check_text(req, "  ", None, 0.05) == "empty text"
    ab = GenerationRequest("p", "ab", "p", (rating, rating), PAPER_VARIANTS[0], 0)
    assert check_text(ab, "I prefer Speech B.", "B", 0.05) is None
    assert check_text(ab, "I prefer Speech B.", "A", 0.05) == "verdict B but the winner is A"


def test_hf_expert_tiny_model_end_to_end_with_rejections(tmp_path, manifest, tiny_lm):
    model, tokenizer = tiny_lm
    folder = tmp_path / "expert"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    expert = HFExpert(folder, dtype="fp32", batch_size=3)
    assert expert.expert_id == f"hf:{folder}"
    short = [replace(v, max_new_tokens=6) for v in PAPER_VARIANTS[:2]]
    config = DescribeConfig(variants=short, n_pairs=2, min_gap=0.4, batch_size=4,
                            max_retries=1)
    entries = load_rated_manifest(manifest)
    summary = generate_descriptions(entries, expert, tmp_path / "out", "train", config,
                                    progress=False)
    n_requests = (8 + 2) * 2
    # A random model states no MOS and no verdict: every text is retried once, then rejected.
    assert summary.generated == 2 * n_requests and summary.retried == n_requests
    assert len(summary.rejected) == n_requests and summary.accepted == 0
    assert all(len(r["reasons"]) == 2 for r in summary.rejected)
    # One generate call per batch of <= 3 requests sharing sampling settings.
    per_round = sum(-(-n // 3) for n in (2, 2, 8, 8))
    assert expert.n_generate_calls >= per_round
    assert json.loads((tmp_path / "out" / "train_mos.json").read_text()) == {}
    # Resuming finds every rejection in the cache: nothing is generated again.
    calls = expert.n_generate_calls
    again = generate_descriptions(load_rated_manifest(manifest), expert, tmp_path / "out",
                                  "train", config, progress=False)
    assert expert.n_generate_calls == calls and again.from_cache == n_requests


def test_hf_expert_sampling_is_seeded_and_batched(tiny_lm):
    model, tokenizer = tiny_lm
    expert = HFExpert(model, tokenizer, batch_size=8)
    sampled = SamplingConfig("s", True, 1.1, 0.95, max_new_tokens=8)
    reqs = [GenerationRequest(f"c{i}", "mos", build_mos_prompt(RatingRecord(2.0 + i / 4)),
                              (RatingRecord(2.0 + i / 4),), sampled, 7) for i in range(5)]
    first = expert.generate(reqs)
    assert expert.n_generate_calls == 1 and len(first) == 5
    assert expert.generate(reqs) == first
    other_seed = expert.generate([replace(r, seed=8) for r in reqs])
    assert other_seed != first
    assert len(expert.summarise_verdict(["Speech A is better."])) == 1


def test_hf_expert_bad_arguments(tiny_lm):
    model, tokenizer = tiny_lm
    with pytest.raises(ValueError, match="needs a tokenizer"):
        HFExpert(model)
    with pytest.raises(ValueError, match="batch_size"):
        HFExpert(model, tokenizer, batch_size=0)
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float8")
    bare = train_tiny_tokenizer(["a b c"], vocab_size=300)
    bare.chat_template = None
    with pytest.raises(ValueError, match="chat template"):
        HFExpert(model, bare)


def test_bad_manifest_and_config_errors(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"c1": {"wav": "x.wav", "mos": 9.0}}))
    with pytest.raises(ValueError, match=r"\[c1\].*field 'mos'"):
        load_rated_manifest(bad)
    bad.write_text(json.dumps({"c1": {"mos": 3.0}}))
    with pytest.raises(ValueError, match="no 'wav'"):
        load_rated_manifest(bad)
    bad.write_text("{oops")
    with pytest.raises(ValueError, match="cannot read manifest"):
        load_rated_manifest(bad)
    with pytest.raises(ValueError, match="tasks"):
        DescribeConfig(tasks=("asr",))
    with pytest.raises(ValueError, match="distinct names"):
        DescribeConfig(variants=[PAPER_VARIANTS[0], PAPER_VARIANTS[0]])


KILL_SCRIPT = """
import sys, time
from speechbrain_alld.describe.generate import generate_descriptions, load_rated_manifest
from speechbrain_alld.describe.template_expert import TemplateExpert
from speechbrain_alld.describe.experts import PAPER_VARIANTS
from speechbrain_alld.describe.generate import DescribeConfig

class Slow(TemplateExpert):
    def generate(self, requests):
        time.sleep(0.15)
        return super().generate(requests)

config = DescribeConfig(variants=PAPER_VARIANTS[:3], n_pairs=6, min_gap=0.4, batch_size=2)
generate_descriptions(load_rated_manifest(sys.argv[1]), Slow(), sys.argv[2], "train", config,
                      progress=False)
"""


def test_process_killed_mid_run_resumes_without_losing_or_repeating(tmp_path, manifest):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    out = tmp_path / "out"
    cache = out / CACHE_FILE
    proc = subprocess.Popen([sys.executable, str(script), str(manifest), str(out)])
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if cache.is_file() and cache.read_bytes().count(b"\n") >= 6:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_lines = cache.read_bytes().count(b"\n")
    assert 6 <= killed_lines < 8 * 3 + 6 * 3

    config = DescribeConfig(variants=PAPER_VARIANTS[:3], n_pairs=6, min_gap=0.4, batch_size=2)
    resumed = Interrupting()
    summary = generate_descriptions(load_rated_manifest(manifest), resumed, out, "train", config,
                                    progress=False)
    n_requests = 8 * 3 + 6 * 3
    assert summary.from_cache == killed_lines
    assert resumed.texts == n_requests - killed_lines
    keys = [json.loads(x)["key"] for x in cache.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == n_requests
    fresh = tmp_path / "fresh"
    generate_descriptions(load_rated_manifest(manifest), TemplateExpert(), fresh, "train",
                          config, progress=False)
    assert (fresh / "train_mos.json").read_text() == (out / "train_mos.json").read_text()
    assert (fresh / "train_ab.json").read_text() == (out / "train_ab.json").read_text()


def test_cached_texts_are_rechecked_against_this_runs_settings(tmp_path, manifest):
    entries = load_rated_manifest(manifest)
    generate_descriptions(entries, TemplateExpert(), tmp_path, "train", CONFIG, progress=False)
    # A cached "accepted" text that this run's check refuses (as after tightening
    # mos_tolerance) is generated again instead of being reused.
    lines = [json.loads(x) for x in (tmp_path / CACHE_FILE).read_text().splitlines()]
    victim = next(e for e in lines if e["task"] == "mos")
    victim["text"] = victim["text"].rsplit("MOS", 1)[0] + "MOS: 4.9."
    with open(tmp_path / CACHE_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(victim) + "\n")  # the later line wins on load
    counting = Interrupting()
    again = generate_descriptions(load_rated_manifest(manifest), counting, tmp_path, "train",
                                  CONFIG, progress=False)
    n_requests = 8 * 3 + 6 * 3
    assert again.from_cache == n_requests - 1 and counting.texts == 1
    assert again.accepted == n_requests
