#!/usr/bin/env python3
"""Apply a validation grid's pre-registered ``selection:`` rule and print the chosen setting.

    python recipes/Simulated/ALLD/select_setting.py \\
        recipes/Simulated/ALLD/hparams/ablation_alld_seeds.yaml

Reads the grid's runs (its output folder, or the archive for runs made in earlier sittings) as
``run_table.py`` does, without starting any run, then prints each candidate's verdict and the
choice (:mod:`speechbrain_alld.table_select`), writes them into the recipe README between
``<!-- <section>-selection:start -->`` and ``<!-- <section>-selection:end -->`` and records the
choice in ``<archive_folder>/selection.json``, which ``table.yaml`` checks before its ALLD runs
start (``requires_selection``). A grid with runs still to do is refused.
"""

import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_alld.durable import write_json_atomic
from speechbrain_alld.table import collect_table, replace_section
from speechbrain_alld.table_select import select_setting, selection_markdown, selection_record

if __name__ == "__main__":
    hparams_file, _, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file, encoding="utf-8") as fin:
        config = load_hyperpyyaml(fin, overrides)
    if "selection" not in config:
        raise SystemExit(f"{hparams_file} has no selection: block")
    table = collect_table(config)
    command = "python " + " ".join(sys.argv)
    selection = select_setting(table, config)
    text = f"Command: `{command}`\n\n" + selection_markdown(selection, config)
    print(text)
    if config.get("archive_folder"):
        record = Path(config["archive_folder"]) / "selection.json"
        write_json_atomic(record, selection_record(selection, config, command))
        print(f"\nthe choice is recorded in {record}")
    if config.get("readme"):
        readme = Path(config["readme"])
        section = config.get("section", "table") + "-selection"
        readme.write_text(replace_section(readme.read_text(encoding="utf-8"), text,
                                          f"<!-- {section}:start -->",
                                          f"<!-- {section}:end -->"), encoding="utf-8")
        print(f"\nwritten to {readme}")
