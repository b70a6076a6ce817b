#!/usr/bin/env python3
"""Regression baseline on the simulated corpus: encoder + pooling + MOS/dimension head, MSE.

    python recipes/Simulated/ALLD/train_regression.py \\
        recipes/Simulated/ALLD/hparams/regression.yaml

Simulates the corpus (skipped when it exists; the same clips and split as ``alld.yaml`` for the
same seed), writes the manifests, trains with MSE (checkpointed, resumable) and tests the
checkpoint with the lowest valid loss: ``test_regression_summary.json`` (MOS MSE/LCC/SRCC and
each dimension's MSE/LCC) and ``test_regression_items.jsonl`` in ``output_folder``.
"""

import math
import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_alld.brain import RegressionBrain
from speechbrain_alld.corpora import prepare_corpus
from speechbrain_alld.dataset import load_waveform, split_items
from speechbrain_alld.simulation import simulate_corpus


def dataio_prepare(hparams, manifests, model):
    """Train/valid/test datasets providing ``features``, ``n_frames`` and ``targets``."""
    datasets = {}
    for name in ("train", "valid", "test"):
        data = sb.dataio.dataset.DynamicItemDataset.from_json(
            manifests[hparams[f"{name}_split"]])
        if name == "train" and hparams["train_items"] == "warmup":
            keep, _ = split_items(data.data_ids, hparams["warmup_fraction"], hparams["seed"])
            data = data.filtered_sorted(key_test={"id": lambda i, k=set(keep): i in k})
        elif name == "train" and hparams["train_items"] != "all":
            raise ValueError(f"train_items must be 'all' or 'warmup', got "
                             f"{hparams['train_items']!r}")
        datasets[name] = data

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("features", "n_frames")
    def audio_pipeline(wav):
        features, n_frames = model.features(load_waveform(wav, model.sampling_rate))
        yield features
        yield n_frames

    @sb.utils.data_pipeline.takes(*model.targets)
    @sb.utils.data_pipeline.provides("targets")
    def target_pipeline(*ratings):
        return torch.tensor([math.nan if r is None else float(r) for r in ratings])

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), target_pipeline)
    sb.dataio.dataset.set_output_keys(list(datasets.values()),
                                      ["id", "features", "n_frames", "targets"])
    return datasets


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    splits = [hparams["train_split"], hparams["valid_split"], hparams["test_split"]]
    run_on_main(simulate_corpus, kwargs={
        "out_dir": hparams["corpus_folder"], "sizes": dict(hparams["sizes"]),
        "seed": hparams["seed"], "config": hparams["simulation_config"],
        "num_workers": hparams["num_workers"],
        "progress": not run_opts.get("noprogressbar", False)})
    manifests = run_on_main(prepare_corpus, args=["nisqa", hparams["corpus_folder"],
                                                  hparams["manifest_folder"]],
                            kwargs={"splits": splits})
    datasets = dataio_prepare(hparams, manifests, hparams["model"])
    steps = math.ceil(len(datasets["train"]) / hparams["batch_size"]) * hparams[
        "number_of_epochs"]
    hparams["total_steps"] = steps  # what lr_scheduler spans
    brain = RegressionBrain(modules=hparams["modules"], opt_class=hparams["opt_class"],
                            hparams=hparams, run_opts=run_opts,
                            checkpointer=hparams["checkpointer"])
    brain.fit(hparams["epoch_counter"], datasets["train"], datasets["valid"],
              train_loader_kwargs=hparams["train_dataloader_opts"],
              valid_loader_kwargs=hparams["valid_dataloader_opts"])
    brain.evaluate(datasets["test"], min_key="loss",
                   test_loader_kwargs=hparams["valid_dataloader_opts"])
