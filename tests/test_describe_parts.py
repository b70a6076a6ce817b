"""Prompts, A/B pair sampling and the crash-safe description cache."""

import json
import re
from collections import Counter

import pytest

from speechbrain_alld.describe.cache import cache_key
from speechbrain_alld.describe.experts import PAPER_VARIANTS, GenerationRequest, SamplingConfig
from speechbrain_alld.describe.pairs import sample_pairs
from speechbrain_alld.describe.prompts import (
    DEFAULT_INSTRUCTIONS,
    PromptExample,
    build_ab_prompt,
    build_mos_prompt,
    build_prompt,
    build_verdict_prompt,
    format_ratings,
)
from speechbrain_alld.jsonl_store import JsonlStore
from speechbrain_alld.ratings import RatingRecord

FULL = RatingRecord(mos=3.26, noi=2.04, col=4.55, dis=4.0, loud=3.349)
MOS_ONLY = RatingRecord(mos=1.74)


def test_mos_prompt_shows_each_rating_with_one_decimal():
    prompt = build_mos_prompt(FULL)
    assert "Ratings of the speech clip: MOS 3.3, noisiness 2.0, coloration 4.5, " \
           "discontinuity 4.0, loudness 3.3." in prompt
    for anchor in ("1 very noisy", "5 completely clean", "1 bad", "5 excellent",
                   "1 extremely quiet"):
        assert anchor in prompt
    assert "noisiness, coloration, discontinuity and loudness" in prompt
    assert prompt.rstrip().endswith("(for example 'MOS: 3.3').")


def test_missing_dimensions_are_left_out_not_invented():
    partial = RatingRecord(mos=2.0, noi=1.5, loud=4.0)
    line = next(x for x in build_mos_prompt(partial).splitlines() if x.startswith("Ratings"))
    assert line == "Ratings of the speech clip: MOS 2.0, noisiness 1.5, loudness 4.0."
    ask = build_mos_prompt(partial).splitlines()[-1]
    assert "noisiness and loudness" in ask and "coloration" not in ask
    only = build_mos_prompt(MOS_ONLY)
    assert "MOS 1.7." in only and "Describe its overall quality" in only
    assert format_ratings(MOS_ONLY) == "MOS 1.7"


def test_ab_prompt_and_in_context_examples():
    example = PromptExample((RatingRecord(4.0, noi=4.5), RatingRecord(2.0, noi=1.5)),
                            "Speech A is cleaner. I prefer Speech A.")
    prompt = build_ab_prompt(FULL, MOS_ONLY, examples=[example], min_gap=0.5)
    assert "Speech A ratings: MOS 3.3, noisiness 2.0" in prompt
    assert "Speech B ratings: MOS 1.7." in prompt
    assert "Example 1. Speech A: MOS 4.0, noisiness 4.5. Speech B: MOS 2.0, noisiness 1.5." \
        in prompt
    assert "about 0.5 or more" in prompt and "higher MOS" in prompt
    assert build_prompt("ab", [FULL, MOS_ONLY], [example]) == prompt
    with pytest.raises(ValueError, match="2 rating records"):
        build_prompt("ab", [FULL])
    with pytest.raises(ValueError, match="unknown task"):
        build_prompt("xyz", [FULL])
    verdict = build_verdict_prompt("Speech B wins.")
    assert "Speech B wins." in verdict and "single letter, A or B" in verdict


def test_instructions_have_audio_placeholders():
    assert DEFAULT_INSTRUCTIONS["mos"].count("<audio>") == 1
    assert DEFAULT_INSTRUCTIONS["ab"].count("<audio>") == 2


def _items(n, seed=0):
    import random
    rng = random.Random(seed)
    return [(f"clip{i:03d}", RatingRecord(mos=round(rng.uniform(1, 5), 2))) for i in range(n)]


def test_pairs_respect_gap_balance_uniqueness_and_seed():
    items = _items(60)
    mos = dict((cid, r.mos) for cid, r in items)
    pairs = sample_pairs(items, 200, min_gap=0.5, seed=3)
    assert len(pairs) == 200
    assert all(p.a != p.b for p in pairs)
    assert len({frozenset((p.a, p.b)) for p in pairs}) == 200
    for p in pairs:
        assert abs(mos[p.a] - mos[p.b]) >= 0.5 and p.gap == pytest.approx(abs(mos[p.a] -
                                                                              mos[p.b]))
        assert p.winner == ("A" if mos[p.a] > mos[p.b] else "B")
    counts = Counter(p.winner for p in pairs)
    assert abs(counts["A"] - counts["B"]) <= 1
    assert sample_pairs(items, 200, min_gap=0.5, seed=3) == pairs
    assert sample_pairs(items, 200, min_gap=0.5, seed=4) != pairs


