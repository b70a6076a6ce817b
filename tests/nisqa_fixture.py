"""Builds small NISQA-layout corpora on disk for the reader tests."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_alld.corpora.columns import CORPUS_FILE, NISQA_COLUMNS, subset_csv_name


def write_wav(path: Path, seconds: float = 0.5, sr: int = 16000, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(str(path), 0.1 * rng.standard_normal(int(seconds * sr)), sr, subtype="PCM_16")


def make_row(subset: str, i: int, *, mos_only: bool = False, with_ref: bool = True,
             **overrides) -> dict:
    name = f"c{i:05d}_clip.wav"
    row = {c: "" for c in NISQA_COLUMNS}
    row.update(
        db=subset, con=str(i % 3), file=f"c{i:05d}", con_description="noise",
        filename_deg=name, source="test", lang="en", votes="5", mos=f"{1.5 + (i % 7) * 0.5:.4f}",
        mos_std="0.8", filepath_deg=f"{subset}/deg/{name}",
    )
    if not mos_only:
        row.update(noi="3.2", col="4.1", dis="4.6", loud="3.9", noi_std="0.7", col_std="0.6",
                   dis_std="0.5", loud_std="0.9")
    if with_ref:
        row.update(filename_ref=name, filepath_ref=f"{subset}/ref/{name}")
    row.update(overrides)
    return row


def write_csv(path: Path, rows: Iterable[dict], extra_columns: tuple[str, ...] = ()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(NISQA_COLUMNS) + list(extra_columns),
                                extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def build_corpus(root: Path, subsets: dict[str, list[dict]], *, corpus_file: bool = True,
                 subset_files: bool = True, write_audio: bool = True,
                 extra_columns: tuple[str, ...] = ()) -> Path:
    """Write the CSVs (and audio for every row) of a NISQA-layout corpus under ``root``."""
    all_rows = []
    for subset, rows in subsets.items():
        if subset_files:
            write_csv(root / subset / subset_csv_name(subset), rows, extra_columns)
        all_rows.extend(rows)
        if write_audio:
            for k, row in enumerate(rows):
                write_wav(root / row["filepath_deg"], seconds=0.25 + 0.25 * (k % 3), seed=k)
                if row.get("filepath_ref"):
                    write_wav(root / row["filepath_ref"], seconds=0.5, seed=100 + k)
    if corpus_file:
        write_csv(root / CORPUS_FILE, all_rows, extra_columns)
    return root
