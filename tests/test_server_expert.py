"""The OpenAI-compatible HTTP expert against a real local server running a tiny HF model."""

import json
from dataclasses import replace

import pytest
from nisqa_fixture import build_corpus, make_row
from openai_server import TinyChatServer

from speechbrain_alld.corpora import prepare_corpus
from speechbrain_alld.describe.experts import PAPER_VARIANTS, GenerationRequest
from speechbrain_alld.describe.generate import (
    DescribeConfig,
    generate_descriptions,
    load_rated_manifest,
)
from speechbrain_alld.describe.hf_expert import HFExpert
from speechbrain_alld.describe.prompts import FACTOR_EXPLANATION, build_mos_prompt
from speechbrain_alld.describe.server_expert import OpenAIChatExpert, ServerError
from speechbrain_alld.models.tiny import build_tiny_causal_lm, train_tiny_tokenizer
from speechbrain_alld.ratings import RatingRecord


@pytest.fixture(scope="module")
def tiny_lm():
    texts = [FACTOR_EXPLANATION, "The speech is clean and continuous. MOS: 3.4."] * 3
    tokenizer = train_tiny_tokenizer(texts, vocab_size=380)
    return build_tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, seed=3), tokenizer


def _requests(variant, n=3):
    out = []
    for i in range(n):
        rating = RatingRecord(mos=1.5 + i, noi=2.0 + i / 2)
        out.append(GenerationRequest(f"c{i}", "mos", build_mos_prompt(rating), (rating,),
                                     replace(variant, max_new_tokens=8), seed=11))
    return out


def test_greedy_texts_over_http_equal_the_local_model(tiny_lm):
    model, tokenizer = tiny_lm
    reqs = _requests(PAPER_VARIANTS[0])
    local = HFExpert(model, tokenizer, batch_size=1).generate(reqs)
    with TinyChatServer(model, tokenizer) as server:
        expert = OpenAIChatExpert(server.base_url, "tiny", concurrency=3)
        remote = expert.generate(reqs)
        assert server.payloads[0]["temperature"] == 0.0
        assert server.payloads[0]["messages"][0]["role"] == "system"
        assert server.payloads[0]["max_tokens"] == 8
    assert remote == local


def test_sampling_settings_and_seed_reach_the_server(tiny_lm):
    model, tokenizer = tiny_lm
    with TinyChatServer(model, tokenizer) as server:
        expert = OpenAIChatExpert(server.base_url, "tiny", concurrency=1)
        first = expert.generate(_requests(PAPER_VARIANTS[4]))
        again = expert.generate(_requests(PAPER_VARIANTS[4]))
        sent = server.payloads[:3]
    assert {(p["temperature"], p["top_p"]) for p in sent} == {(1.1, 0.95)}
    assert len({p["seed"] for p in sent}) == 3  # one seed per item, not one per variant
    assert first == again  # seeded sampling is reproducible end to end


def test_transient_failures_are_retried_and_others_reported(tiny_lm):
    model, tokenizer = tiny_lm
    with TinyChatServer(model, tokenizer, fail_first=2) as server:
        expert = OpenAIChatExpert(server.base_url, "tiny", backoff=0.0, max_retries=3)
        assert len(expert.generate(_requests(PAPER_VARIANTS[0], n=1))) == 1
        assert server.hits == 3
        wrong_route = OpenAIChatExpert(server.base_url + "/nope", "tiny", backoff=0.0)
        with pytest.raises(ServerError, match="HTTP 404"):
            wrong_route.generate(_requests(PAPER_VARIANTS[0], n=1))
        assert wrong_route.n_requests == 1  # a 404 is not retried
    with TinyChatServer(model, tokenizer, fail_first=10) as server:
        expert = OpenAIChatExpert(server.base_url, "tiny", backoff=0.0, max_retries=2)
        with pytest.raises(ServerError, match="HTTP 503.*gave up after 3 attempts"):
            expert.generate(_requests(PAPER_VARIANTS[0], n=1))
    gone = OpenAIChatExpert(server.base_url, "tiny", backoff=0.0, max_retries=1, timeout=5)
    with pytest.raises(ServerError, match="cannot reach"):
        gone.generate(_requests(PAPER_VARIANTS[0], n=1))


def test_description_run_through_the_server_caches_and_resumes(tiny_lm, tmp_path):
    model, tokenizer = tiny_lm
    rows = [make_row("NISQA_TRAIN_SIM", i) for i in range(4)]
    root = build_corpus(tmp_path / "nisqa", {"NISQA_TRAIN_SIM": rows})
    manifest = prepare_corpus("nisqa", root, tmp_path / "m", ["NISQA_TRAIN_SIM"])[
        "NISQA_TRAIN_SIM"]
    variants = [replace(v, max_new_tokens=6) for v in PAPER_VARIANTS[:2]]
    config = DescribeConfig(variants=variants, n_pairs=2, min_gap=0.4, max_retries=0,
                            use_summariser=True)
    with TinyChatServer(model, tokenizer) as server:
        expert = OpenAIChatExpert(server.base_url, "tiny", concurrency=4)
        summary = generate_descriptions(load_rated_manifest(manifest), expert, tmp_path / "out",
                                        "train", config, progress=False)
        n_requests = (4 + 2) * 2
        assert summary.requested == summary.generated == n_requests
        assert len(summary.rejected) == n_requests  # a random model states no MOS/verdict
        verdict_calls = sum("single letter" in p["messages"][-1]["content"]
                            for p in server.payloads)
        assert verdict_calls == 0  # texts the parser rejected are not worth a second opinion
        hits = server.hits
        again = generate_descriptions(load_rated_manifest(manifest), expert, tmp_path / "out",
                                      "train", config, progress=False)
        assert server.hits == hits and again.from_cache == n_requests
    stored = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert stored["n_rejected"] == n_requests


def test_an_unusable_request_empties_only_its_own_text(tiny_lm):
    model, tokenizer = tiny_lm
    reqs = _requests(PAPER_VARIANTS[4])  # sampled: the tiny model writes non-empty texts
    reqs[1] = replace(reqs[1], prompt="TOO LONG " + reqs[1].prompt)
    with TinyChatServer(model, tokenizer, reject_marker="TOO LONG") as server:
        texts = OpenAIChatExpert(server.base_url, "tiny", concurrency=1).generate(reqs)
    assert texts[1] == "" and texts[0] != "" and texts[2] != ""


def test_bad_arguments():
    with pytest.raises(ValueError, match="concurrency"):
        OpenAIChatExpert("http://127.0.0.1:1/v1", "m", concurrency=0)
