#!/usr/bin/env python3
"""Data-preparation speed: simulated-corpus generation and NISQA-layout manifest preparation.

    python benchmarks/data.py --clips 300 --out benchmarks/results/data.json

Generates ``--clips`` simulated clips (NISQA layout, 16 kHz) with 1 and with 2 worker processes
(clips/min, and the 2-worker speed-up measured in the same run), then prepares the manifests of
that corpus with the NISQA reader (files/s: CSV parsing, rating validation, audio probing).
Everything is written to a temporary folder.
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

from speechbrain_alld.corpora import prepare_corpus  # noqa: E402
from speechbrain_alld.simulation import SimulationConfig, simulate_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=300, help="training clips to simulate")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeats", type=int, default=3, help="manifest preparation repeats")
    parser.add_argument("--out", default="benchmarks/results/data.json")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="alld-bench-data-"))
    sizes = {"NISQA_TRAIN_SIM": args.clips}
    results: dict[str, float] = {}
    corpus = None
    for workers in (int(w) for w in args.workers.split(",")):
        corpus = tmp / f"corpus_w{workers}"
        t0 = time.perf_counter()
        simulate_corpus(corpus, sizes=sizes, seed=0, config=SimulationConfig(max_duration=4.0),
                        num_workers=workers, progress=False)
        results[f"simulate_{workers}_workers_clips_per_min"] = args.clips / (
            time.perf_counter() - t0) * 60
    assert corpus is not None
    times = []
    for k in range(args.repeats):
        t0 = time.perf_counter()
        manifests = prepare_corpus("nisqa", corpus, tmp / f"manifests_{k}")
        times.append(time.perf_counter() - t0)
    n_files = sum(len(json.loads(Path(p).read_text())) for p in manifests.values())
    results["prepare_files_per_s"] = n_files / min(times)

    print(f"{'step':40s} {'speed':>12s}")
    for name, value in results.items():
        print(f"{name:40s} {value:12.1f}")
    one = results.get("simulate_1_workers_clips_per_min")
    two = results.get("simulate_2_workers_clips_per_min")
    if one and two:
        print(f"2 workers / 1 worker: {two / one:.2f}x")
    report = {"clips": args.clips, "manifest_files": n_files, "results": results,
              "machine": platform.processor() or platform.machine(),
              "cpu_count": __import__("os").cpu_count()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
