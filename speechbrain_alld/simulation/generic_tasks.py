"""Generic audio-to-text examples from a simulated corpus, for pretraining (no ratings).

Qwen2-Audio is pretrained on generic audio tasks (speech recognition, audio captioning, ...)
before anyone fine-tunes it on quality. The miniature's pretraining stage does the same with
two tasks whose targets the simulation records for every clip, and which use no rating at all:

* ``transcribe``: the spoken sentence (``sim_text``);
* ``condition``: the recorded acoustic condition (``con_description``, e.g.
  ``"pink noise 11.9 dB + level -34.7 dBov"``; ``"clean"`` for an undegraded clip).

Examples have the flat layout of :mod:`speechbrain_alld.dataset` (``task``, ``wavs``,
``instruction``, ``prompt``, ``response``, ...), so the SFT machinery trains on them unchanged.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The instruction x_a of each generic task (one ``<audio>`` placeholder).
GENERIC_INSTRUCTIONS: dict[str, str] = {
    "transcribe": "Transcribe the speech in <audio>.",
    "condition": "Describe the recording condition of <audio>.",
}

#: The corpus column each task's target is read from.
TARGET_COLUMNS: dict[str, str] = {"transcribe": "sim_text", "condition": "con_description"}

#: Fields of a row every example needs besides its targets.
_REQUIRED = ("file", "filepath_deg")


def generic_examples(
    corpus_csv: str | Path,
    tasks: Sequence[str] = ("transcribe", "condition"),
    subsets: Sequence[str] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """One example per (clip, task) of a simulated corpus; returns them and the skip counts.

    Arguments
    ---------
    corpus_csv : str or Path
        ``NISQA_corpus_file.csv`` of a simulated corpus (wav paths are relative to its folder).
    tasks : sequence of str
        Keys of :data:`GENERIC_INSTRUCTIONS`.
    subsets : sequence of str, optional
        Keep only rows whose ``db`` is one of these.

    Returns
    -------
    examples : dict
        ``"<task>:<file>"`` -> example (``response`` is the target; ``mos`` -1, no ratings).
    skipped : dict
        Per task, the rows whose target is empty (counted, never silently dropped).

    Example
    -------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "c.csv").write_text(
    ...     "db,file,filepath_deg,sim_text,con_description,sim_duration_s\\n"
    ...     "S,S_c0,S/deg/c0.wav,The cat sat.,clean,2.5\\n")
    >>> ex, skipped = generic_examples(folder / "c.csv")
    >>> sorted(ex), ex["condition:S_c0"]["response"], skipped
    (['condition:S_c0', 'transcribe:S_c0'], 'clean', {'transcribe': 0, 'condition': 0})
    """
    path = Path(corpus_csv)
    unknown = [t for t in tasks if t not in GENERIC_INSTRUCTIONS]
    if unknown or not tasks:
        raise ValueError(f"unknown generic task(s) {unknown or list(tasks)}; use some of "
                         f"{sorted(GENERIC_INSTRUCTIONS)}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        needed = [*_REQUIRED, *(TARGET_COLUMNS[t] for t in tasks)]
        missing = [c for c in needed if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing} (a simulated corpus CSV "
                             "has them; a real corpus records no condition text)")
        rows = list(reader)
    keep = set(subsets) if subsets is not None else None
    examples: dict[str, dict[str, Any]] = {}
    skipped = dict.fromkeys(tasks, 0)
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        if keep is not None and row.get("db") not in keep:
            continue
        for field in _REQUIRED:
            if not (row.get(field) or "").strip():
                raise ValueError(f"{path}, line {line}: empty field {field!r}")
        if row["file"] in seen:
            raise ValueError(f"{path}, line {line}: clip {row['file']!r} appears twice")
        seen.add(row["file"])
        wav = str(path.parent / row["filepath_deg"])
        for task in tasks:
            target = (row.get(TARGET_COLUMNS[task]) or "").strip()
            if not target:
                skipped[task] += 1
                continue
            examples[f"{task}:{row['file']}"] = {
                "task": task, "item_id": row["file"], "wavs": [wav],
                "duration": float(row.get("sim_duration_s") or 0.0),
                "instruction": GENERIC_INSTRUCTIONS[task], "prompt": "",
                "response": target, "mos": -1.0, "winner": "", "dims": {},
            }
    return examples, skipped


_FAMILIES: dict[str, re.Pattern[str]] = {
    "noise": re.compile(r"\bnoise\b"),
    "coloration": re.compile(r"\b(narrowband|bandpass|highpass|lowpass|clipping at)\b"),
    "discontinuity": re.compile(r"\b(packet loss|time clipping)\b"),
    "loudness": re.compile(r"\blevel\b"),
}
_SNR = re.compile(r"noise (-?\d+(?:\.\d+)?) dB")


def condition_families(text: str) -> frozenset[str]:
    """The degradation families a condition text names (``clean`` names none).

    Example
    -------
    >>> sorted(condition_families("pink noise 11.9 dB + lowpass 3.4 kHz"))
    ['coloration', 'noise']
    """
    return frozenset(name for name, pattern in _FAMILIES.items() if pattern.search(text))


def condition_scores(predictions: Mapping[str, str], targets: Mapping[str, str]
                     ) -> dict[str, float | int | None]:
    """How well generated condition texts match the recorded ones.

    Arguments
    ---------
    predictions, targets : mapping
        Item id -> generated / recorded condition text (the ids of ``targets`` are scored).

    Returns
    -------
    dict
        ``families_exact`` (share of items naming exactly the recorded families),
        ``family_accuracy`` (per family present-or-absent, averaged over the four),
        ``snr_mae`` (dB, over items whose recorded and generated texts both state an SNR;
        None if none), ``snr_n`` and ``n``.

    Example
    -------
    >>> condition_scores({"a": "white noise 10.0 dB", "b": "clean"},
    ...                  {"a": "pink noise 12.0 dB", "b": "level -40.0 dBov"})["snr_mae"]
    2.0
    """
    if not targets:
        raise ValueError("no targets to score")
    exact, per_family, errors = 0, 0, []
    for key, target in targets.items():
        pred = predictions.get(key, "")
        fp, ft = condition_families(pred), condition_families(target)
        exact += fp == ft
        per_family += sum((f in fp) == (f in ft) for f in _FAMILIES)
        mp, mt = _SNR.search(pred), _SNR.search(target)
        if mp and mt:
            errors.append(abs(float(mp.group(1)) - float(mt.group(1))))
    n = len(targets)
    return {"families_exact": exact / n, "family_accuracy": per_family / (n * len(_FAMILIES)),
            "snr_mae": sum(errors) / len(errors) if errors else None, "snr_n": len(errors),
            "n": n}
