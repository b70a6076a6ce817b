"""ALLD's logged rewards are means over every process's examples, not the local rank's."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from speechbrain_alld.brain import reduce_means

# Per rank: (sum of margins, number of examples). Rank 1 sees more examples.
SHARES = {0: (3.0, 2), 1: (10.0, 8)}


def _worker(rank: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        total, n = SHARES[rank]
        queue.put((rank, reduce_means({"rewards/margin": total, "n": n})))
    finally:
        dist.destroy_process_group()


def test_reduce_means_averages_over_all_processes():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = 29000 + os.getpid() % 1000
    mp.start_processes(_worker, args=(port, queue), nprocs=2, join=True, start_method="spawn")
    results = dict(queue.get(timeout=60) for _ in range(2))
    expected = sum(t for t, _ in SHARES.values()) / sum(n for _, n in SHARES.values())
    assert results[0]["rewards/margin"] == pytest.approx(expected)  # 13 / 10, not 3 / 2
    assert results[1] == results[0]


def test_reduce_means_in_one_process_is_the_local_mean():
    assert reduce_means({"a": 6.0, "b": -2.0, "n": 4}) == {"a": 1.5, "b": -0.5}
    assert not torch.distributed.is_initialized()
