"""The real path's silent defects, on tiny models configured like the real checkpoints.

Qwen2-Audio-7B-Instruct ships sampling defaults in its generation config, an EOS list
(``<|endoftext|>`` and ``<|im_end|>``) and a hub chat template that recognises an audio part only
by an ``audio`` / ``audio_url`` key; ``build_tiny_qwen2_audio(like_instruct=True)`` gives a tiny
model the same, so these tests see what the real checkpoint would do.
"""

import numpy as np
import pytest
import torch

from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.models.expert_reference import ExpertReference, check_same_tokenizer
from speechbrain_alld.models.tiny import (
    INSTRUCT_GENERATION_DEFAULTS,
    build_tiny_causal_lm,
    build_tiny_qwen2_audio,
    train_tiny_tokenizer,
)

TEXTS = ["The speech is clean and loud. MOS: 4.2", "Speech A is noisier than Speech B.",
         "Describe and evaluate the speech", "A/B test between and"] * 3
MOS_INSTRUCTION = "Describe and evaluate the speech <audio>"
AB_INSTRUCTION = "A/B test between <audio> and <audio>"


def _tokenizer(eos="<|im_end|>"):
    tokenizer = train_tiny_tokenizer(TEXTS, vocab_size=320)
    tokenizer.eos_token = eos
    return tokenizer


def _policy(tokenizer=None, seed=0):
    tokenizer = tokenizer or _tokenizer()
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=1.0, audio_dim=32,
                                              audio_layers=1, text_dim=32, text_layers=1,
                                              seed=seed)
    return AudioLLM(model, processor, finetune="frozen", train_projector=False).eval()


def _clip(seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(0, 0.1, 16000).astype(np.float32))


def test_the_tiny_model_carries_the_instruct_checkpoints_settings():
    tokenizer = _tokenizer()
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=1.0, audio_dim=32,
                                              audio_layers=1, text_dim=32, text_layers=1)
    cfg = model.generation_config
    assert {k: getattr(cfg, k) for k in INSTRUCT_GENERATION_DEFAULTS} == \
        INSTRUCT_GENERATION_DEFAULTS
    assert cfg.eos_token_id == [tokenizer.convert_tokens_to_ids(t)
                                for t in ("<|endoftext|>", "<|im_end|>")]
    assert "'audio' in content or 'audio_url' in content" in processor.chat_template


