"""Finished table runs kept in the repository, so a table too long for one sitting accumulates.

A table's ``output_folder`` (models, checkpoints, logs) is too large to keep and is lost with the
machine. With ``archive_folder`` set, :mod:`speechbrain_alld.table` copies what the table reads
from each finished (run, seed) into it: the rows' test summaries and items files, and the A/B
gaps of the run's test manifest (``task`` and ``gap`` of its A/B entries only), at the same
paths as in the run's folder, plus a record in ``<archive_folder>/runs.json``: the run's command
(without the interpreter), its wall time, the date, and the git commit it ran at. A run's
``keep:`` paths (e.g. ``save/sft/model``, a tiny warm-up model of a few MB) are copied too, so
runs of a later sitting can start from them.

A later invocation counts an archived run as finished only if the table would start it with the
same command; a changed budget or override is refused with the run and both commands named, never
silently reused. Runs that start from another run's model (``after:``) need that run's folder,
or its ``keep:`` paths in the archive: :func:`check_dependencies` says so before anything starts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from speechbrain_alld.corpora.prepare import read_json
from speechbrain_alld.durable import write_json_atomic, write_text_atomic
from speechbrain_alld.table_compare import items_path


def archive_root(config: Mapping[str, Any]) -> Path | None:
    """The table's ``archive_folder`` (None: no archive)."""
    folder = config.get("archive_folder")
    return Path(folder) if folder else None


def read_records(folder: Path | None) -> dict[str, Any]:
    """``runs.json`` of a run log or an archive (``{}`` when there is none)."""
    path = None if folder is None else folder / "runs.json"
    return read_json(path) if path is not None and path.is_file() else {}


def git_commit(cwd: str | Path = ".") -> str | None:
    """``git rev-parse HEAD`` (with ``+dirty`` for uncommitted changes), or None outside git.

    Example
    -------
    >>> import tempfile
    >>> git_commit(tempfile.mkdtemp()) is None
    True
    """
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=30)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def same_command(recorded: Sequence[str], command: Sequence[str]) -> bool:
    """Whether a recorded command and a new one run the same thing (interpreter aside).

    Example
    -------
    >>> same_command(["/usr/bin/python3", "t.py", "--lr=1"], ["python", "t.py", "--lr=1"])
    True
    >>> same_command(["python", "t.py", "--lr=1"], ["python", "t.py", "--lr=2"])
    False
    """
    return list(recorded)[1:] == list(command)[1:]


def stale_error(key: str, where: Path, recorded: Sequence[str], command: Sequence[str]
                ) -> ValueError:
    """The refusal for a finished run whose command differs from the one the table asks for."""
    old, new = list(recorded)[1:], list(command)[1:]
    changed = [f"  was: {a}\n  now: {b}" for a, b in zip(old, new) if a != b]
    if len(old) != len(new):
        changed.append(f"  was {len(old)} arguments, now {len(new)}")
    return ValueError(
        f"table run {key} in {where} was made with another command than the table now asks "
        "for:\n" + "\n".join(changed) + f"\nDelete its entry from {where / 'runs.json'} (and "
        f"its folder {where / key.split('/')[1] / key.split('/')[0]}) to run it again, or "
        "restore the settings it was made with.")


def run_test_manifest(config: Mapping[str, Any], name: str) -> Path:
    """A run's test manifest, relative to its folder (the run's, else the table's, setting)."""
    return Path(config["runs"][name].get("test_manifest", config.get(
        "test_manifest", "save/data/test.json")))


def archive_run(config: Mapping[str, Any], name: str, seed: Any, folder: Path,
                record: Mapping[str, Any]) -> Path:
    """Copy what the table reads from a finished run's ``folder`` into the archive.

    Arguments
    ---------
    config : mapping
        The table config (``archive_folder``, ``runs``, ``test_manifest``).
    name, seed
        The run and seed.
    folder : Path
        The run's output folder.
    record : mapping
        Its ``runs.json`` entry (``command``, ``seconds``); the date and git commit are added.

    Returns
    -------
    The run's archive folder.
    """
    root = archive_root(config)
    assert root is not None, "archive_run needs config['archive_folder']"
    spec = config["runs"][name]
    dest = root / f"seed_{seed}" / name
    files = []
    for rel in spec["rows"].values():
        files.append(Path(rel))
        if Path(rel).name.endswith("_summary.json") and items_path(folder / rel).is_file():
            files.append(items_path(Path(rel)))
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / rel, dest / rel)
    for rel in spec.get("keep") or []:
        if (folder / rel).is_dir():
            shutil.rmtree(dest / rel, ignore_errors=True)
            shutil.copytree(folder / rel, dest / rel)
        elif (folder / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / rel, dest / rel)
        else:
            raise FileNotFoundError(f"table run {name}/seed_{seed} keeps {rel}, but "
                                    f"{folder / rel} does not exist")
    manifest = run_test_manifest(config, name)
    if (folder / manifest).is_file():
        entries = json.loads((folder / manifest).read_text(encoding="utf-8"))
        gaps = {k: {"task": "ab", "gap": e["gap"]} for k, e in entries.items()
                if e.get("task") == "ab" and e.get("gap") is not None}
        write_text_atomic(dest / manifest, json.dumps(gaps, indent=0, sort_keys=True) + "\n")
    records = read_records(root)
    records[f"{name}/seed_{seed}"] = {
        **record, "command": list(record["command"])[1:],
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": git_commit()}
    write_json_atomic(root / "runs.json", records)
    return dest


def kept_in_archive(config: Mapping[str, Any], name: str, seed: Any) -> bool:
    """Whether a run declares ``keep:`` paths and all of them are in the archive."""
    root = archive_root(config)
    keep = config["runs"][name].get("keep") or []
    return root is not None and bool(keep) and all(
        (root / f"seed_{seed}" / name / rel).exists() for rel in keep)


def check_dependencies(config: Mapping[str, Any], pending: Sequence[tuple[str, Any]],
                       in_output: Mapping[tuple[str, Any], bool]) -> None:
    """Refuse a pending run whose ``after:`` run is finished only in the archive, unless that
    run's ``keep:`` paths (its model) are archived too."""
    for name, seed in pending:
        for need in config["runs"][name].get("after") or []:
            if (need, seed) not in pending and not in_output.get((need, seed), False) \
                    and not kept_in_archive(config, need, seed):
                root = archive_root(config)
                raise ValueError(
                    f"table run {name}/seed_{seed} starts from {need}/seed_{seed}'s folder, "
                    f"but that run exists only as an archived result in {root} (its model was "
                    f"not kept: list it under the run's keep:, or delete {need}/seed_{seed} "
                    f"from {root / 'runs.json'} to train it again)")


def commits_line(records: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``Runs made at commit abc1234 (4), def5678 (2).``: the code versions behind a table."""
    counts: dict[str, int] = {}
    for key in keys:
        commit = (records.get(key) or {}).get("commit")
        short = "unrecorded" if not commit else (
            commit[:7] + ("+dirty" if commit.endswith("+dirty") else ""))
        counts[short] = counts.get(short, 0) + 1
    return "Runs made at commit " + ", ".join(f"{c} ({n})" for c, n in counts.items()) + "."
