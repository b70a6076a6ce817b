"""The Qwen2-Audio policy wrapper and the expert reference, on tiny models of the real classes."""

import numpy as np
import pytest
import torch

from speechbrain_alld.losses import IGNORE_INDEX
from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.models.chat import instruction_to_content
from speechbrain_alld.models.expert_reference import (
    ExpertReference,
    TokenizerMismatchError,
    check_same_tokenizer,
)
from speechbrain_alld.models.tiny import (
    build_tiny_causal_lm,
    build_tiny_qwen2_audio,
    train_tiny_tokenizer,
)

TEXTS = ["Describe and evaluate the quality of the speech. The speech is clean. MOS: 3.4",
         "A/B test: Speech A is noisier than Speech B. I prefer Speech B."] * 4
INSTR = "Describe the speech <audio>"


@pytest.fixture(scope="module")
def tokenizer():
    return train_tiny_tokenizer(TEXTS, vocab_size=400)


def _policy(tokenizer, **kw):
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=2.0)
    return AudioLLM(model, processor, **kw)


def _audio(seconds, seed):
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(
        np.float32)


def test_prompt_tokens_and_padding_are_masked_and_logprobs_match_model_loss(tokenizer):
    policy = _policy(tokenizer, finetune="full")
    responses = ["The speech is clean. MOS: 3.4", "MOS: 2.0"]
    batch = policy.prepare_batch([[_audio(1.5, 0)], [_audio(0.7, 1)]], [INSTR, INSTR],
                                 responses)
    n_resp = [len(policy.response_ids(r)) for r in responses]
    assert (batch["labels"] != IGNORE_INDEX).sum(1).tolist() == n_resp
    # Labels are exactly the response ids at the end of each row's real tokens.
    for k, r in enumerate(responses):
        row_len = int(batch["attention_mask"][k].sum())
        assert batch["labels"][k, row_len - n_resp[k]:row_len].tolist() == \
            policy.response_ids(r)
    audio_id = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    n_audio = (batch["input_ids"] == audio_id).sum(1).tolist()
    # Whisper conv (stride 2) then pooling (stride 2) over 100 mel frames per second.
    want = [(((frames - 1) // 2 + 1) - 2) // 2 + 1 for frames in (150, 70)]
    assert n_audio == want == [37, 17]
    logp, n = policy.sequence_logprobs(batch)
    assert n.tolist() == n_resp
    own = policy.model(**batch).loss  # transformers' own shifted cross-entropy
    assert float(-logp.sum().detach() / n.sum()) == pytest.approx(float(own.detach()), rel=1e-5)
    assert float(policy.sft_loss(batch)) == pytest.approx(float(own), rel=1e-5)


def test_lora_touches_only_language_model_modules(tokenizer):
    policy = _policy(tokenizer, finetune="lora", lora_r=4, train_projector=False)
    names = list(policy.trainable_parameters())
    assert names and all("lora_" in n for n in names)
    assert all("language_model" in n for n in names)
    assert not any("audio_tower" in n for n in names)
    targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                       "down_proj"}
    with_proj = _policy(tokenizer, finetune="lora", lora_r=4, train_projector=True)
    extra = set(with_proj.trainable_parameters()) - {n for n in with_proj.trainable_parameters()
                                                     if "lora_" in n}
    assert extra and all("multi_modal_projector" in n for n in extra)


def test_full_finetune_freezes_the_encoder_unless_asked(tokenizer):
    frozen_enc = _policy(tokenizer, finetune="full")
    names = set(frozen_enc.trainable_parameters())
    assert not any("audio_tower" in n for n in names)
    assert any("language_model" in n for n in names)
    trained_enc = _policy(tokenizer, finetune="full", train_encoder=True)
    all_params = {n for n, _ in trained_enc.named_parameters()}
    assert set(trained_enc.trainable_parameters()) == all_params
    with pytest.raises(ValueError, match="finetune"):
        _policy(tokenizer, finetune="adapters")


def test_a_training_step_changes_only_trainable_weights_and_lowers_the_loss(tokenizer):
    policy = _policy(tokenizer, finetune="lora", lora_r=4)
    batch = policy.prepare_batch([[_audio(1.0, 3)]], [INSTR], ["MOS: 3.4"])
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW(policy.trainable_parameters().values(), lr=1e-2)
    first = float(policy.sft_loss(batch).detach())
    for _ in range(5):
        opt.zero_grad()
        policy.sft_loss(batch).backward()
        opt.step()
    assert float(policy.sft_loss(batch)) < first
    assert all(torch.equal(p, frozen[n]) for n, p in policy.named_parameters() if n in frozen)


def test_batched_greedy_generation_equals_one_by_one(tokenizer):
    policy = _policy(tokenizer, finetune="frozen")
    audios = [[_audio(1.8, 5)], [_audio(0.6, 6)], [_audio(1.1, 7)]]
    together = policy.generate(audios, [INSTR] * 3, max_new_tokens=8)
    alone = [policy.generate([a], [INSTR], max_new_tokens=8)[0] for a in audios]
    assert together == alone


def test_two_audio_instructions_and_bad_placeholders(tokenizer):
    policy = _policy(tokenizer, finetune="frozen")
    batch = policy.prepare_batch([[_audio(1.0, 1), _audio(0.5, 2)]],
                                 ["A/B test between <audio> and <audio>"], ["I prefer Speech A."])
    assert batch["input_features"].shape[0] == 2
    with pytest.raises(ValueError, match="2 <audio> placeholder"):
        instruction_to_content("A/B <audio> <audio>", 1)
    with pytest.raises(ValueError, match="empty waveform"):
        policy.prepare_batch([[np.zeros(0, dtype=np.float32)]], [INSTR])
    with pytest.raises(ValueError, match="mono"):
        policy.prepare_batch([[np.zeros((2, 100), dtype=np.float32)]], [INSTR])


def test_save_pretrained_merges_lora_and_reloads(tokenizer, tmp_path):
    policy = _policy(tokenizer, finetune="lora", lora_r=4)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # make the adapter matter
    policy.eval()  # no LoRA dropout
    batch = policy.prepare_batch([[_audio(1.0, 9)]], [INSTR], ["MOS: 3.4"])
    want = policy.sequence_logprobs(batch)[0]
    folder = policy.save_pretrained(tmp_path / "hf", merge=True)
    reloaded = AudioLLM.from_pretrained(folder, dtype="fp32", finetune="frozen")
    got = reloaded.sequence_logprobs(reloaded.prepare_batch([[_audio(1.0, 9)]], [INSTR],
                                                            ["MOS: 3.4"]))[0]
    assert torch.allclose(got, want, atol=1e-4)
    assert (folder / "processor_config.json").is_file() and (folder / "tokenizer.json").is_file()


def test_expert_reference_scores_with_the_same_response_tokens(tokenizer):
    policy = _policy(tokenizer, finetune="frozen")
    ref = ExpertReference(build_tiny_causal_lm(tokenizer), tokenizer,
                          policy_tokenizer=policy.tokenizer)
    responses = ["The speech is clean. MOS: 3.4", "I prefer Speech B."]
    logp, n = ref.logprobs(["ratings: MOS 3.4", "A: MOS 2.0, B: MOS 3.9"], responses)
    assert n.tolist() == [len(policy.response_ids(r)) for r in responses]
    batch = ref.prepare_batch(["ratings: MOS 3.4"], responses[:1])
    own = ref.model(**batch).loss
    assert float(-logp[0] / n[0]) == pytest.approx(float(own), rel=1e-5)
    assert not any(p.requires_grad for p in ref.parameters())


def test_expert_reference_prompt_is_the_shared_text_chat_prompt(tokenizer):
    from speechbrain_alld.describe.prompts import DEFAULT_SYSTEM_PROMPT
    from speechbrain_alld.hub import text_chat_prompt

    lm = build_tiny_causal_lm(tokenizer)
    for system in (DEFAULT_SYSTEM_PROMPT, None):
        ref = ExpertReference(lm, tokenizer, system_prompt=system)
        chat = text_chat_prompt(tokenizer, "ratings: MOS 3.4", system)
        # Qwen2's template puts its own default system turn in when none is given.
        assert (DEFAULT_SYSTEM_PROMPT in chat) == (system is not None)
        batch = ref.prepare_batch(["ratings: MOS 3.4"], ["MOS: 3.4"])
        n_prompt = int((batch["labels"][0] == IGNORE_INDEX).sum())
        assert batch["input_ids"][0, :n_prompt].tolist() == \
            tokenizer(chat, add_special_tokens=False)["input_ids"]


def test_model_modules_do_not_import_the_description_stage():
    import subprocess
    import sys

    code = ("import sys, speechbrain_alld.hub, speechbrain_alld.models.audio_llm; "
            "print(sorted(m for m in sys.modules if m.startswith('speechbrain_alld.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "speechbrain_alld.describe" not in out and "speechbrain_alld.hub" in out


def test_tokenizer_mismatch_is_refused(tokenizer):
    other = train_tiny_tokenizer(["completely different words for another vocabulary"] * 3,
                                 vocab_size=350)
    with pytest.raises(TokenizerMismatchError, match="token-level ALLD"):
        check_same_tokenizer(tokenizer, other)
    with pytest.raises(TokenizerMismatchError):
        ExpertReference(build_tiny_causal_lm(other), other, policy_tokenizer=tokenizer)
    check_same_tokenizer(tokenizer, tokenizer)  # the same tokenizer is accepted


def test_save_pretrained_as_adapter_reloads_onto_its_base(tokenizer, tmp_path):
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=2.0)
    model.save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")
    policy = AudioLLM.from_pretrained(tmp_path / "base", finetune="lora", lora_r=4,
                                      train_projector=True)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name or "multi_modal_projector" in name:
                p.normal_(0, 0.5)  # both the adapter and the trained projector matter
    policy.eval()
    batch = policy.prepare_batch([[_audio(1.0, 4)]], [INSTR], ["MOS: 2.2"])
    want = policy.sequence_logprobs(batch)[0]
    folder = policy.save_pretrained(tmp_path / "adapter", merge=False)
    assert (folder / "adapter_config.json").is_file()
    assert not (folder / "model.safetensors").exists()  # the adapter, plus the projector:
    assert (folder / "extra_trainable.safetensors").is_file()
    reloaded = AudioLLM.from_pretrained(folder, finetune="frozen")
    got = reloaded.sequence_logprobs(reloaded.prepare_batch([[_audio(1.0, 4)]], [INSTR],
                                                            ["MOS: 2.2"]))[0]
    assert torch.allclose(got, want, atol=1e-4)


def test_half_precision_model_keeps_fp32_trainable_weights(tokenizer):
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=2.0)
    policy = AudioLLM(model.to(torch.bfloat16), processor, finetune="lora", lora_r=4)
    trainable = policy.trainable_parameters()
    assert trainable and all(p.dtype == torch.float32 for p in trainable.values())
    frozen = [p for p in policy.parameters() if not p.requires_grad]
    assert all(p.dtype == torch.bfloat16 for p in frozen)
    assert policy.compute_dtype == torch.bfloat16
    batch = policy.prepare_batch([[_audio(1.0, 2)]], [INSTR], ["MOS: 3.0"])
    name, weight = next((n, p) for n, p in trainable.items() if "multi_modal_projector" in n)
    before = weight.detach().clone()
    opt = torch.optim.AdamW(trainable.values(), lr=1e-5)
    policy.sft_loss(batch).backward()
    opt.step()
    # An update of ~1e-5 survives in fp32; in bf16 it would round away for most weights.
    assert (weight.detach() != before).float().mean() > 0.9, name
    assert len(policy.generate([[_audio(1.0, 2)]], [INSTR], max_new_tokens=4)) == 1


def test_several_samples_per_example_keep_each_pairs_own_audio(tokenizer):
    policy = _policy(tokenizer, finetune="frozen")
    pairs = [[_audio(0.5, 1), _audio(1.5, 2)], [_audio(1.0, 3), _audio(0.8, 4)]]
    instr = ["A/B test between <audio> and <audio>"] * 2
    torch.manual_seed(0)
    texts, finished = policy.generate(pairs, instr, max_new_tokens=5, num_return_sequences=3,
                                      return_finished=True)
    assert len(texts) == 6 and len(finished) == 6
    greedy = policy.generate(pairs, instr, max_new_tokens=5, num_return_sequences=2)
    alone = [policy.generate([p], [instr[0]], max_new_tokens=5)[0] for p in pairs]
    assert greedy == [alone[0], alone[0], alone[1], alone[1]]


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tokenizer):
    losses, grads = [], []
    for checkpointing in (False, True):
        model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=2.0, seed=5)
        policy = AudioLLM(model, processor, finetune="full",
                          gradient_checkpointing=checkpointing)
        policy.train()
        batch = policy.prepare_batch([[_audio(1.0, 6)]], [INSTR], ["MOS: 4.1"])
        loss = policy.sft_loss(batch)
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append(policy.core_model.lm_head.weight.grad.clone())
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_feature_cache_gives_the_processors_own_features_and_computes_each_clip_once(tokenizer):
    from speechbrain_alld.models.audio_cache import FeatureCache

    plain = _policy(tokenizer, finetune="full")
    cached = _policy(tokenizer, finetune="full", feature_cache_clips=3)
    clips = [_audio(1.5, 0), _audio(0.7, 1), _audio(2.0, 2)]
    audios = [[clips[0]], [clips[1], clips[2]]]
    instr = [INSTR, "Compare <audio> and <audio>"]
    want = plain.prepare_batch(audios, instr, ["MOS: 3.4", "B"])
    for _ in range(2):  # a miss, then every clip from the cache
        got = cached.prepare_batch(audios, instr, ["MOS: 3.4", "B"])
        assert got.keys() == want.keys()
        for k in want:
            assert torch.equal(got[k], want[k]), k
    cache = cached.feature_cache
    assert (cache.misses, cache.hits, len(cache)) == (3, 3, 3)
    assert cached.processor.feature_extractor is cache.extractor  # restored after the call
    cached.prepare_batch([[_audio(1.0, 3)]], [INSTR])  # a fourth clip evicts the oldest
    assert len(cache) == 3 and cache.misses == 4
    cached.prepare_batch([[clips[0]]], [INSTR])
    assert cache.misses == 5  # clips[0] was the least recently used
    fe = plain.processor.feature_extractor
    fe.dither = 1e-3
    with pytest.raises(ValueError, match="dither"):
        FeatureCache(fe, 4)


