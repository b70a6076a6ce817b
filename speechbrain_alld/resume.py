"""Resume bookkeeping for a chain of stages: one fingerprint rule, one ``done.json`` per stage.

A stage is a YAML block of the recipe's hparams (``examples:``, ``sft:``, ``sample:``, ...) plus a
function that reads it. Its fingerprint is the SHA-256 of

* the block exactly as the recipe's YAML declares it after overrides and ``!ref`` resolution
  (objects' tags and every argument written for them included: change the optimiser's
  ``weight_decay`` or the scheduler's warm-up and the fingerprint changes);
* the run options that change the stage's result, at the value the SpeechBrain ``Brain`` uses
  (command line, else the block, else SpeechBrain's default), e.g. ``precision``,
  ``grad_accumulation_factor``, and the number of processes;
* the fingerprints of the stage's inputs (earlier stages, or files).

So no hand-kept key list exists: whatever the block declares counts. Paths under the recipe's
``output_folder`` are hashed relative to it, so a finished experiment folder can be moved or
copied and resumed. A finished stage
(``<folder>/done.json``) with the same fingerprint is skipped; with another one it is refused
with :class:`StageMismatchError`, and since fingerprints chain, so is every stage after it.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ruamel.yaml
import torch
from hyperpyyaml import resolve_references
from speechbrain.utils.distributed import ddp_barrier, if_main_process, run_on_main
from speechbrain.utils.logger import get_logger
from speechbrain.utils.run_opts import RunOptions

from speechbrain_alld.durable import fingerprint, write_json_atomic

logger = get_logger(__name__)

DONE = "done.json"

TRAINING_RUN_OPTIONS = ("precision", "eval_precision", "grad_accumulation_factor",
                        "max_grad_norm", "world_size", "optimizer_step_limit")
"""Run options that change what a training stage computes."""


class StageMismatchError(RuntimeError):
    """A finished stage's output was made with other settings than the ones asked for now."""


def _plain(node: Any) -> Any:
    """A ruamel node as plain data; a tagged node becomes ``{tag: value}``."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, dict):
        value: Any = {str(k): _plain(v) for k, v in node.items()}
    elif isinstance(node, list):
        value = [_plain(v) for v in node]
    elif isinstance(node, ruamel.yaml.comments.TaggedScalar):
        value = node.value
    else:
        value = node
    return {tag: value} if tag and tag.startswith("!") else value


def yaml_blocks(hparams_file: str | Path, overrides: str | Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """Every top-level entry of a HyperPyYAML file as plain data, after overrides and refs.

    Arguments
    ---------
    hparams_file : str or Path
        The recipe's hparams file.
    overrides : str or mapping, optional
        The overrides given to ``load_hyperpyyaml`` (e.g. from ``sb.parse_arguments``).

    Returns
    -------
    ``{key: value}`` where an object declared with ``!new:``/``!name:``/``!apply:`` is
    ``{"!new:module.Class": {its arguments}}``: what a stage's fingerprint hashes.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "h.yaml"
    >>> _ = path.write_text("lr: 0.1\\nsft:\\n  opt_class: !name:torch.optim.AdamW\\n"
    ...                     "    lr: !ref <lr>\\n")
    >>> yaml_blocks(path, "lr: 0.5")["sft"]
    {'opt_class': {'!name:torch.optim.AdamW': {'lr': 0.5}}}
    """
    with open(hparams_file, encoding="utf-8") as fin:
        resolved = resolve_references(fin, overrides or None, overrides_must_match=True)
    tree = ruamel.yaml.YAML().load(resolved)
    return {str(k): _plain(v) for k, v in (tree or {}).items()}


def rank_world() -> tuple[int, int]:
    """(rank, number of processes); (0, 1) without ``torch.distributed``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def world_size() -> int:
    """Processes in the job (1 without ``torch.distributed``)."""
    return rank_world()[1]


def effective_run_option(name: str, block: Mapping[str, Any], run_opts: Any) -> Any:
    """The value a SpeechBrain ``Brain`` given ``hparams=block`` uses for run option ``name``.

    Command line (``run_opts.overridden_args``) first, then the block, then SpeechBrain's
    default; ``world_size`` is the number of processes.

    Example
    -------
    >>> effective_run_option("precision", {"precision": "bf16"}, {})
    'bf16'
    >>> effective_run_option("precision", {"precision": "bf16"}, {"precision": "fp16"})
    'fp16'
    >>> effective_run_option("grad_accumulation_factor", {}, {})
    1
    """
    if name == "world_size":
        return world_size()
    if isinstance(run_opts, dict):
        run_opts = RunOptions.from_dictionary(run_opts)
    if run_opts is not None and name in run_opts.overridden_args:
        return run_opts[name]
    if name in block:
        return block[name]
    return getattr(RunOptions(), name)


def relocated(data: Any, root: str | Path | None) -> Any:
    """``data`` with every string path under ``root`` written relative to it (``<root>/...``).

    Example
    -------
    >>> relocated({"a": ["out/x/save", "other"], "b": "out/x"}, "out/x")
    {'a': ['<root>/save', 'other'], 'b': '<root>'}
    """
    if root is None:
        return data
    root = str(root).rstrip("/")
    if isinstance(data, dict):
        return {k: relocated(v, root) for k, v in data.items()}
    if isinstance(data, list):
        return [relocated(v, root) for v in data]
    if isinstance(data, str) and (data == root or data.startswith(root + "/")):
        return "<root>" + data[len(root):]
    return data


