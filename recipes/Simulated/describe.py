#!/usr/bin/env python3
"""Generate the descriptive corpus for the simulated corpus with the offline TemplateExpert.

    python recipes/Simulated/simulate_prepare.py recipes/Simulated/hparams/simulate.yaml
    python recipes/Simulated/describe.py recipes/Simulated/hparams/describe.yaml

Reads the manifests written by ``simulate_prepare.py``, samples A/B pairs, generates every text
with the expert configured in the YAML (the template expert by default; any HFExpert works the
same), validates and caches them, and writes the MOS/A-B manifests and the JSON-lines export.
"""

import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_alld.describe.generate import describe_manifests

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    manifests = {s: Path(hparams["manifest_folder"]) / f"{s}.json" for s in hparams["splits"]}
    missing = [str(p) for p in manifests.values() if not p.is_file()]
    if missing:
        sys.exit(f"manifest(s) not found: {', '.join(missing)}\nrun "
                 "recipes/Simulated/simulate_prepare.py recipes/Simulated/hparams/simulate.yaml "
                 "first (with the same seed and sample rate)")
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    describe_manifests(manifests, hparams["expert"], hparams["save_folder"],
                       hparams["describe_config"], progress=not run_opts.noprogressbar)
