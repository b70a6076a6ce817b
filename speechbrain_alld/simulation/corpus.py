"""Generate a simulated, rated speech-quality corpus in the NISQA layout.

THIS IS A SIMULATED CORPUS: clean speech is synthesised with espeak-ng (or taken from a user
folder, :mod:`.source`), degraded with recorded parameters (:mod:`.plan`, :mod:`.degradations`)
and "rated" by the hand-written rules of :mod:`.rating_model` plus simulated listener noise
(:mod:`.render`). It lets the ALLD pipeline run end to end without the real NISQA corpus; it is
not a substitute for human ratings. This module is the driver: workers, resuming, the CSVs.

Layout written under ``out_dir`` (read unchanged by the project's NISQA reader)::

    NISQA_corpus_file.csv                      all rows, column ``db`` = subset
    <SUBSET>/<SUBSET>_file.csv                 rows of one subset
    <SUBSET>/deg/c00012_c03.wav                degraded clip (mono PCM_16)
    <SUBSET>/ref/c00012_ref.wav                its clean reference at the nominal level
    simulation_state.json                      config, seed, sizes and their fingerprint
    simulation_progress.jsonl                  one finished clip per line (for resuming)

The CSVs carry :data:`~speechbrain_alld.corpora.columns.NISQA_COLUMNS` in order, then
:data:`~.config.SIM_COLUMNS` (``sim_*``: exact degradation parameters, noise-free ratings,
speech source).

Clip duration: the natural duration of the utterance (synthesised speech plus a short random
silence before and after), cut to at most ``max_duration`` seconds with a 10 ms fade-out; clips are
not padded unless ``pad_to_max_duration``. Time clipping shortens a degraded clip further.

Determinism: every clip draws from its own generators (:func:`~.plan.clip_rng`), so a clip's audio
and ratings do not depend on the order or the number of workers.

Resuming: each finished clip is appended to ``simulation_progress.jsonl``
(a :class:`~speechbrain_alld.jsonl_store.JsonlStore`) after its wav files are in place; an
interrupted run picks up the missing clips only (a logged clip whose files are gone is made
again), and the CSVs are written at the end. A run is identified by a fingerprint of (generator
version, config, seed, sizes, clean files). Rerunning a finished run with the same fingerprint
does nothing. A different fingerprint in the same folder raises :class:`SimulationMismatchError`
(nothing is deleted) unless ``overwrite=True``, which deletes the previous run's files and starts
again.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from speechbrain_alld.corpora.columns import CORPUS_FILE, subset_csv_name
from speechbrain_alld.durable import atomic_output, fingerprint, write_json_atomic
from speechbrain_alld.jsonl_store import JsonlStore
from speechbrain_alld.simulation import speech as sp
from speechbrain_alld.simulation.config import (
    CSV_COLUMNS,
    DEFAULT_SIZES,
    GENERATOR_VERSION,
    PROGRESS_FILE,
    STATE_FILE,
    SimulationConfig,
    SimulationConfigError,
    SimulationError,
    SimulationMismatchError,
)
from speechbrain_alld.simulation.render import render_clip
from speechbrain_alld.simulation.source import CleanSource

logger = logging.getLogger(__name__)


@dataclass
class SimulationSummary:
    """What :func:`simulate_corpus` did."""

    root: Path
    corpus_csv: Path
    subset_csvs: dict[str, Path]
    sizes: dict[str, int]
    n_clips: int
    n_generated: int
    n_resumed: int
    seconds: float
    clips_per_min: float | None = None
    fingerprint: str = ""


# ------------------------------------------------------------------------------ workers
_WORKER: dict = {}


def _init_worker(config: SimulationConfig, seed: int, root: Path, clean_dir: Path | None,
                 pool_files: dict[str, list[Path]] | None) -> None:
    _WORKER.update(config=config, seed=seed, root=root,
                   source=CleanSource(config, seed, clean_dir, pool_files))


def _work(task: tuple[str, int]) -> tuple[str, int, dict[str, str]]:
    subset, index = task
    row = render_clip(_WORKER["config"], _WORKER["source"], _WORKER["seed"], _WORKER["root"],
                      subset, index)
    return subset, index, row


def _run_tasks(tasks: list[tuple[str, int]], num_workers: int, init_args: tuple
               ) -> Iterator[tuple[str, int, dict[str, str]]]:
    if num_workers <= 1 or len(tasks) <= 1:
        _init_worker(*init_args)
        for task in tasks:
            yield _work(task)
        return
    # forkserver (or spawn): forking a parent that runs threads (torch, tqdm) can deadlock
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
    else:
        ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(num_workers, initializer=_init_worker, initargs=init_args) as pool:
        yield from pool.imap_unordered(_work, tasks, chunksize=2)


# ------------------------------------------------------------------------------ bookkeeping
def _check_sizes(sizes: Mapping[str, int]) -> dict[str, int]:
    if not sizes:
        raise SimulationConfigError("sizes is empty: give at least one subset, e.g. "
                                    "{'NISQA_TRAIN_SIM': 200}")
    out = {}
    for subset, n in sizes.items():
        if not subset or not all(ch.isalnum() or ch in "_-" for ch in subset):
            raise SimulationConfigError(f"subset name {subset!r}: use letters, digits, _ and -")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SimulationConfigError(f"size of {subset} must be an integer >= 1 (got {n!r})")
        out[str(subset)] = int(n)
    return out


def _run_fingerprint(config: SimulationConfig, seed: int, sizes: dict[str, int],
                     clean: list[dict] | None) -> str:
    return fingerprint({"version": GENERATOR_VERSION, "config": asdict(config), "seed": seed,
                        "sizes": sizes, "clean": clean})[:16]


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _clip_key(subset: str, index: int) -> str:
    return f"{subset}:{index}"


def _upgrade_legacy_progress(path: Path, run_fingerprint: str) -> None:
    """Give the lines of a progress log written before it was a :class:`JsonlStore` their key.

    Such a log always belongs to the run in its folder (a run with another fingerprint deletes
    it), so its clips are stamped with the current fingerprint.
    """
    if not path.is_file():
        return
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            if "key" in record:
                return
            entries.append({"key": _clip_key(record["subset"], int(record["index"])),
                            "fingerprint": run_fingerprint, **record})
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by an interruption
    if not entries:
        return
    with atomic_output(path) as tmp:
        tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries),
                       encoding="utf-8")


def _finished_clips(store: JsonlStore, root: Path, sizes: dict[str, int],
                    run_fingerprint: str) -> dict[tuple[str, int], dict[str, str]]:
    """Clips logged by this run (same fingerprint) whose wav files still exist."""
    done: dict[tuple[str, int], dict[str, str]] = {}
    for subset, n in sizes.items():
        for index in range(n):
            entry = store.get(_clip_key(subset, index))
            if entry is None or entry.get("fingerprint") != run_fingerprint:
                continue
            row = entry.get("row")
            if isinstance(row, dict) and all(
                isinstance(row.get(col), str) and (root / row[col]).is_file()
                for col in ("filepath_deg", "filepath_ref")
            ):
                done[(subset, index)] = row
    return done


def _prepare_folder(root: Path, run_fingerprint: str, state: dict, overwrite: bool) -> None:
    state_path = root / STATE_FILE
    if state_path.exists():
        old = json.loads(state_path.read_text(encoding="utf-8"))
        if old.get("fingerprint") == run_fingerprint:
            return
        if not overwrite:
            raise SimulationMismatchError(
                f"{root} holds a simulated corpus made with another config, seed, sizes or clean "
                f"files (fingerprint {old.get('fingerprint')} != {run_fingerprint}). Use another "
                "out_dir, or overwrite=True to delete that run and start again."
            )
        for subset in old.get("sizes", {}):
            shutil.rmtree(root / subset, ignore_errors=True)
        for name in (CORPUS_FILE, PROGRESS_FILE, STATE_FILE):
            (root / name).unlink(missing_ok=True)
    else:
        clashes = [p.name for p in [root / CORPUS_FILE] + [root / s for s in state["sizes"]]
                   if p.exists()]
        if clashes:
            raise SimulationError(
                f"{root} already holds {clashes} but no {STATE_FILE}: it is not a simulation "
                "output folder (a real NISQA copy?). Choose an empty out_dir."
            )
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(state_path, state)


def _clean_files(clean_path: Path, pools: tuple[str, ...]
                 ) -> tuple[dict[str, list[Path]], list[dict]]:
    """The user files of each pool, and the list of all files that enters the fingerprint."""
    try:
        files = sp.list_audio_files(clean_path)
    except sp.SpeechSourceError as err:
        raise SimulationError(str(err)) from err
    pool_files = sp.split_files(files, clean_path, pools)
    empty = [p for p in pools if not pool_files[p]]
    if empty:
        raise SimulationError(
            f"clean_dir {clean_path} has {len(files)} file(s): too few to give the "
            f"{'/'.join(empty)} pool(s) their own speech; add files or drop those subsets"
        )
    clean_info = [{"file": f.relative_to(clean_path).as_posix(), "bytes": f.stat().st_size}
                  for f in files]
    return pool_files, clean_info


def simulate_corpus(
    out_dir: str | Path,
    sizes: Mapping[str, int] | None = None,
    seed: int = 0,
    config: SimulationConfig | None = None,
    clean_dir: str | Path | None = None,
    num_workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    on_clip: Callable[[dict[str, str]], None] | None = None,
) -> SimulationSummary:
    """Generate (or finish, or leave alone) a simulated NISQA-layout corpus in ``out_dir``.

    See the module docstring for the layout and for resuming.

    Arguments
    ---------
    out_dir : str or Path
        The corpus folder (created).
    sizes : Mapping, optional
        Subset names to clip counts (default :data:`~.config.DEFAULT_SIZES`). Subsets whose name
        contains TEST / VAL (or DEV) draw speech from the test / validation sentence pool, others
        from the training pool.
    seed : int
        The run's seed (>= 0).
    config : SimulationConfig, optional
        The simulation's settings (default ``SimulationConfig()``).
    clean_dir : str or Path, optional
        A folder of clean recordings that replaces espeak-ng.
    num_workers : int
        Processes rendering clips; the output does not depend on it.
    progress : bool
        Show a progress bar and print the throughput in clips/min.
    overwrite : bool
        Delete a previous run with another fingerprint in ``out_dir`` instead of refusing it.
    on_clip : callable, optional
        Called with each finished row, after it is saved for resuming.

    Returns
    -------
    A :class:`SimulationSummary` of what was generated and what was resumed.
    """
    t0 = time.perf_counter()
    config = config or SimulationConfig()
    config.validate()
    sizes = _check_sizes(DEFAULT_SIZES if sizes is None else sizes)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SimulationConfigError(f"seed must be an integer >= 0 (got {seed!r})")
    root = Path(out_dir)
    pools = tuple(dict.fromkeys(sp.pool_for_subset(s) for s in sizes))

    pool_files: dict[str, list[Path]] | None = None
    clean_info: list[dict] | None = None
    clean_path = None
    if clean_dir is not None:
        clean_path = Path(clean_dir).resolve()
        pool_files, clean_info = _clean_files(clean_path, pools)

    run_fingerprint = _run_fingerprint(config, seed, sizes, clean_info)
    state = {"fingerprint": run_fingerprint, "generator_version": GENERATOR_VERSION,
             "seed": seed, "sizes": sizes, "clean_dir": clean_path and str(clean_path),
             "config": asdict(config), "complete": False,
             "note": "simulated corpus: ratings are not human judgements"}
    _prepare_folder(root, run_fingerprint, state, overwrite)

    _upgrade_legacy_progress(root / PROGRESS_FILE, run_fingerprint)
    store = JsonlStore(root / PROGRESS_FILE)
    done = _finished_clips(store, root, sizes, run_fingerprint)
    todo = [(s, i) for s, n in sizes.items() for i in range(n) if (s, i) not in done]
    n_resumed = len(done)
    csv_paths = {s: root / s / subset_csv_name(s) for s in sizes}
    corpus_csv = root / CORPUS_FILE
    summary = SimulationSummary(
        root=root, corpus_csv=corpus_csv, subset_csvs=csv_paths, sizes=sizes,
        n_clips=sum(sizes.values()), n_generated=0, n_resumed=n_resumed, seconds=0.0,
        fingerprint=run_fingerprint,
    )
    previous = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
    outputs = [corpus_csv, *csv_paths.values()]
    if not todo and previous.get("complete") and all(p.exists() for p in outputs):
        summary.seconds = time.perf_counter() - t0
        if progress:
            print(f"Simulated corpus already complete: {root} ({summary.n_clips} clips)")
        return summary
    if todo and clean_path is None:
        try:
            sp.check_espeak(config.espeak_binary)
        except sp.SpeechSourceError as err:
            raise SimulationError(str(err)) from err

    t_gen = time.perf_counter()
    if todo:
        bar = tqdm(total=summary.n_clips, initial=n_resumed, disable=not progress,
                   desc="simulating clips", unit="clip")
        init_args = (config, seed, root, clean_path, pool_files)
        with bar:
            for subset, index, row in _run_tasks(todo, num_workers, init_args):
                store.add([{"key": _clip_key(subset, index), "fingerprint": run_fingerprint,
                            "subset": subset, "index": index, "row": row}])
                done[(subset, index)] = row
                summary.n_generated += 1
                bar.update(1)
                if on_clip is not None:
                    on_clip(row)
    gen_seconds = time.perf_counter() - t_gen

    all_rows = []
    for subset, n in sizes.items():
        rows = [done[(subset, i)] for i in range(n)]
        _write_csv(csv_paths[subset], rows)
        all_rows.extend(rows)
    _write_csv(corpus_csv, all_rows)
    state["complete"] = True
    write_json_atomic(root / STATE_FILE, state)

    summary.seconds = time.perf_counter() - t0
    if summary.n_generated:
        summary.clips_per_min = 60.0 * summary.n_generated / max(gen_seconds, 1e-9)
    if progress:
        rate = f"{summary.clips_per_min:.0f} clips/min" if summary.clips_per_min else "no new clips"
        print(f"Simulated corpus at {root}: {summary.n_clips} clips ({summary.n_generated} new, "
              f"{n_resumed} resumed) in {summary.seconds:.1f} s; generation speed {rate} "
              f"at {config.sample_rate} Hz with {max(num_workers, 1)} worker(s)")
    logger.info("simulated corpus %s: %d clips, %s clips/min", root, summary.n_clips,
                summary.clips_per_min)
    return summary
