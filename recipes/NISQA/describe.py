#!/usr/bin/env python3
"""Generate the descriptive corpus for NISQA with an expert LLM (ALLD step 1).

    python describe.py hparams/describe.yaml --data_folder=/path/to/NISQA_Corpus

Prepares the manifests (if needed), samples A/B pairs, asks the expert configured in the YAML
for every text, validates and caches them, and writes SpeechBrain manifests for the MOS and A/B
tasks plus an export in the paper's JSON-lines layout. Rerunning resumes from the cache.
"""

import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nisqa_prepare import prepare_nisqa  # noqa: E402

from speechbrain_alld.describe.generate import describe_manifests  # noqa: E402

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    manifests = prepare_nisqa(hparams["data_folder"], hparams["manifest_folder"],
                              hparams["splits"], skip_prep=hparams["skip_prep"])
    describe_manifests(manifests, hparams["expert"], hparams["save_folder"],
                       hparams["describe_config"], progress=not run_opts.noprogressbar)
