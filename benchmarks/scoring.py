#!/usr/bin/env python3
"""Scoring throughput: describe_batch at several batch sizes vs one-at-a-time describe_file.

    python benchmarks/scoring.py --model results/Simulated/ALLD/seed_0/save/alld/model \
        --clips results/simulated_nisqa/seed_0_16000/NISQA_TEST_SIM/deg

Without ``--model`` a tiny random model of the same classes is built. When the optional
``speechmos`` package is installed (``pip install -e ".[bench]"``; its ONNX weights ship in the
wheel), DNSMOS P.835 scores the same clips one at a time, for scale: a small non-generative MOS
predictor next to a generative evaluator.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_alld.inference import DescriptiveQualityEvaluator  # noqa: E402


def dnsmos_speed(clips: list[str]) -> float | None:
    """DNSMOS P.835 clips/s over ``clips`` (one at a time), or None without ``speechmos``."""
    try:
        from speechmos import dnsmos
    except ImportError:
        print("speechmos is not installed: no DNSMOS comparison (pip install -e '.[bench]')")
        return None
    import soundfile as sf
    import torch
    import torchaudio

    def load(path: str):
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        wav = torch.from_numpy(data.T.copy()).mean(0)
        if sr != 16000:
            wav = torchaudio.functional.resample(wav, sr, 16000)
        return wav.numpy()

    dnsmos.run(load(clips[0]), sr=16000)  # warm-up: the ONNX sessions load here
    t0 = time.perf_counter()
    for clip in clips:
        dnsmos.run(load(clip), sr=16000)
    return len(clips) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--clips", required=True, help="folder of wav files")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--out", default="benchmarks/results/scoring.json")
    args = parser.parse_args()

    clips = sorted(str(p) for p in Path(args.clips).rglob("*.wav"))[: args.n]
    if not clips:
        sys.exit(f"no wav files under {args.clips}")
    model = args.model
    if model is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from tiny_model import make_model_folder

        model = str(make_model_folder(Path(tempfile.mkdtemp()), window_seconds=4.0,
                                      max_new_tokens=args.max_new_tokens))
    evaluator = DescriptiveQualityEvaluator.from_hparams(
        source=model, savedir=tempfile.mkdtemp(),
        overrides={"max_new_tokens": args.max_new_tokens})
    evaluator.describe_batch(clips[:2])  # warm-up

    results = {}
    t0 = time.perf_counter()
    for clip in clips:
        evaluator.describe_file(clip)
    results["describe_file"] = len(clips) / (time.perf_counter() - t0)
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        t0 = time.perf_counter()
        for start in range(0, len(clips), bs):
            evaluator.describe_batch(clips[start:start + bs])
        results[f"describe_batch_{bs}"] = len(clips) / (time.perf_counter() - t0)
    dnsmos = dnsmos_speed(clips)
    if dnsmos is not None:
        results["dnsmos_p835"] = dnsmos
    base = results["describe_file"]
    print(f"{'method':20s} {'clips/s':>9s} {'x file':>7s}")
    for name, value in results.items():
        print(f"{name:20s} {value:9.2f} {value / base:7.2f}")
    report = {"model": model, "n_clips": len(clips), "max_new_tokens": args.max_new_tokens,
              "machine": platform.processor() or platform.machine(), "clips_per_second": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
