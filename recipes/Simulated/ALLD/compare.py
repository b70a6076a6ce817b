#!/usr/bin/env python3
"""Paired bootstrap differences (b minus a) of two test runs on the same items.

    python recipes/Simulated/ALLD/compare.py \\
        results/Simulated/ALLD/seed_0/save/test/sft/test_sft_items.jsonl \\
        results/Simulated/ALLD/seed_0/save/test/alld/test_alld_items.jsonl

Prints one markdown row with MOS MSE, LCC and SRCC (items both parsed) and A/B accuracy (all
pairs, unparsed verdicts wrong), each with its 95% paired bootstrap interval.
"""

import argparse

from speechbrain_alld.stats import read_items
from speechbrain_alld.table_compare import compare_systems, comparison_markdown

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("items_a", help="test_*_items.jsonl of system a")
    parser.add_argument("items_b", help="test_*_items.jsonl of system b (on the same items)")
    parser.add_argument("--name", default="b minus a", help="the row's label")
    parser.add_argument("--seed", default="0", help="the seed both runs were made with")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    pairs = {args.seed: (read_items(args.items_a), read_items(args.items_b))}
    result = compare_systems(pairs, n_resamples=args.resamples)
    if not result["per_seed"][args.seed]:
        raise SystemExit(f"{args.items_a} and {args.items_b} share no scored items")
    print(comparison_markdown({args.name: result}, [args.seed], [
        ("MSE", "mse", "f3"), ("LCC", "lcc", "f3"), ("SRCC", "srcc", "f3"),
        ("A/B acc", "ab_accuracy", "pct")]))
