"""Write SpeechBrain JSON manifests, one per subset, from any registered corpus reader.

Each manifest maps a stable utterance id (``<subset>/<file stem>``) to the absolute wav path,
duration, sample rate, subset, condition and the ratings. The step is idempotent: a
``prepare_opts.json`` next to the manifests records the options and a fingerprint of the corpus
CSVs; a rerun with the same options and unchanged CSVs does nothing, anything else redoes it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechbrain.utils.logger import get_logger

from speechbrain_alld.corpora.base import get_reader
from speechbrain_alld.durable import file_fingerprint, write_json_atomic

logger = get_logger(__name__)

OPTS_FILE = "prepare_opts.json"
REPORT_FILE = "prepare_report.json"


def read_json(path: str | Path, what: str = "manifest") -> Any:
    """A JSON file's content; a clear ValueError naming ``what`` and the path otherwise."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {what} {path}: {err}") from None


def manifest_path(save_folder: str | Path, subset: str) -> Path:
    """Where the manifest of ``subset`` is written."""
    return Path(save_folder) / f"{subset}.json"


def _fingerprint(root: Path) -> str:
    """Hash of every CSV under the corpus root (names, sizes, contents)."""
    return file_fingerprint(*sorted(root.glob("*.csv")), *sorted(root.glob("*/*.csv")),
                            root=root)


def prepare_corpus(
    reader: str,
    data_folder: str | Path,
    save_folder: str | Path,
    splits: Sequence[str] | None = None,
    *,
    skip_prep: bool = False,
    strict: bool = True,
    tolerance: float = 0.0,
) -> dict[str, Path]:
    """Read a corpus with the registered ``reader`` and write one manifest per subset.

    Returns ``{subset: manifest path}``. With ``strict=False`` bad rows and missing audio are
    skipped, counted and listed in ``prepare_report.json`` (and logged) instead of raising.
    """
    save_folder = Path(save_folder)
    if skip_prep:
        logger.info("Skipping corpus preparation (skip_prep=True).")
        return {s: manifest_path(save_folder, s) for s in (splits or [])}
    root = Path(data_folder).expanduser().resolve()
    opts = {
        "reader": reader,
        "data_folder": str(root),
        "splits": list(splits) if splits is not None else None,
        "strict": strict,
        "tolerance": tolerance,
        "csv_fingerprint": _fingerprint(root) if root.is_dir() else None,
    }
    opts_path = save_folder / OPTS_FILE
    if opts_path.is_file():
        previous = json.loads(opts_path.read_text(encoding="utf-8"))
        outputs = {s: manifest_path(save_folder, s) for s in previous.get("subsets", [])}
        if (
            previous.get("options") == opts
            and outputs
            and all(p.is_file() for p in outputs.values())
        ):
            logger.info("Manifests in %s are up to date; skipping preparation.", save_folder)
            return outputs

    opts_path.unlink(missing_ok=True)
    result = get_reader(reader)(root, splits, strict=strict, tolerance=tolerance)
    by_subset: dict[str, dict[str, Any]] = defaultdict(dict)
    for rec in result.records:
        by_subset[rec.subset][rec.clip_id] = rec.to_manifest_entry()
    wanted = list(splits) if splits is not None else sorted(by_subset)
    outputs = {}
    for subset in wanted:
        path = manifest_path(save_folder, subset)
        write_json_atomic(path, by_subset.get(subset, {}))
        outputs[subset] = path
        logger.info("Wrote %d clips of %s to %s", len(by_subset.get(subset, {})), subset, path)
    report = result.report
    if report.n_skipped:
        logger.warning("Corpus preparation skipped rows: %s", report.summary())
    write_json_atomic(
        save_folder / REPORT_FILE,
        {
            "n_read": report.n_read,
            "n_kept": report.n_kept,
            "n_skipped": report.n_skipped,
            "skipped": [vars(s) for s in report.skipped],
        },
    )
    # Written last: its presence means every manifest above is complete.
    write_json_atomic(opts_path, {"options": opts, "subsets": wanted})
    return outputs
