#!/usr/bin/env python3
"""ALLD on NISQA with Qwen2-Audio-7B-Instruct (policy) and Qwen2-7B-Instruct (expert reference).

    python train.py hparams/alld.yaml --data_folder=/path/to/NISQA_Corpus
    python train.py hparams/sft.yaml --data_folder=/path/to/NISQA_Corpus       # SFT baseline
    torchrun --nproc_per_node=4 train.py hparams/alld.yaml --data_folder=...   # multi-GPU

Prepares the NISQA manifests, checks the descriptive corpus made by ``../describe.py`` (or makes
it when ``run_describe`` is True), then runs the chain below. Each stage reads its own block of
the YAML and is skipped when its output exists with the same settings; one made with other
settings is refused (StageMismatchError).
"""

import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nisqa_prepare import prepare_nisqa  # noqa: E402

from speechbrain_alld.chain import (  # noqa: E402
    alld_stage,
    examples_stage,
    reference_stage,
    sample_stage,
    sft_stage,
    test_stage,
)
from speechbrain_alld.describe.generate import describe_manifests  # noqa: E402
from speechbrain_alld.evaluation import export_trained_models  # noqa: E402
from speechbrain_alld.resume import (  # noqa: E402
    StageRunner,
    debug_overrides,
    world_size,
    yaml_blocks,
)

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    overrides = debug_overrides(overrides, run_opts)  # --debug keeps nothing, as in SpeechBrain
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    splits = [hparams["train_split"], hparams["valid_split"], hparams["test_split"]]
    manifests = run_on_main(prepare_nisqa, args=[hparams["data_folder"],
                                                 hparams["manifest_folder"], splits],
                            kwargs={"skip_prep": hparams["skip_prep"]})
    if hparams["run_describe"]:  # the expert is built on the main process only
        if world_size() > 1:
            # Rank 0 would describe for hours while the others wait at a barrier: the process
            # group's timeout kills the job long before a 70B describer is done.
            sys.exit("run_describe: True is for a single process: under torchrun the other "
                     "ranks would wait at a barrier past the process-group timeout. Run "
                     "recipes/NISQA/describe.py first as its own job, then train with "
                     "run_describe: False.")
        run_on_main(lambda: describe_manifests(manifests, hparams["expert_writer"](),
                                               hparams["descriptions_folder"],
                                               hparams["describe_config"]))
    missing = [s for s in splits
               if not (Path(hparams["descriptions_folder"]) / f"{s}_mos.json").is_file()]
    if missing:
        sys.exit(f"no descriptive corpus for {missing} in {hparams['descriptions_folder']}: run "
                 "recipes/NISQA/describe.py first, or set run_describe: True")

    # The chain: one stage per YAML block, each fingerprinted by its block and its inputs.
    runner = StageRunner(yaml_blocks(hparams_file, overrides), run_opts)
    data = examples_stage(runner, "examples", hparams["examples"])
    sft = sft_stage(runner, "sft", hparams["sft"], data)
    models = {"sft": sft}
    if hparams["run_alld"]:
        rejected = sample_stage(runner, "sample", hparams["sample"], sft, data)
        preference = reference_stage(runner, "reference", hparams["reference"], rejected)
        models["alld"] = alld_stage(runner, "alld", hparams["alld"], sft, preference, data)
    tests = test_stage(runner, "testing", hparams["testing"], models, data)

    export_trained_models(tests.info, hparams["max_new_tokens"])
