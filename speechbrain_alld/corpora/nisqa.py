"""Reader for the NISQA corpus layout (and the simulated corpus, which uses the same layout).

The corpus root holds ``NISQA_corpus_file.csv`` (all subsets; column ``db`` names the subset)
and/or one folder per subset with ``NISQA_<SET>/NISQA_<SET>_file.csv``. ``filepath_deg`` and
``filepath_ref`` are relative to the root. MOS-only rows (the TEST sets) are accepted, unknown
extra columns are ignored, and every audio file is checked before anything is returned.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from speechbrain_alld.corpora.base import (
    ClipRecord,
    CorpusError,
    CorpusReadResult,
    check_audio_files,
    register_reader,
)
from speechbrain_alld.corpora.columns import (
    CORPUS_FILE,
    NISQA_SIMULATION_COLUMNS,
    subset_csv_name,
)
from speechbrain_alld.ratings import RatingError, RatingRecord, ReadReport

REQUIRED_COLUMNS = ("filepath_deg", "mos")


def find_nisqa_csvs(root: Path, subsets: Sequence[str] | None = None) -> list[tuple[Path, set]]:
    """The CSV files to read and, for each, the subsets wanted from it (empty set: all rows).

    ``NISQA_corpus_file.csv`` is preferred when present; a requested subset absent from it is read
    from its own ``NISQA_<SET>/NISQA_<SET>_file.csv``.
    """
    if not root.is_dir():
        raise CorpusError(f"NISQA corpus root not found or not a folder: {root}")
    corpus_csv = root / CORPUS_FILE
    plan: list[tuple[Path, set]] = []
    if corpus_csv.is_file():
        available = _subsets_in(corpus_csv)
        if subsets is None:
            return [(corpus_csv, set())]
        in_corpus = {s for s in subsets if s in available}
        if in_corpus:
            plan.append((corpus_csv, in_corpus))
        remaining = [s for s in subsets if s not in available]
    else:
        remaining = (
            list(subsets)
            if subsets is not None
            else sorted(p.parent.name for p in root.glob("NISQA_*/NISQA_*_file.csv")
                        if p.name == subset_csv_name(p.parent.name))
        )
        if subsets is None and not remaining:
            raise CorpusError(
                f"no {CORPUS_FILE} and no NISQA_<SET>/NISQA_<SET>_file.csv under {root}"
            )
    missing = []
    for subset in remaining:
        path = root / subset / subset_csv_name(subset)
        if path.is_file():
            plan.append((path, {subset}))
        else:
            missing.append(f"{subset} (looked for {path}"
                           + (f" and in {corpus_csv})" if corpus_csv.is_file() else ")"))
    if missing:
        raise CorpusError("NISQA subset(s) not found: " + "; ".join(missing))
    return plan


def _subsets_in(csv_path: Path) -> set[str]:
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        return {row.get("db") or "" for row in csv.DictReader(f)}


def _optional(row: dict, key: str) -> str | None:
    value = (row.get(key) or "").strip()
    return value or None


@register_reader("nisqa")
def read_nisqa(
    root: str | Path,
    subsets: Sequence[str] | None = None,
    *,
    strict: bool = True,
    tolerance: float = 0.0,
    check_audio: bool = True,
) -> CorpusReadResult:
    """Read NISQA-layout CSVs under ``root`` into validated :class:`ClipRecord` objects.

    Arguments
    ---------
    root: the corpus folder (the one holding the ``NISQA_<SET>`` folders).
    subsets: subset names (``db`` values) to read; ``None`` reads all.
    strict: raise on the first bad row (:class:`RatingError` naming file, line and field) and on
        missing/unreadable audio (:class:`MissingAudioError` listing every file); when ``False``
        such rows are skipped and counted in the returned report.
    tolerance: how far outside 1..5 a rating may be before it is an error (then clipped).
    check_audio: probe every file for existence, readability, duration and sample rate.
    """
    root = Path(root).expanduser().resolve()
    report = ReadReport()
    records: list[ClipRecord] = []
    seen_ids: dict[str, str] = {}
    for csv_path, wanted in find_nisqa_csvs(root, subsets):
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            absent = [c for c in REQUIRED_COLUMNS if c not in header]
            if absent:
                raise CorpusError(f"{csv_path}: missing required column(s) {absent}")
            for row in reader:
                line = reader.line_num
                subset = (row.get("db") or "").strip() or csv_path.parent.name
                if wanted and subset not in wanted:
                    continue
                report.n_read += 1
                try:
                    rec = _row_to_record(row, subset, root, csv_path, line, tolerance)
                    if rec.clip_id in seen_ids:
                        raise RatingError(
                            f"duplicate clip (first seen at {seen_ids[rec.clip_id]})",
                            field="filepath_deg", value=row.get("filepath_deg"),
                            source=str(csv_path), line=line,
                        )
                except RatingError as err:
                    if strict:
                        raise
                    report.skip(str(csv_path), line, err.field, f"{err.reason} "
                                f"(got {err.value!r})")
                    continue
                seen_ids[rec.clip_id] = rec.origin
                records.append(rec)
    if check_audio:
        records = check_audio_files(records, report, strict=strict)
    report.n_kept = len(records)
    return CorpusReadResult(records, report)


def _row_to_record(
    row: dict, subset: str, root: Path, csv_path: Path, line: int, tolerance: float
) -> ClipRecord:
    rel_deg = _optional(row, "filepath_deg")
    if rel_deg is None:
        raise RatingError("missing audio path", field="filepath_deg", value=row.get(
            "filepath_deg"), source=str(csv_path), line=line)
    ratings = RatingRecord.from_mapping(row, tolerance=tolerance, source=str(csv_path), line=line)
    rel_ref = _optional(row, "filepath_ref")
    stem = Path(rel_deg).stem
    extra = {k: row[k] for k in NISQA_SIMULATION_COLUMNS if row.get(k) not in (None, "")}
    extra.update({k: row[k] for k in row if k and k.startswith("sim_") and row[k] != ""})
    for key in ("source", "file", "filename_ref"):
        if _optional(row, key) is not None:
            extra[key] = row[key].strip()
    return ClipRecord(
        clip_id=f"{subset}/{stem}",
        subset=subset,
        wav=root / rel_deg,
        ratings=ratings,
        condition=_optional(row, "con"),
        con_description=_optional(row, "con_description"),
        ref_wav=root / rel_ref if rel_ref else None,
        lang=_optional(row, "lang"),
        origin=f"{csv_path}:{line}",
        extra=extra,
    )
