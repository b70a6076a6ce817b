"""The miniature reproduction table: run every system for every seed, aggregate, write markdown.

A table is described by a YAML file (``recipes/Simulated/ALLD/hparams/table.yaml``): the seeds,
the runs (a recipe script, its hparams, overrides, and which test summaries become which rows)
and the columns. :func:`run_table` starts each (run, seed) as its own process, skips the ones whose
summaries exist (so an interrupted table resumes), records every run's wall time, then
:func:`aggregate` reduces the per-seed scores to mean and spread and :func:`markdown_table` writes
them. :func:`replace_section` puts the table into a README between two markers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from speechbrain_alld.corpora.prepare import read_json
from speechbrain_alld.durable import write_json_atomic
from speechbrain_alld.stats import read_items
from speechbrain_alld.table_archive import (
    archive_root,
    archive_run,
    check_dependencies,
    commits_line,
    read_records,
    run_test_manifest,
    same_command,
    stale_error,
)
from speechbrain_alld.table_compare import (
    ab_breakdown,
    compare_systems,
    comparison_markdown,
    items_path,
    pair_gaps,
)
from speechbrain_alld.table_format import (  # noqa: F401 (re-exported)
    END_MARKER,
    START_MARKER,
    aggregate,
    format_cell,
    format_value,
    machine_description,
    markdown_table,
    replace_section,
)
from speechbrain_alld.table_select import check_selected


def merge_overrides(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Overrides merged left to right; nested mappings (a stage's block) merge key by key.

    Arguments
    ---------
    *layers : mapping or None
        Override mappings, later ones winning.

    Returns
    -------
    One merged dict (the inputs are not modified).

    Example
    -------
    >>> merge_overrides({"sft": {"lr": 1, "number_of_epochs": 4}}, {"sft": {"lr": 2}}, None)
    {'sft': {'lr': 2, 'number_of_epochs': 4}}
    """
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in dict(layer or {}).items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = merge_overrides(out[key], value)
            else:
                out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def _fill(value: Any, fields: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format(**fields)
    if isinstance(value, Mapping):
        return {k: _fill(v, fields) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_fill(v, fields) for v in value]
    return value


def _override_args(overrides: Mapping[str, Any], **fields: Any) -> list[str]:
    """``--key=value`` arguments, nested values as YAML flow (JSON); ``{run_folder}``,
    ``{seed}``, ``{output_folder}``, ``{archive_folder}`` in string values are filled in."""
    args = []
    for key, value in overrides.items():
        value = _fill(value, fields)
        if isinstance(value, (Mapping, list)):
            value = json.dumps(value)
        args.append(f"--{key}={value}")
    return args


def run_command(config: Mapping[str, Any], name: str, seed: Any,
                python: str | None = None) -> list[str]:
    """The command line that starts one (run, seed) of a table config."""
    spec = config["runs"][name]
    folder = Path(config["output_folder"]) / f"seed_{seed}" / name
    overrides = merge_overrides({"seed": seed, "output_folder": str(folder)},
                                config.get("common_overrides"),
                                config.get(spec.get("budget") or "", None),
                                spec.get("overrides"))
    recipe = Path(config["recipe_folder"])
    return [python or sys.executable, str(recipe / spec["script"]),
            str(recipe / spec["hparams"]),
            *_override_args(overrides, run_folder=folder, seed=seed,
                            output_folder=config["output_folder"],
                            archive_folder=config.get("archive_folder") or ""),
            "--noprogressbar"]


def _run_one(config: Mapping[str, Any], name: str, seed: Any, python: str | None,
             threads: int | None) -> tuple[list[str], float]:
    """Start one (run, seed) as a process; returns its command and wall seconds."""
    spec = config["runs"][name]
    folder = Path(config["output_folder"]) / f"seed_{seed}" / name
    cmd = run_command(config, name, seed, python)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "run.log"
    start = time.perf_counter()
    with open(log, "a", encoding="utf-8") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{name}/seed_{seed} failed (exit {proc.returncode}): "
                           f"{' '.join(cmd)}\n--- end of {log} ---\n{tail}")
    missing = [str(folder / rel) for rel in spec["rows"].values()
               if not (folder / rel).is_file()]
    if missing:
        raise RuntimeError(f"{name}/seed_{seed} finished without writing {missing}")
    return cmd, seconds


