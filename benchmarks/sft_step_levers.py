#!/usr/bin/env python3
"""What each SFT-step lever saves on the tiny pretrained policy (CPU), measured in one run.

    python benchmarks/sft_step_levers.py [--steps 12] [--threads 2]

A step is ``prepare_batch`` (log-mel features, chat prompt, tokens) + forward + backward + AdamW
on a batch of 16 drawn like the recipe's SFT examples (half MOS: one 4 s clip and a brief text;
half A/B: two clips and a verdict). Variants, each on the same batches:

- ``trained encoder``: the recipe's setting until #12 (every weight trained);
- ``+ feature cache``: the same, with :class:`~speechbrain_alld.models.audio_cache.FeatureCache`;
- ``frozen encoder``: the encoder frozen (projector and LM trained);
- ``frozen + both caches``: also the frozen encoder's output cached;
- ``... + task-grouped batches``: batches that hold one task each (``group_by_task``).

Each variant sees every batch once untimed first (the caches fill as in an SFT run's first
epoch, which later epochs do not pay again), then the median of the timed steps is reported and
its ratio to the first variant. Results go to ``benchmarks/results/sft_step_levers.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_alld.dataset import TaskBatchSampler  # noqa: E402
from speechbrain_alld.models.audio_llm import AudioLLM  # noqa: E402
from speechbrain_alld.pretraining import shipped_model  # noqa: E402

MOS_INSTRUCTION = "Describe and evaluate the speech quality of <audio>, then give its MOS."
AB_INSTRUCTION = ("A/B test: which speech has the better quality, <audio> (Speech A) or "
                  "<audio> (Speech B)? Compare them and explain your preference.")
MOS_TEXT = ("Noticeable background noise, slight coloration, a few breaks, normal loudness. "
            "Overall fair quality, MOS 3.1.")
AB_TEXT = "Speech B is cleaner and less distorted than Speech A. I prefer Speech B."


def examples(n: int, seed: int) -> list[tuple[list[np.ndarray], str, str, str]]:
    rng = np.random.default_rng(seed)
    clips = [(rng.standard_normal(64000) * 0.1).astype(np.float32) for _ in range(n)]
    out = []
    for k in range(n):
        if k % 2 == 0:
            out.append(([clips[k]], MOS_INSTRUCTION, MOS_TEXT, "mos"))
        else:
            out.append(([clips[k], clips[(k + 3) % n]], AB_INSTRUCTION, AB_TEXT, "ab"))
    return out


def batches(data: list, batch_size: int, grouped: bool, seed: int) -> list[list[int]]:
    if grouped:
        return list(TaskBatchSampler([d[3] for d in data], batch_size, seed))
    order = list(range(len(data)))
    random.Random(seed).shuffle(order)
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]


def measure(name: str, data: list, index_batches: list, **policy_kwargs) -> float:
    torch.manual_seed(0)
    policy = AudioLLM.from_pretrained(shipped_model(), finetune="full", train_projector=True,
                                      **policy_kwargs)
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-4)

    def step(idx: list[int]) -> None:
        chunk = [data[i] for i in idx]
        batch = policy.prepare_batch([c[0] for c in chunk], [c[1] for c in chunk],
                                     [c[2] for c in chunk])
        policy.sft_loss(batch).backward()
        opt.step()
        opt.zero_grad()

    for idx in index_batches:  # the first epoch: caches fill, allocator warms up
        step(idx)
    times = []
    for idx in index_batches:
        start = time.perf_counter()
        step(idx)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"{name:45s} {median * 1000:8.1f} ms/step", flush=True)
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="batches per variant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "sft_step_levers.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch_size = 16
    data = examples(args.steps * batch_size, seed=0)
    mixed = batches(data, batch_size, grouped=False, seed=0)
    grouped = batches(data, batch_size, grouped=True, seed=0)
    cache = 2 * len(data)
    variants = [
        ("trained encoder", mixed, {"train_encoder": True}),
        ("trained encoder + feature cache", mixed,
         {"train_encoder": True, "feature_cache_clips": cache}),
        ("frozen encoder", mixed, {"train_encoder": False}),
        ("frozen encoder + both caches", mixed,
         {"train_encoder": False, "feature_cache_clips": cache, "encoder_cache_clips": cache}),
        ("frozen encoder + both caches + task-grouped", grouped,
         {"train_encoder": False, "feature_cache_clips": cache, "encoder_cache_clips": cache}),
        ("trained encoder + feature cache + task-grouped", grouped,
         {"train_encoder": True, "feature_cache_clips": cache}),
    ]
    results = {}
    for name, index_batches, kwargs in variants:
        results[name] = measure(name, data, index_batches, **kwargs)
    base = results["trained encoder"]
    report = {"machine": f"{platform.machine()}, {args.threads} thread(s), torch "
                         f"{torch.__version__}",
              "batch_size": batch_size, "steps": args.steps,
              "seconds_per_step": results,
              "speedup_vs_trained_encoder": {k: base / v for k, v in results.items()}}
    print(json.dumps(report["speedup_vs_trained_encoder"], indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