def test_encoder_cache_gives_the_same_logits_and_gradients_and_needs_a_frozen_encoder(tokenizer):
    plain = _policy(tokenizer, finetune="full")
    cached = _policy(tokenizer, finetune="full", encoder_cache_clips=8)
    cached.load_state_dict(plain.state_dict())
    audios = [[_audio(1.5, 0)], [_audio(0.7, 1), _audio(2.0, 2)]]
    instr = [INSTR, "Compare <audio> and <audio>"]
    batch = plain.prepare_batch(audios, instr, ["MOS: 3.4", "B"])
    plain.sft_loss(batch).backward()
    for _ in range(2):
        cached.zero_grad()
        cached.sft_loss(batch).backward()
        for (name, p), q in zip(plain.named_parameters(), cached.parameters()):
            assert (p.grad is None) == (q.grad is None), name
            if p.grad is not None:
                torch.testing.assert_close(q.grad, p.grad, msg=name)
    assert (cached.encoder_cache.misses, cached.encoder_cache.hits) == (3, 3)
    # ALLD's batches: two copies of the clips, encoded once, from the cache.
    pair = plain.prepare_batch(audios + audios, instr + instr, ["MOS: 3.4", "B", "MOS: 1", "A"])
    pair["audio_repeats"] = 2
    torch.testing.assert_close(cached(pair), plain(pair))
    assert cached.encoder_cache.hits == 6
    assert "forward" not in vars(cached.core_model.model.audio_tower)  # unwrapped after use
    with pytest.raises(ValueError, match="frozen encoder"):
        _policy(tokenizer, finetune="full", train_encoder=True, encoder_cache_clips=8)