def _finished(config: Mapping[str, Any], where: Path, records: Mapping[str, Any], name: str,
              seed: Any, python: str | None = None) -> bool:
    """Whether (run, seed) finished in ``where`` (its record and every row file are there);
    a finished run made with another command than the table's now is refused."""
    key = f"{name}/seed_{seed}"
    folder = where / f"seed_{seed}" / name
    if key not in records or not all((folder / rel).is_file()
                                     for rel in config["runs"][name]["rows"].values()):
        return False
    recorded = records[key].get("command")
    command = run_command(config, name, seed, python)
    if recorded is not None and where != Path(config["output_folder"]):
        recorded = ["python", *recorded]  # archive records keep no interpreter
    if recorded is not None and not same_command(recorded, command):
        raise stale_error(key, where, recorded, command)
    return True


def run_table(config: Mapping[str, Any], *, python: str | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Run every (run, seed) of a table config that has not finished, then aggregate.

    ``config["parallel"]`` runs (default 1) go at once, each with ``threads_per_run`` torch
    threads (default: torch's own choice). The first run listed makes each seed's corpus, so the
    other runs of a seed start once it has finished; a run whose spec lists ``after: [names]``
    (e.g. ALLD runs that start from another run's warm-up model) waits for those runs of its
    seed too. With ``config["archive_folder"]``, each finished run's results are also copied
    there (:mod:`speechbrain_alld.table_archive`) and count as finished in later invocations,
    on another machine too, as long as the table would start the run with the same command.
    ``config["only"]`` (run names; ``[]``: none) starts only those runs; the table is then
    collected from what is finished, and ``missing`` lists the (run, seed) not done yet.
    Writes ``runs.json`` (each
    run's command and wall time), ``wall.json`` (elapsed time), ``table.json`` (per-seed values
    and aggregates) and
    ``table.md`` to ``config["output_folder"]``; returns the ``table.json`` content. A failed
    run raises with the tail of its log; the finished ones stay recorded.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    out = Path(config["output_folder"])
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / "runs.json"
    runs_log: dict[str, Any] = read_json(runs_path) if runs_path.is_file() else {}
    names = list(config["runs"])
    for name, spec in config["runs"].items():
        unknown = [n for n in spec.get("after") or [] if n not in names or n == name]
        if unknown:
            raise ValueError(f"table run {name!r}: 'after' names {unknown}, not other runs of "
                             f"the table ({', '.join(names)})")

    archive = archive_root(config)
    archived = read_records(archive)
    in_output = {(n, s): _finished(config, out, runs_log, n, s, python)
                 for n in names for s in config["seeds"]}
    in_archive = {(n, s): archive is not None and _finished(config, archive, archived, n, s,
                                                             python)
                  for n in names for s in config["seeds"]}
    only = names if config.get("only") is None else list(config["only"])
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ValueError(f"only: {unknown} are not runs of the table ({', '.join(names)})")
    pending = [(n, s) for s in config["seeds"] for n in names[1:]
               if n in only and not (in_output[n, s] or in_archive[n, s])]
    # The first run of a seed makes its corpus: the seed's other runs wait for it, and it is
    # made again (seconds) when it survives only in the archive and others must run.
    first = [(n, s) for n in names[:1] for s in config["seeds"] if not in_output[n, s] and (
        (n in only and not in_archive[n, s]) or any(seed == s for _, seed in pending))]
    pending = first + pending
    check_dependencies(config, pending, in_output)
    check_selected(config, pending)
    bar = tqdm(total=len(pending), desc="table runs", disable=not progress)
    wall_path = (archive or out) / "wall.json"
    wall = read_json(wall_path) if wall_path.is_file() else {"seconds": 0.0, "invocations": 0}
    started = time.perf_counter()
    parallel = int(config.get("parallel", 1) or 1)
    threads = config.get("threads_per_run")
    running: dict[Any, tuple[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        while pending or running:
            for job in list(pending):
                if len(running) >= parallel:
                    break
                name, seed = job
                # A seed's first run makes its corpus; ``after`` names runs this one reads.
                needs = [] if name == names[0] else [names[0]]
                needs += list(config["runs"][name].get("after") or [])
                if any((n, seed) in pending or (n, seed) in running.values() for n in needs):
                    continue
                pending.remove(job)
                running[pool.submit(_run_one, config, name, seed, python, threads)] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name, seed = running.pop(future)
                cmd, seconds = future.result()  # re-raises a failed run
                key = f"{name}/seed_{seed}"
                # A resumed run adds its time to the interrupted attempt's.
                previous = runs_log.get(key, {}).get("seconds", 0.0)
                runs_log[key] = {"command": cmd, "seconds": previous + seconds}
                write_json_atomic(runs_path, runs_log)
                if archive is not None:
                    archive_run(config, name, seed, out / f"seed_{seed}" / name,
                                runs_log[key])
                bar.update(1)
                bar.set_postfix_str(key)
                # Elapsed time of every invocation that ran something (resumes add up).
                write_json_atomic(wall_path, {
                    "seconds": wall["seconds"] + time.perf_counter() - started,
                    "invocations": wall["invocations"] + 1})
    bar.close()
    return collect_table(config)


def collect_table(config: Mapping[str, Any]) -> dict[str, Any]:
    """Read every run's test summaries, aggregate over seeds, write table.json and table.md."""
    out = Path(config["output_folder"])
    runs_log = read_records(out)
    archive = archive_root(config)
    archived = read_records(archive)
    folders: dict[tuple[str, Any], Path] = {}
    missing = []
    for name in config["runs"]:
        for seed in config["seeds"]:
            key = f"{name}/seed_{seed}"
            if _finished(config, out, runs_log, name, seed):
                folders[name, seed] = out / f"seed_{seed}" / name
            elif archive is not None and _finished(config, archive, archived, name, seed):
                folders[name, seed] = archive / f"seed_{seed}" / name
                runs_log[key] = archived[key]
            else:
                missing.append(key)
    keys = [c[1] for c in config["columns"]]
    breakdown = any(k.startswith("ab_acc_") for k in keys)
    per_seed: dict[str, dict[str, dict[str, float | None]]] = {}
    for name, spec in config["runs"].items():
        for row, rel in spec["rows"].items():
            values: dict[str, dict[str, float | None]] = {}
            for seed in config["seeds"]:
                if (name, seed) not in folders:
                    values[str(seed)] = {}
                    continue
                folder = folders[name, seed]
                summary = read_json(folder / rel)
                if breakdown and summary.get("ab_n"):
                    # The pairs' gaps: the run's evaluation manifest, or its items' own.
                    manifest = folder / run_test_manifest(config, name)
                    items = read_items(items_path(folder / rel))
                    gaps = (pair_gaps(manifest) if manifest.is_file() else
                            {k: float(r["gap"]) for k, r in items.items() if "gap" in r})
                    summary.update(ab_breakdown(items, gaps))
                values[str(seed)] = {k: summary.get(k) for k in keys if k in summary}
            per_seed[row] = values
    results = {row: {k: aggregate({s: v.get(k) for s, v in seeds.items()})
                     for k in keys if any(k in v for v in seeds.values())}
               for row, seeds in per_seed.items()}
    run_seconds = {name: [runs_log.get(f"{name}/seed_{s}", {}).get("seconds")
                          for s in config["seeds"]] for name in config["runs"]}
    comparisons = {}
    for spec in config.get("comparisons") or []:
        pairs = {}
        for seed in config["seeds"]:
            if all((run, seed) in folders for run, _ in (spec["a"], spec["b"])):
                pairs[str(seed)] = tuple(
                    read_items(items_path(folders[run, seed] / rel))
                    for run, rel in (spec["a"], spec["b"]))
        if not pairs:
            continue
        result = compare_systems(pairs, n_resamples=int(config.get("bootstrap", 2000)))
        if len(pairs) < len(config["seeds"]):
            result["mean"] = {}  # a mean of the seeds that happen to be done would mislead
        comparisons[spec["name"]] = result
    wall_path = (archive or out) / "wall.json"
    keys_run = [f"{n}/seed_{s}" for n in config["runs"] for s in config["seeds"]
                if f"{n}/seed_{s}" not in missing]
    table = {"per_seed": per_seed, "results": results, "comparisons": comparisons,
             "commits": commits_line({**read_records(out), **archived}, keys_run),
             "run_seconds": run_seconds,
             "total_seconds": sum(v for secs in run_seconds.values() for v in secs if v),
             "wall_seconds": read_json(wall_path)["seconds"] if wall_path.is_file() else None,
             "seeds": list(config["seeds"]), "missing": missing,
             "machine": machine_description()}
    write_json_atomic(out / "table.json", table)
    (out / "table.md").write_text(markdown_table(results, config["columns"]) + "\n",
                                  encoding="utf-8")
    return table


def _minutes(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s"


def report(table: Mapping[str, Any], config: Mapping[str, Any], command: str,
           date: str | None = None) -> str:
    """The markdown the README gets: command, date, machine, budget, wall times, the table."""
    date = date or time.strftime("%Y-%m-%d")
    seeds = table["seeds"]
    lines = [
        f"Command: `{command}`",
        "",
        f"Run {date} on {table['machine']}. "
        + (f"Seeds {', '.join(str(s) for s in seeds)}; each cell is the mean ± standard "
           f"deviation over the {len(seeds)} seeds (a percent's spread is in points; "
           "`(k/n)`: only k seeds gave a value)."
           if len(seeds) > 1 else f"Seed {seeds[0]} only, so no spread is given."),
        "",
        f"Wall time of the whole table: {_minutes(table['wall_seconds'] or 0)} with "
        f"{config.get('parallel', 1)} run(s) at a time, each with "
        f"{config.get('threads_per_run') or 'the default number of'} thread(s); the runs' own "
        f"times add up to {_minutes(table['total_seconds'])}. Per run and seed: "
        + "; ".join(f"{name} " + " / ".join(_minutes(s) if s else "?" for s in secs)
                    for name, secs in table["run_seconds"].items()) + "."
        + (" " + table["commits"] if table.get("commits") else ""),
        *(["", f"**Not run yet** ({len(table['missing'])} of "
                 f"{len(config['runs']) * len(seeds)} runs; their cells are missing, and a "
                 "comparison has no mean of seeds until all its seeds are done): "
                 + ", ".join(table["missing"]) + "."] if table.get("missing") else []),
        "",
        "Budget: " + "; ".join(
            f"{name}: " + ", ".join(f"{k}={v}" for k, v in merge_overrides(
                config.get(spec.get("budget") or "", None), spec.get("overrides")).items())
            for name, spec in config["runs"].items()) + ".",
        "",
        markdown_table(table["results"], config["columns"]),
    ]
    if table.get("comparisons"):
        lines += ["", "Paired differences on the same evaluation items (b minus a; 95% paired "
                  f"bootstrap intervals, {config.get('bootstrap', 2000)} resamples; MOS "
                  "metrics on the items both systems parsed, A/B accuracy on all pairs with "
                  "unparsed verdicts wrong; the mean of seeds resamples each seed's items):",
                  "", comparison_markdown(table["comparisons"], seeds,
                                          config["comparison_columns"])]
    return "\n".join(lines)
