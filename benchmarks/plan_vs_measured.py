#!/usr/bin/env python3
"""The memory plan against the GPU peaks recorded by train_step.py (7B shapes, LoRA r=8, bf16).

    python benchmarks/plan_vs_measured.py

Prints, per recorded step, the plan (without the runtime reserve: ``max_memory_allocated`` has
no CUDA context) beside the measured peak and their relative difference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_alld.memory_plan import (  # noqa: E402
    PolicyShape,
    Workload,
    memory_plan,
    qwen2_audio_7b_config,
)

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = (("train_step_7b_h200.json", False), ("train_step_7b_b8_gc_h200.json", True))


def comparisons() -> list[dict]:
    """One record per recorded step: the shape's counts against the recorded ones, the
    workload's tokens against the recorded tokens, the plan and the measured peak (bytes)."""
    shape = PolicyShape.from_config(qwen2_audio_7b_config(), finetune="lora", lora_r=8)
    out = []
    for name, checkpointing in RUNS:
        measured = json.loads((RESULTS / name).read_text())
        for key, sequences in (("sft", 1), ("alld_precomputed", 2)):
            result = measured["results"][key]
            per_sequence = result["tokens_per_step"] / (measured["batch"] * sequences)
            work = Workload(batch_size=measured["batch"], sequences=sequences,
                            audio_seconds=measured["audio_seconds"],
                            text_tokens=round(per_sequence - 25 * measured["audio_seconds"]),
                            gradient_checkpointing=checkpointing)
            out.append({"run": name, "step": key, "tokens": work.tokens,
                        "measured_tokens": result["tokens_per_step"],
                        "parameters": (shape.n_params, measured["policy_parameters"]),
                        "trainable": (shape.n_trainable, measured["trainable_parameters"]),
                        "plan": memory_plan(shape, work, runtime=0)["total"],
                        "peak": result["peak_memory_mb"] * 2**20})
    return out


def main() -> None:
    for c in comparisons():
        print(f"{c['run']:32s} {c['step']:17s} plan {c['plan'] / 1e9:5.1f} GB  measured "
              f"{c['peak'] / 1e9:5.1f} GB  {c['plan'] / c['peak'] - 1:+.0%}")


if __name__ == "__main__":
    main()
