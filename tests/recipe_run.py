"""The Simulated recipe on tiny models, run as a user runs it (shared by the training tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from speechbrain_alld.table import merge_overrides

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes/Simulated/ALLD/train.py"
HPARAMS = REPO / "recipes/Simulated/ALLD/hparams/alld.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
TINY = {"train_size": 16, "valid_size": 6, "test_size": 6, "num_workers": 1,
        "tiny": {"pretrained_policy": None,  # a random-init 32-d policy: fast
                 "policy_config": {"audio_dim": 32, "audio_layers": 1, "text_dim": 32,
                                   "text_layers": 1},
                 "expert_config": {"hidden_size": 32, "num_layers": 1}, "expert_steps": 5},
        "sft": {"number_of_epochs": 1, "batch_size": 4}, "alld": {"batch_size": 4},
        "eval_batch_size": 8, "max_new_tokens": 20}


def recipe_args(overrides, flags=("--noprogressbar",)):
    """``--key=value`` arguments (nested settings as YAML flow mappings) over TINY."""
    merged = merge_overrides(TINY, overrides)
    return [f"--{k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in merged.items()
            ] + list(flags)


def _run(overrides, cwd, launcher=(), flags=(), timeout=900):
    cmd = [*(launcher or [sys.executable]), str(RECIPE), str(HPARAMS),
           *recipe_args(overrides, ("--noprogressbar", *flags))]
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (proc.stdout[-2000:] + proc.stderr[-4000:])
    return proc


def _block(folder, epochs, lr, batch_size, **extra):
    """A stage block as the recipe's YAML declares it: the objects fit_policy builds on."""
    import functools

    from speechbrain.utils.checkpoints import Checkpointer
    from speechbrain.utils.epoch_loop import EpochCounter
    from speechbrain.utils.train_logger import FileTrainLogger

    from speechbrain_alld.schedulers import warmup_cosine_scheduler
    from speechbrain_alld.stats import ABStats, MOSStats

    counter = EpochCounter(limit=epochs)
    return {"opt_class": functools.partial(torch.optim.AdamW, lr=lr),
            "lr_scheduler": functools.partial(warmup_cosine_scheduler, warmup_ratio=0.0),
            "epoch_counter": counter,
            "checkpointer": Checkpointer(folder / "checkpoints", {"counter": counter}),
            "train_logger": FileTrainLogger(folder / "log.txt"),
            "train_dataloader_opts": {"batch_size": batch_size, "shuffle": True},
            "valid_dataloader_opts": {"batch_size": batch_size},
            "generate_every": 0, "max_new_tokens": 6, "mos_stats": MOSStats,
            "ab_stats": ABStats, **extra}
