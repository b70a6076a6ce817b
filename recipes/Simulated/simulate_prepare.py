#!/usr/bin/env python3
"""Recipe: generate the simulated NISQA-layout corpus (the project's embedded default data).

SIMULATION ONLY: the ratings come from hand-written rules and simulated listeners
(``speechbrain_alld/simulation/rating_model.py``), not from people.

    python recipes/Simulated/simulate_prepare.py recipes/Simulated/hparams/simulate.yaml
    python recipes/Simulated/simulate_prepare.py recipes/Simulated/hparams/simulate.yaml \\
        --train_size=200 --valid_size=50 --test_size=50 --seed=1

The corpus is written to ``data_folder`` in the NISQA layout, then the SpeechBrain manifests of
``splits`` to ``save_folder`` (``<split>.json``). Rerunning with the same settings does nothing;
an interrupted run resumes. The generation speed (clips/min) is printed.
"""

from __future__ import annotations

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_alld.corpora import prepare_corpus
from speechbrain_alld.simulation import simulate_corpus


def main(argv: list[str]) -> None:
    """Parse ``hparams.yaml [--overrides]``, simulate the corpus, write its manifests."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    run_on_main(
        simulate_corpus,
        kwargs={
            "out_dir": hparams["data_folder"],
            "sizes": dict(hparams["sizes"]),
            "seed": int(hparams["seed"]),
            "config": hparams["simulation_config"],
            "clean_dir": hparams["clean_dir"],
            "num_workers": int(hparams["num_workers"]),
            "overwrite": bool(hparams["overwrite"]),
        },
    )
    # The NISQA reader ingests the simulated corpus unchanged: one JSON manifest per split.
    run_on_main(
        prepare_corpus,
        args=["nisqa", hparams["data_folder"], hparams["save_folder"]],
        kwargs={"splits": list(hparams["splits"])},
    )


if __name__ == "__main__":
    main(sys.argv[1:])