def source_fingerprint(source: str | Path) -> str:
    """A model folder's identity (its files' names, sizes and modification times, not where it
    lies), or the hub id itself."""
    folder = Path(str(source))
    if not folder.is_dir():
        return str(source)
    parts = []
    for f in sorted(folder.iterdir()):
        if f.is_file():
            stat = f.stat()
            parts.append(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return fingerprint({"files": parts})


@dataclass
class StageResult:
    """A finished stage: its name, folder, fingerprint and what its ``done.json`` records."""

    name: str
    folder: Path
    fingerprint: str
    info: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.info[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.info.get(key, default)


class StageRunner:
    """Decides, per stage, whether to run it, and records it when it finishes.

    Arguments
    ---------
    blocks : mapping
        The recipe's YAML as plain data (:func:`yaml_blocks`): each stage's block is hashed,
        with paths under its ``output_folder`` made relative to it (:func:`relocated`).
    run_opts : mapping or RunOptions
        SpeechBrain run options (from ``sb.parse_arguments``).
    """

    def __init__(self, blocks: Mapping[str, Any], run_opts: Any) -> None:
        self.blocks = relocated(dict(blocks), blocks.get("output_folder"))
        self.run_opts = run_opts if run_opts is not None else {}
        self.progress = not self.option("noprogressbar", False)
        self.debug = bool(self.option("debug", False))

    def option(self, name: str, default: Any = None) -> Any:
        """A run option as given (``run_opts`` may be a dict or SpeechBrain's RunOptions)."""
        try:
            value = self.run_opts[name]
        except (KeyError, TypeError, AttributeError):
            return default
        return default if value is None else value

    def fingerprint(self, name: str, block: Mapping[str, Any], *,
                    inputs: Sequence[StageResult | str] = (),
                    run_options: Sequence[str] = ()) -> str:
        """The fingerprint of stage ``name`` (see the module docstring)."""
        if name not in self.blocks:
            raise KeyError(f"no YAML block {name!r} in the recipe's hparams (have: "
                           f"{', '.join(sorted(self.blocks))})")
        options = {o: effective_run_option(o, block, self.run_opts) for o in run_options}
        return fingerprint({
            "block": self.blocks[name],
            # An unset option (None) is left out: adding one to TRAINING_RUN_OPTIONS keeps the
            # stages made before it valid.
            "run_options": {o: v for o, v in options.items() if v is not None},
            "inputs": [i.fingerprint if isinstance(i, StageResult) else str(i)
                       for i in inputs],
        })

    def lookup(self, name: str, block: Mapping[str, Any], folder: str | Path, *,
               inputs: Sequence[StageResult | str] = (), run_options: Sequence[str] = (),
               label: str | None = None) -> tuple[str, StageResult | None]:
        """:meth:`fingerprint` and :meth:`finished` in one: the stage's fingerprint, and its
        record when it already finished with it (``label`` names it in messages; default
        ``name``)."""
        fp = self.fingerprint(name, block, inputs=inputs, run_options=run_options)
        return fp, self.finished(label or name, folder, fp)

    def finished(self, name: str, folder: str | Path, fp: str) -> StageResult | None:
        """The stage's record when it finished with fingerprint ``fp``; ``None`` when it has
        not finished; :class:`StageMismatchError` when it finished with other settings."""
        folder = Path(folder)
        path = folder / DONE
        if not path.is_file():
            return None
        info = json.loads(path.read_text(encoding="utf-8"))
        if info.get("fingerprint") != fp:
            raise StageMismatchError(
                f"stage {name!r} in {folder} was made with other settings or inputs than this "
                "run's. Reusing it would mix experiments: use another output_folder, or delete "
                "that folder to redo the stage (and the stages after it).")
        logger.info("Stage %r already finished in %s: skipped.", name, folder)
        return StageResult(name, folder, fp, info)

    def finish(self, name: str, folder: str | Path, fp: str, info: Mapping[str, Any]
               ) -> StageResult:
        """Record a finished stage (main process) and return its result."""
        folder = Path(folder)
        record = {"fingerprint": fp, **dict(info)}
        if if_main_process():
            write_json_atomic(folder / DONE, record)
        return StageResult(name, folder, fp, record)

    def claim(self, path: str | Path, fp: str) -> None:
        """Tie a resumable store (e.g. a JSON-lines file) to the settings that fill it: a store
        begun with another fingerprint is refused rather than silently extended."""
        meta = Path(f"{path}.meta.json")
        if meta.is_file():
            if json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") != fp:
                raise StageMismatchError(
                    f"{path} was started with other settings; use another output_folder or "
                    "delete it to start again")
        elif if_main_process():
            write_json_atomic(meta, {"fingerprint": fp})
        ddp_barrier()


def debug_overrides(overrides: str, run_opts: Any, key: str = "output_folder") -> str:
    """With ``--debug`` (and not ``--debug_persistently``), send ``key`` to a fresh temporary
    folder, as SpeechBrain's own debug mode keeps nothing: the overrides to load the YAML with.

    Example
    -------
    >>> debug_overrides("seed: 1", {"debug": False})
    'seed: 1'
    >>> debug_overrides("seed: 1", {"debug": True}).splitlines()[1].startswith("output_folder: ")
    True
    >>> debug_overrides("output_folder: x", {"debug": True}).count("output_folder")
    1
    """
    if not run_opts.get("debug", False) or run_opts.get("debug_persistently", False):
        return overrides
    folder = run_on_main(tempfile.mkdtemp, kwargs={"prefix": "alld-debug-"})
    logger.info("Debug mode: %s is the temporary folder %s", key, folder)
    yaml = ruamel.yaml.YAML()
    merged = dict(yaml.load(overrides) or {}) if overrides else {}
    merged[key] = folder
    stream = io.StringIO()
    yaml.dump(merged, stream)
    return stream.getvalue()
