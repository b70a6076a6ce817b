#!/usr/bin/env python3
"""Evaluate a trained model on a test manifest: per-item JSON lines, summary, table, plot.

    python evaluate.py hparams/evaluate.yaml --model=results/.../alld/model \
        --test_manifest=results/.../save/data/test.json

``--test_manifest`` (``--test`` would clash with SpeechBrain's ``--test_only``) takes the
training chain's evaluation items (MOS and A/B, with the expert texts for BLEU) or any manifest
written by the corpus preparation (MOS only). Interrupted runs resume.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_alld.evaluation import run_evaluation

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    run_evaluation(hparams, run_opts)