# ------------------------------------------------------------------ 1. decoding is explicit
def _manual_greedy(policy, audio, instruction, steps):
    """Argmax decoding by repeated full forward passes: no logits processor at all."""
    batch = policy.prepare_batch([[audio]], [instruction])
    ids = batch["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(steps):
            step = {**batch, "input_ids": ids, "attention_mask": torch.ones_like(ids)}
            token = int(policy.forward(step)[0, -1].argmax())
            out.append(token)
            if token in policy.stop_ids:
                break
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return policy.tokenizer.decode(out, skip_special_tokens=True).strip()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_generation_is_plain_argmax_despite_the_checkpoints_defaults(seed):
    policy = _policy(seed=seed)
    audio = _clip(seed)
    expected = _manual_greedy(policy, audio, MOS_INSTRUCTION, 24)
    assert policy.generate([[audio]], [MOS_INSTRUCTION], max_new_tokens=24) == [expected]


def test_sampling_is_exactly_temperature_and_top_p():
    """The first step's processed scores equal the raw logits / T with the top-p mask, computed
    here in float64: no top-k 20, no repetition penalty 1.1 from the checkpoint."""
    policy = _policy(seed=3)
    batch = policy.prepare_batch([[_clip(3)]], [MOS_INSTRUCTION], padding_side="left")
    temperature, top_p = 0.8, 0.9
    config = policy.decoding(max_new_tokens=1, do_sample=True, temperature=temperature,
                             top_p=top_p)
    config.output_scores, config.return_dict_in_generate = True, True
    with torch.no_grad():
        raw = policy.forward(batch)[0, -1].double()
        out = policy.model.generate(**batch, generation_config=config)
    scores = out.scores[0][0].double()
    logits = raw / temperature
    probs = torch.softmax(logits, dim=-1)
    order = torch.argsort(probs)  # ascending, as transformers' top-p keeps the top mass
    removed = torch.cumsum(probs[order], 0) <= 1 - top_p
    expected = logits.clone()
    expected[order[removed]] = -float("inf")
    kept = torch.isfinite(expected)
    assert torch.equal(kept, torch.isfinite(scores))
    assert kept.sum() > 20  # a mask wider than the checkpoint's top-k 20
    assert torch.allclose(scores[kept], expected[kept], atol=1e-4)


def test_a_saved_model_carries_the_neutral_generation_config(tmp_path):
    policy = _policy()
    policy.save_pretrained(tmp_path / "m")
    reloaded = AudioLLM.from_pretrained(tmp_path / "m", finetune="frozen")
    saved = reloaded.checkpoint_generation_config
    assert saved.do_sample is False and saved.repetition_penalty == 1.0
    assert saved.eos_token_id == policy.stop_ids


# ------------------------------------------------------------------ 4. chat template
def test_prompts_work_with_the_hub_template_and_keep_natural_spacing():
    policy = _policy()
    mos = policy.chat_prompt(MOS_INSTRUCTION, 1)
    assert mos.count("<|AUDIO|>") == 1
    assert "evaluate the speech Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n" in mos
    ab = policy.chat_prompt(AB_INSTRUCTION, 2)
    assert "A/B test between Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nand Audio 2: " in ab
    # Batching expands each <|AUDIO|> to the clip's audio tokens (25 per second here).
    batch = policy.prepare_batch([[_clip(0)], [_clip(1), _clip(2)]],
                                 [MOS_INSTRUCTION, AB_INSTRUCTION])
    audio_id = policy.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    assert (batch["input_ids"] == audio_id).sum(dim=1).tolist() == [25, 50]


# ------------------------------------------------------------------ 5. end of turn
def test_responses_end_with_the_end_of_turn_even_when_the_tokenizer_names_another_eos():
    base_like = _tokenizer(eos="<|endoftext|>")
    policy = _policy(base_like)
    im_end = base_like.convert_tokens_to_ids("<|im_end|>")
    endoftext = base_like.convert_tokens_to_ids("<|endoftext|>")
    assert policy.response_ids("MOS: 3.0")[-1] == im_end
    assert set(policy.stop_ids) == {im_end, endoftext}
    expert = ExpertReference(build_tiny_causal_lm(base_like, hidden_size=32, num_layers=1),
                             base_like)
    batch = expert.prepare_batch(["rate it"], ["MOS: 3.0"])
    assert batch["labels"][0, batch["attention_mask"][0].bool()][-1] == im_end
    # An Instruct-style expert (EOS <|im_end|>) fits a base-style policy tokenizer: both end a
    # response with <|im_end|>.
    check_same_tokenizer(base_like, _tokenizer(eos="<|im_end|>"))


def test_generation_stops_and_counts_finished_on_every_eos_of_the_checkpoint():
    """A model whose every logit is 0 emits id 0, <|endoftext|>: one of the checkpoint's EOS
    ids, though not the tokenizer's EOS (<|im_end|>). It must stop there and count as done."""
    policy = _policy()
    with torch.no_grad():
        policy.core_model.lm_head.weight.zero_()
    assert policy.tokenizer.convert_ids_to_tokens(0) == "<|endoftext|>"
    texts, finished = policy.generate([[_clip(0)]], [MOS_INSTRUCTION], max_new_tokens=6,
                                      return_finished=True)
    assert texts == [""] and finished == [True]


# ------------------------------------------------------------------ 2, 3, 8. saving
def _logprobs(policy, texts=("MOS: 3.5", "Speech A is better.")):
    policy.eval()  # no LoRA dropout
    batch = policy.prepare_batch([[_clip(0)], [_clip(1)]], [MOS_INSTRUCTION] * 2, list(texts))
    with torch.no_grad():
        return policy.sequence_logprobs(batch)[0].double()


def _perturb_lora(policy, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:  # zero at init: give the adapter an effect
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def _saved_base(tmp_path):
    policy = _policy(seed=4)
    policy.save_pretrained(tmp_path / "base")
    return tmp_path / "base"


@pytest.mark.parametrize("merge", [True, False])
def test_an_alld_adapter_over_an_sft_adapter_reloads_with_the_warm_up(tmp_path, merge):
    base = _saved_base(tmp_path)
    sft = AudioLLM.from_pretrained(base, finetune="lora", lora_r=2, train_projector=False)
    _perturb_lora(sft, 1)
    sft.save_pretrained(tmp_path / "sft", merge=False)
    alld = AudioLLM.from_pretrained(tmp_path / "sft", finetune="lora", lora_r=2,
                                    train_projector=False)
    _perturb_lora(alld, 2)
    expected = _logprobs(alld)
    alld.save_pretrained(tmp_path / "alld", merge=merge)
    reloaded = AudioLLM.from_pretrained(tmp_path / "alld", finetune="frozen",
                                        train_projector=False)
    assert torch.allclose(_logprobs(reloaded), expected, atol=1e-4)
    without_sft = AudioLLM.from_pretrained(base, finetune="frozen", train_projector=False)
    assert not torch.allclose(_logprobs(without_sft), expected, atol=1e-2)


def test_a_merged_lora_save_equals_the_adapted_model_and_leaves_it_unchanged(tmp_path):
    policy = AudioLLM.from_pretrained(_saved_base(tmp_path), finetune="lora", lora_r=2)
    _perturb_lora(policy, 5)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    expected = _logprobs(policy)
    policy.save_pretrained(tmp_path / "merged", merge=True)
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    reloaded = AudioLLM.from_pretrained(tmp_path / "merged", finetune="frozen")
    assert torch.allclose(_logprobs(reloaded), expected, atol=1e-4)
    assert all(torch.equal(p, before[n]) for n, p in policy.named_parameters())


def test_full_fine_tuning_of_a_bf16_model_saves_bf16(tmp_path):
    from safetensors import safe_open

    tokenizer = _tokenizer()
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=1.0, audio_dim=32,
                                              audio_layers=1, text_dim=32, text_layers=1)
    policy = AudioLLM(model.to(torch.bfloat16), processor, finetune="full", train_encoder=True)
    assert {p.dtype for p in policy.parameters()} == {torch.float32}  # fp32 master weights
    policy.save_pretrained(tmp_path / "full")
    with safe_open(str(tmp_path / "full" / "model.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.bfloat16}
    reloaded = AudioLLM.from_pretrained(tmp_path / "full", finetune="frozen",
                                        train_projector=False)
    assert {p.dtype for p in reloaded.parameters()} == {torch.bfloat16}


# ------------------------------------------------------------------ 9. one encoding per clip
def test_alld_pairs_encode_each_clip_once_with_the_same_logits_and_gradients():
    tokenizer = _tokenizer()
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=1.0, audio_dim=32,
                                              audio_layers=1, text_dim=32, text_layers=1)
    policy = AudioLLM(model, processor, finetune="full", train_encoder=True).eval()
    clips = [[_clip(0)], [_clip(1)]]
    batch = policy.prepare_batch(clips + clips, [MOS_INSTRUCTION] * 4,
                                 ["MOS: 3.5", "MOS: 2.0", "Noisy. MOS: 1.5", "Clean. MOS: 4.5"])
    seen = []
    hook = policy.core_model.model.audio_tower.conv1.register_forward_hook(
        lambda module, args, output: seen.append(args[0].shape[0]))  # the encoder's first layer
    results = []
    for shared in (False, True):
        policy.zero_grad()
        inputs = {**batch, "audio_repeats": 2} if shared else batch
        logits = policy(inputs)
        logits.float().logsumexp(-1).mean().backward()
        grad = policy.core_model.model.audio_tower.conv1.weight.grad.clone()
        results.append((logits.detach(), grad))
    hook.remove()
    assert seen == [4, 2]  # the encoder saw 4 clips, then each of the 2 clips once
    assert torch.allclose(results[0][0], results[1][0], atol=1e-5)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-5)
    assert "forward" not in vars(policy.core_model.model.audio_tower)  # patch undone
