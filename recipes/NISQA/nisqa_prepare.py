"""Prepare SpeechBrain manifests for the NISQA corpus.

Download NISQA (https://github.com/gabrielmittag/NISQA/wiki/NISQA-Corpus) and point
``data_folder`` at the folder that holds ``NISQA_corpus_file.csv`` and the ``NISQA_<SET>``
folders. One JSON manifest per subset is written to ``save_folder``::

    python nisqa_prepare.py /path/to/NISQA_Corpus results/manifests NISQA_TRAIN_SIM NISQA_VAL_SIM
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from speechbrain_alld.corpora import prepare_corpus

DEFAULT_SPLITS = ("NISQA_TRAIN_SIM", "NISQA_VAL_SIM", "NISQA_VAL_LIVE", "NISQA_TEST_FOR",
                  "NISQA_TEST_P501", "NISQA_TEST_LIVETALK")


def prepare_nisqa(
    data_folder: str | Path,
    save_folder: str | Path,
    splits: Sequence[str] = DEFAULT_SPLITS,
    skip_prep: bool = False,
    strict: bool = True,
    tolerance: float = 0.0,
) -> dict[str, Path]:
    """Write ``<save_folder>/<subset>.json`` for each NISQA subset in ``splits``.

    Idempotent: reruns with the same options and unchanged CSVs do nothing. ``strict=False``
    skips bad rows and missing audio, listing them in ``prepare_report.json``.
    """
    return prepare_corpus(
        "nisqa",
        data_folder,
        save_folder,
        splits=list(splits),
        skip_prep=skip_prep,
        strict=strict,
        tolerance=tolerance,
    )


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(f"usage: {sys.argv[0]} DATA_FOLDER SAVE_FOLDER [SUBSET ...]")
    outputs = prepare_nisqa(sys.argv[1], sys.argv[2], sys.argv[3:] or DEFAULT_SPLITS)
    for subset, path in outputs.items():
        print(f"{subset}: {path}")
