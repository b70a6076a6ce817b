#!/usr/bin/env python3
"""Run the miniature reproduction table and write it into the recipe README.

    python recipes/Simulated/ALLD/run_table.py recipes/Simulated/ALLD/hparams/table.yaml
    python recipes/Simulated/ALLD/run_table.py recipes/Simulated/ALLD/hparams/table.yaml \\
        --seeds=[0]          # any key of table.yaml can be overridden
    python recipes/Simulated/ALLD/run_table.py recipes/Simulated/ALLD/hparams/table.yaml \\
        --only=[warmup]      # start only these runs; the table names what is not done yet

Starts every (system, seed) run of ``table.yaml`` that has not finished as its own process
(logs in ``<output_folder>/seed_<s>/<run>/run.log``), so an interrupted table resumes; then
prints the table and writes ``table.md``, ``table.json`` and ``runs.json`` to ``output_folder``
and the report (command, date, machine, wall time, table) into ``readme`` between the
``<!-- table:start -->`` and ``<!-- table:end -->`` markers (``section: ablation``: between
``<!-- ablation:start -->`` and ``<!-- ablation:end -->``).
"""

import shlex
import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_alld.table import replace_section, report, run_table

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file, encoding="utf-8") as fin:
        config = load_hyperpyyaml(fin, overrides)
    table = run_table(config, progress=not run_opts.get("noprogressbar", False))
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    text = report(table, config, command)
    print(text)
    if config.get("readme"):
        readme = Path(config["readme"])
        old = readme.read_text(encoding="utf-8") if readme.is_file() else ""
        section = config.get("section", "table")  # <!-- section:start --> ... :end -->
        readme.write_text(replace_section(old, text, f"<!-- {section}:start -->",
                                          f"<!-- {section}:end -->"), encoding="utf-8")
        print(f"\nwritten to {readme}")
