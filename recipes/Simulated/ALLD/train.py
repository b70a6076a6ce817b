#!/usr/bin/env python3
"""ALLD on the simulated corpus with tiny models: the embedded default (CPU, no downloads).

    python recipes/Simulated/ALLD/train.py recipes/Simulated/ALLD/hparams/alld.yaml

Runs every stage, each skipped when its output exists: simulate the corpus -> manifests ->
expert descriptions (template expert) -> tiny tokenizer, tiny Qwen2-Audio policy and tiny expert
LM trained on (x_t -> y_t) -> SFT warm-up -> sample y_a -> reference log-probs -> ALLD -> test.
The same chain as recipes/NISQA/ALLD/train.py, on data and models that fit a 2-core CPU.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_alld.corpora import prepare_corpus
from speechbrain_alld.describe.generate import describe_manifests
from speechbrain_alld.evaluation import export_trained_models
from speechbrain_alld.simulation import simulate_corpus
from speechbrain_alld.stages import init_tiny_models, run_chain

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    progress = not run_opts.get("noprogressbar", False)
    splits = [hparams["train_split"], hparams["valid_split"], hparams["test_split"]]
    run_on_main(simulate_corpus, kwargs={
        "out_dir": hparams["corpus_folder"], "sizes": dict(hparams["sizes"]),
        "seed": hparams["seed"], "config": hparams["simulation_config"],
        "num_workers": hparams["num_workers"], "progress": progress})
    manifests = run_on_main(prepare_corpus, args=["nisqa", hparams["corpus_folder"],
                                                  hparams["manifest_folder"]],
                            kwargs={"splits": splits})
    run_on_main(describe_manifests, args=[manifests, hparams["expert_writer"],
                                          hparams["descriptions_folder"],
                                          hparams["describe_config"]],
                kwargs={"progress": progress})
    run_on_main(init_tiny_models, args=[hparams["descriptions_folder"], hparams["train_split"],
                                        hparams["tiny_folder"]], kwargs={
        "tasks": hparams["tasks"], "vocab_size": hparams["tiny_vocab_size"],
        "window_seconds": hparams["window_seconds"], "policy_config": hparams["tiny_policy"],
        "expert_config": hparams["tiny_expert"], "expert_steps": hparams["expert_steps"],
        "expert_lr": hparams["expert_lr"], "seed": hparams["seed"], "progress": progress})
    results = run_chain(hparams, run_opts)
    export_trained_models(results, hparams["max_new_tokens"])
