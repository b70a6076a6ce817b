#!/usr/bin/env python3
"""Training-step cost: SFT vs ALLD (precomputed reference) vs ALLD (reference live).

ALLD steps encode each clip once for its chosen and rejected responses, as ``ALLDBrain`` does;
``alld_precomputed_audio_twice`` is the same step encoding every clip twice (the saving).

Measured in one run, so the ratios hold even when this VM's speed drifts:

    python benchmarks/train_step.py --config tiny              # CPU, tiny Qwen2-Audio
    python benchmarks/train_step.py --config 7b --device cuda  # 7B-shaped random init, bf16

FSDP variants (``--fsdp``, under ``torch.distributed.run``): the policy sharded with
:func:`speechbrain_alld.sharding.shard_policy` over the processes (gloo on the CPU, NCCL on GPUs),
each process stepping on its own batch; every process reports its shard bytes (weights, Adam
state), its peak memory and the memory plan's prediction for it:

    python -m torch.distributed.run --nproc_per_node=2 benchmarks/train_step.py --config tiny \
        --fsdp --finetune full
    torchrun --nproc_per_node=8 benchmarks/train_step.py --config 7b --fsdp --finetune full \
        --gradient-checkpointing

``7b`` builds Qwen2-Audio-7B's shapes (Whisper-large encoder, 32-layer 4096-d Qwen LM, 156k
vocab) and a Qwen2-7B-shaped expert, randomly initialised on the GPU in bf16 (no download), with
LoRA on the language model. Reports time per step, tokens/s, peak memory and, on a GPU, MFU under
the 6*N*T convention (N = all policy parameters, T = tokens per step; a LoRA step does less
work than that convention counts, so this is an upper bound of the useful FLOPs).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_alld.losses import alld_loss  # noqa: E402
from speechbrain_alld.memory_plan import (  # noqa: E402
    PolicyShape,
    Workload,
    memory_plan,
    qwen2_audio_7b_config,
)
from speechbrain_alld.models.audio_llm import AudioLLM  # noqa: E402
from speechbrain_alld.models.expert_reference import ExpertReference  # noqa: E402
from speechbrain_alld.models.tiny import (  # noqa: E402
    build_tiny_causal_lm,
    build_tiny_qwen2_audio,
    train_tiny_tokenizer,
)

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
WORDS = ("the speech is clean and natural with slight background noise so the overall "
         "quality is good MOS 3 . 4 coloration discontinuity loudness").split()


def build_7b(tokenizer, device: str):
    """Qwen2-Audio-7B and Qwen2-7B shapes, random init, bf16, built directly on ``device``."""
    from transformers import (
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        Qwen2ForCausalLM,
        WhisperFeatureExtractor,
    )

    cfg = qwen2_audio_7b_config(pad_token_id=tokenizer.pad_token_id,
                                audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    cfg.text_config.eos_token_id = tokenizer.eos_token_id
    expert_cfg = Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                             num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                             max_position_embeddings=32768, rope_theta=1000000.0,
                             pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            policy = Qwen2AudioForConditionalGeneration(cfg)
            expert = Qwen2ForCausalLM(expert_cfg)
    finally:
        torch.set_default_dtype(prev)
    fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, chunk_length=30)
    return policy, Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tokenizer), expert


def make_batch(rng, n, seconds, response_words):
    audios = [[(rng.standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)]
              for _ in range(n)]
    texts = [" ".join(rng.choice(WORDS, response_words)) for _ in range(n)]
    return audios, ["Describe and evaluate the quality of the speech <audio>"] * n, texts


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=["tiny", "7b"], default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--audio-seconds", type=float, default=4.0)
    parser.add_argument("--response-words", type=int, default=60)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--fsdp", action="store_true",
                        help="shard the policy over the torch.distributed.run processes")
    parser.add_argument("--finetune", choices=["auto", "full", "lora"], default="auto",
                        help="auto: full for tiny, LoRA for 7b")
    parser.add_argument("--out", default="benchmarks/results/train_step.json")
    args = parser.parse_args()
    rank, world = 0, 1
    if args.fsdp:
        backend = "nccl" if args.device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend)
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        if args.device.startswith("cuda"):
            args.device = f"cuda:{int(__import__('os').environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(args.device)

    torch.manual_seed(0)
    tokenizer = train_tiny_tokenizer([" ".join(WORDS)] * 4 + ["Describe and evaluate the "
                                                              "quality of the speech"], 400)
    # Under FSDP the policy is built on the CPU and each process moves only its shards.
    build_device = "cpu" if args.fsdp else args.device
    if args.config == "tiny":
        model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=args.audio_seconds,
                                                  audio_dim=128, text_dim=128)
        expert = build_tiny_causal_lm(tokenizer, hidden_size=128)
        model.to(build_device)
        expert.to(args.device)
    else:
        model, processor, expert = build_7b(tokenizer, build_device)
        expert.to(args.device)
    finetune = args.finetune if args.finetune != "auto" else (
        "full" if args.config == "tiny" else "lora")
    train_encoder = finetune == "full"
    policy = AudioLLM(model, processor, finetune=finetune, train_encoder=train_encoder,
                      gradient_checkpointing=args.gradient_checkpointing)
    shape = PolicyShape.from_config(model.config, finetune=finetune, lora_r=8,
                                    train_encoder=train_encoder,
                                    load_bytes=2 if args.config == "7b" else 4)
    if args.fsdp:
        from speechbrain_alld.sharding import shard_policy

        shard_policy(policy, device=args.device)
    policy.train()
    reference = ExpertReference(expert, tokenizer, policy_tokenizer=tokenizer)
    n_params = sum(p.numel() for p in policy.parameters())
    n_trainable = sum(p.numel() for p in policy.trainable_parameters().values())
    opt = torch.optim.AdamW(list(policy.trainable_parameters().values()), lr=1e-5)
    rng = np.random.default_rng(0)
    audios, instr, chosen = make_batch(rng, args.batch, args.audio_seconds, args.response_words)
    rejected = [" ".join(rng.choice(WORDS, args.response_words)) for _ in range(args.batch)]
    prompts = ["MOS 3.4, noisiness 3.1, coloration 4.0, discontinuity 4.5, loudness 3.9"] * \
        args.batch

    def sft_step():
        batch = policy.prepare_batch(audios, instr, chosen)
        loss = policy.sft_loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return int(batch["attention_mask"].sum())

    ref_c, _ = reference.logprobs(prompts, chosen)
    ref_r, _ = reference.logprobs(prompts, rejected)
    # Precomputed mode holds only the policy: the expert leaves the device until the live run.
    reference.model.to("cpu")
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()

    def alld_step(live: bool, shared_audio: bool = True):
        rc, rr = (reference.logprobs(prompts, chosen)[0], reference.logprobs(prompts, rejected)[0]
                  ) if live else (ref_c, ref_r)
        batch = policy.prepare_batch(audios + audios, instr + instr, chosen + rejected)
        if shared_audio:  # what ALLDBrain does: each clip encoded once for both responses
            batch["audio_repeats"] = 2
        logp, _ = policy.sequence_logprobs(batch)
        out = alld_loss(logp[: args.batch], logp[args.batch:], rc, rr, beta=0.4)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return int(batch["attention_mask"].sum())

    results = {}
    for name, fn in [("sft", sft_step), ("alld_precomputed", lambda: alld_step(False)),
                     ("alld_precomputed_audio_twice", lambda: alld_step(False, False)),
                     ("alld_live_reference", lambda: alld_step(True))]:
        if name == "alld_live_reference":
            reference.model.to(args.device)
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        times, tokens = [], 0
        for k in range(args.warmup + args.steps):
            sync(args.device)
            t0 = time.perf_counter()
            tokens = fn()
            sync(args.device)
            if k >= args.warmup:
                times.append(time.perf_counter() - t0)
        step = statistics.median(times)
        entry = {"seconds_per_step": step, "tokens_per_step": tokens,
                 "tokens_per_second": tokens / step, "peak_memory_mb": peak_memory_mb(args.device)}
        sequences = 1 if name == "sft" else 2
        work = Workload(batch_size=args.batch, sequences=sequences,
                        audio_seconds=args.audio_seconds,
                        text_tokens=max(0, round(tokens / (args.batch * sequences)
                                                 - 25 * args.audio_seconds)),
                        gradient_checkpointing=args.gradient_checkpointing)
        plan = memory_plan(shape, work, world=world, distributed="fsdp" if args.fsdp else "ddp",
                           compute_bytes=2 if args.config == "7b" else 4,
                           runtime=0)
        entry["plan_mb"] = {k: v / 2**20 for k, v in plan.items() if v}
        if args.fsdp:
            from speechbrain_alld.sharding import local_bytes

            held = local_bytes(policy, opt)
            entry["local_shard_mb"] = {k: v / 2**20 for k, v in held.items()}
            gathered = [None] * world
            torch.distributed.all_gather_object(gathered, {
                "peak_memory_mb": entry["peak_memory_mb"], **entry["local_shard_mb"]})
            entry["per_rank"] = gathered
        if args.device.startswith("cuda"):
            gpu = torch.cuda.get_device_name()
            peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
            if peak:
                entry["mfu_6NT"] = 6 * n_params * tokens / step / (peak * 1e12)
        results[name] = entry
        if rank == 0:
            print(f"{name:22s} {step * 1000:9.1f} ms/step {tokens / step:10.1f} tok/s "
                  f"peak {entry['peak_memory_mb']:9.0f} MB" +
                  (f"  MFU(6NT) {entry['mfu_6NT']:.3f}" if "mfu_6NT" in entry else "") +
                  (f"  shards {entry['local_shard_mb']}" if args.fsdp else ""))

    sync(args.device)
    t0 = time.perf_counter()
    texts = policy.generate(audios, instr, max_new_tokens=32)
    sync(args.device)
    gen_s = time.perf_counter() - t0
    base = results["sft"]["seconds_per_step"]
    report = {
        "config": args.config, "device": args.device, "fsdp": args.fsdp, "world": world,
        "finetune": finetune,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "batch": args.batch, "audio_seconds": args.audio_seconds,
        "policy_parameters": n_params, "trainable_parameters": n_trainable,
        "steps": args.steps, "results": results,
        "ratios_to_sft": {k: v["seconds_per_step"] / base for k, v in results.items()},
        "generate_32_tokens_seconds": gen_s, "generated_tokens": 32 * len(texts),
    }
    if args.fsdp:
        torch.distributed.destroy_process_group()
    if rank != 0:
        return
    print("ratios to SFT:", {k: round(v, 2) for k, v in report["ratios_to_sft"].items()})
    print(f"generate 32 tokens x {len(texts)}: {gen_s:.2f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
