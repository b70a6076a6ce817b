#!/usr/bin/env python3
"""ALLD on the simulated corpus with tiny models: the embedded default (CPU, no downloads).

    python recipes/Simulated/ALLD/train.py recipes/Simulated/ALLD/hparams/alld.yaml
    python recipes/Simulated/ALLD/train.py recipes/Simulated/ALLD/hparams/alld.yaml \\
        --sft="{number_of_epochs: 8}" --alld="{lr: 0.0001, loss: {beta: 0.2}}"

Simulates the corpus, writes its manifests and expert descriptions (template expert), then runs
the chain below. Each stage reads its own block of ``alld.yaml`` and is skipped when its output
exists with the same settings; one made with other settings is refused (StageMismatchError).
The same chain as recipes/NISQA/ALLD/train.py, on data and models that fit a 2-core CPU.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_alld.chain import (
    alld_stage,
    examples_stage,
    reference_stage,
    sample_stage,
    sft_stage,
    test_stage,
    tiny_models_stage,
)
from speechbrain_alld.corpora import prepare_corpus
from speechbrain_alld.describe.generate import describe_manifests
from speechbrain_alld.evaluation import export_trained_models
from speechbrain_alld.resume import StageRunner, debug_overrides, yaml_blocks
from speechbrain_alld.simulation import simulate_corpus

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    overrides = debug_overrides(overrides, run_opts)  # --debug keeps nothing, as in SpeechBrain
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    progress = not run_opts.get("noprogressbar", False)

    # Data: the simulated corpus, its NISQA-style manifests, the expert descriptions.
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

    # The chain: one stage per YAML block, each fingerprinted by its block and its inputs.
    runner = StageRunner(yaml_blocks(hparams_file, overrides), run_opts)
    tiny_models_stage(runner, "tiny", hparams["tiny"])
    data = examples_stage(runner, "examples", hparams["examples"])
    sft = sft_stage(runner, "sft", hparams["sft"], data)
    models = {"sft": sft}
    if hparams["run_alld"]:
        rejected = sample_stage(runner, "sample", hparams["sample"], sft, data)
        preference = reference_stage(runner, "reference", hparams["reference"], rejected)
        models["alld"] = alld_stage(runner, "alld", hparams["alld"], sft, preference, data)
    tests = test_stage(runner, "testing", hparams["testing"], models, data)

    export_trained_models(tests.info, hparams["max_new_tokens"])