def test_ties_below_threshold_and_rejection_in_between():
    items = [("a", RatingRecord(3.0)), ("b", RatingRecord(3.05)), ("c", RatingRecord(3.3)),
             ("d", RatingRecord(4.5))]
    pairs = sample_pairs(items, 10, min_gap=0.5, tie_threshold=0.1, seed=0)
    kinds = {frozenset((p.a, p.b)): p.winner for p in pairs}
    assert kinds[frozenset("ab")] == "tie"
    assert frozenset("ac") not in kinds and frozenset("bc") not in kinds  # gaps 0.3, 0.25
    assert {kinds[frozenset(x)] for x in ("ad", "bd", "cd")} <= {"A", "B"}
    assert len(pairs) == 4  # fewer than asked: only four valid pairs exist


def test_large_item_lists_use_random_draws_with_the_same_guarantees():
    items = _items(4000, seed=1)
    pairs = sample_pairs(items, 500, min_gap=1.0, seed=0)
    mos = dict((cid, r.mos) for cid, r in items)
    assert len(pairs) == 500 and len({frozenset((p.a, p.b)) for p in pairs}) == 500
    assert all(abs(mos[p.a] - mos[p.b]) >= 1.0 for p in pairs)


@pytest.mark.parametrize("kwargs,match", [
    ({"n_pairs": -1}, "n_pairs"),
    ({"n_pairs": 3, "min_gap": -0.1}, "min_gap"),
    ({"n_pairs": 3, "tie_threshold": 0.9}, "tie_threshold"),
])
def test_pair_sampler_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_pairs(_items(5), **kwargs)


def test_pair_sampler_rejects_duplicates_and_too_few_items():
    with pytest.raises(ValueError, match="duplicate"):
        sample_pairs([("x", FULL), ("x", MOS_ONLY)], 1)
    with pytest.raises(ValueError, match="at least 2"):
        sample_pairs([("x", FULL)], 1)


def _request(item="c1", variant=PAPER_VARIANTS[1], seed=0, prompt="p"):
    return GenerationRequest(item, "mos", prompt, (FULL,), variant, seed)


def test_cache_key_depends_on_item_prompt_expert_and_sampling_not_seed():
    base = cache_key(_request(), "e1")
    assert cache_key(_request(seed=99), "e1") == base
    assert cache_key(_request(item="c2"), "e1") != base
    assert cache_key(_request(prompt="q"), "e1") != base
    assert cache_key(_request(), "e2") != base
    assert cache_key(_request(variant=PAPER_VARIANTS[2]), "e1") != base
    tweaked = SamplingConfig(PAPER_VARIANTS[1].name, True, 0.9, 0.85, max_new_tokens=64)
    assert cache_key(_request(variant=tweaked), "e1") != base


def test_request_checks_task_and_number_of_ratings():
    with pytest.raises(ValueError, match="needs 2"):
        GenerationRequest("p", "ab", "x", (FULL,), PAPER_VARIANTS[0], 0)
    with pytest.raises(ValueError, match="task"):
        GenerationRequest("p", "asr", "x", (FULL,), PAPER_VARIANTS[0], 0)


def test_cache_survives_a_write_cut_off_mid_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = JsonlStore(path)
    cache.add([{"key": "k1", "text": "one"}, {"key": "k2", "text": "two"}])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "k3", "text": "thr')  # the process died here
    reloaded = JsonlStore(path)
    assert set(reloaded.entries) == {"k1", "k2"}
    reloaded.add([{"key": "k3", "text": "three"}])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["k1", "k2", "k3"]
    assert JsonlStore(path).get("k3")["text"] == "three"


def test_cache_ignores_a_corrupt_complete_line_but_keeps_the_rest(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text('{"key": "k1", "text": "a"}\nGARBAGE\n{"key": "k2", "text": "b"}\n')
    cache = JsonlStore(path)
    assert set(cache.entries) == {"k1", "k2"} and cache.n_corrupt == 1
    assert re.search("GARBAGE", path.read_text())  # not rewritten
