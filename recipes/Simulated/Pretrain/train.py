#!/usr/bin/env python3
"""Pretrain the tiny Qwen2-Audio on generic audio tasks (no ratings) and optionally ship it.

    python recipes/Simulated/Pretrain/train.py recipes/Simulated/Pretrain/hparams/pretrain.yaml
    python recipes/Simulated/Pretrain/train.py recipes/Simulated/Pretrain/hparams/pretrain.yaml \\
        --ship=True

Simulates a separate pool of clips (its own subsets and seed), writes one example per clip and
task (the spoken sentence; the recorded acoustic condition), trains a tokenizer on generic texts
and a randomly initialised tiny Qwen2-Audio with the SFT objective, then generates on held-out
clips and writes ``<output_folder>/PRETRAINED.json``: budget, data, held-out result. With
``--ship=True`` the model and that record (with the SHA-256 of every file) are copied to
``speechbrain_alld/assets/tiny_qwen2_audio_pretrained``, where the embedded default starts from.
"""

import json
import platform
import sys
import time
from pathlib import Path

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import if_main_process, run_on_main

from speechbrain_alld.chain import sft_stage
from speechbrain_alld.durable import file_fingerprint, write_json_atomic
from speechbrain_alld.pretraining import (
    generate_held_out,
    init_pretraining_policy,
    ship_pretrained,
    write_pretraining_examples,
)
from speechbrain_alld.resume import StageRunner, debug_overrides, yaml_blocks
from speechbrain_alld.simulation import simulate_corpus


def run_stage(runner, name, block, fn, args, inputs, skip=(), **extra):
    """A stage of its YAML block: ``fn(*args, **block minus folder and skip, **extra)`` on the
    main process, skipped when it finished with the same block and inputs."""
    folder = Path(block["folder"])
    fp, done = runner.lookup(name, block, folder, inputs=inputs)
    if done is not None:
        return done
    kwargs = {k: v for k, v in block.items() if k not in ("folder", *skip)}
    info = run_on_main(fn, args=args, kwargs={**kwargs, **extra})
    return runner.finish(name, folder, fp, info)


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    overrides = debug_overrides(overrides, run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    t0 = time.perf_counter()
    sizes = {hparams["train_subset"]: hparams["pool_size"],
             hparams["heldout_subset"]: hparams["heldout_size"]}
    run_on_main(simulate_corpus, kwargs={
        "out_dir": hparams["corpus_folder"], "sizes": sizes, "seed": hparams["seed"],
        "config": hparams["simulation_config"], "num_workers": hparams["num_workers"],
        "progress": not run_opts.get("noprogressbar", False)})

    runner = StageRunner(yaml_blocks(hparams_file, overrides), run_opts)
    # Examples of the pool (input: its corpus CSV), the tokenizer and the random-init policy,
    # pretraining (the SFT stage), greedy generation on the held-out clips.
    block = hparams["examples"]
    data = run_stage(runner, "examples", block, write_pretraining_examples,
                     [block["corpus_csv"], block["folder"]],
                     [file_fingerprint(block["corpus_csv"])], skip=("corpus_csv",))
    init = run_stage(runner, "init", hparams["init"], init_pretraining_policy,
                     [data["sft_train"], hparams["init"]["folder"]], [data])
    model = sft_stage(runner, "pretrain", hparams["pretrain"], data)
    heldout = run_stage(runner, "heldout", hparams["heldout"], generate_held_out,
                        [model["model"], data["heldout"]], [model, data],
                        progress=runner.progress)

    block = hparams["pretrain"]
    steps = -(-data["n_train"] // block["batch_size"]) * block["number_of_epochs"]
    record = {
        "what": "tiny Qwen2-Audio pretrained on generic audio tasks of simulated clips "
                "(no ratings); SIMULATION: espeak-ng speech, recorded degradations",
        "command": "python " + " ".join(sys.argv),
        "data": {"pool_clips": hparams["pool_size"], "heldout_clips": hparams["heldout_size"],
                 "seed": hparams["seed"], "tasks": list(hparams["examples"]["tasks"]),
                 "train_examples": data["n_train"], "skipped": data["skipped"]},
        "budget": {"epochs": block["number_of_epochs"], "batch_size": block["batch_size"],
                   "lr": block["lr"], "optimizer_steps": steps,
                   "wall_seconds_this_run": round(time.perf_counter() - t0, 1),
                   "machine": f"{platform.processor() or platform.machine()}, "
                              f"{torch.get_num_threads()} thread(s), torch {torch.__version__}"},
        "model": {"parameters": init["parameters"], "vocab_size": init["vocab_size"],
                  "config": dict(hparams["init"]["policy_config"]),
                  "window_seconds": hparams["window_seconds"]},
        "heldout": {k: v for k, v in heldout.info.items() if k != "fingerprint"},
    }
    if if_main_process():
        write_json_atomic(Path(hparams["output_folder"]) / "PRETRAINED.json", record)
        print(json.dumps({k: record[k] for k in ("data", "budget", "heldout")}, indent=1))
        if hparams["ship"]:
            print("shipped to", ship_pretrained(model["model"], record))
