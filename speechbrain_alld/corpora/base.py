"""Corpus records, the reader registry and audio checks shared by every corpus reader.

A *reader* turns a corpus folder into :class:`ClipRecord` objects. Every reader has the signature
of :class:`CorpusReader`::

    reader(root, subsets=None, *, strict=True, tolerance=0.0, check_audio=True) -> CorpusReadResult

and is registered under a name with :func:`register_reader`, so that callers (the prepare step,
recipes) select it by name from YAML and new corpora (BVCC, SOMOS, ...) plug in without touching
them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import soundfile as sf

from speechbrain_alld.ratings import RatingRecord, ReadReport


class CorpusError(ValueError):
    """A corpus folder or file that cannot be read as the reader expects."""


class MissingAudioError(CorpusError):
    """Audio files that are missing or unreadable; lists every one of them."""

    def __init__(self, problems: Sequence[tuple[str, str]], max_items: int = 20) -> None:
        self.problems = list(problems)
        lines = [f"  {path}: {why}" for path, why in self.problems[:max_items]]
        more = len(self.problems) - max_items
        if more > 0:
            lines.append(f"  ... and {more} more")
        super().__init__(
            f"{len(self.problems)} audio file(s) missing or unreadable:\n" + "\n".join(lines)
        )


@dataclass
class ClipRecord:
    """One rated clip of a corpus."""

    clip_id: str
    subset: str
    wav: Path
    ratings: RatingRecord
    condition: str | None = None
    con_description: str | None = None
    ref_wav: Path | None = None
    lang: str | None = None
    origin: str = ""  # "file:line" the record was read from
    duration: float | None = None
    sample_rate: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_manifest_entry(self) -> dict[str, Any]:
        """A flat SpeechBrain manifest entry (JSON-serialisable)."""
        entry: dict[str, Any] = {
            "wav": str(self.wav),
            "duration": self.duration,
            "sample_rate": self.sample_rate,
            "subset": self.subset,
            "condition": self.condition,
            "con_description": self.con_description,
            "lang": self.lang,
        }
        if self.ref_wav is not None:
            entry["ref_wav"] = str(self.ref_wav)
        entry.update(self.ratings.to_dict())
        return entry


@dataclass
class CorpusReadResult:
    """Records a reader kept, plus its report of everything read and skipped."""

    records: list[ClipRecord]
    report: ReadReport


class CorpusReader(Protocol):
    def __call__(
        self,
        root: str | Path,
        subsets: Sequence[str] | None = None,
        *,
        strict: bool = True,
        tolerance: float = 0.0,
        check_audio: bool = True,
    ) -> CorpusReadResult: ...


_READERS: dict[str, CorpusReader] = {}


def register_reader(name: str) -> Callable[[CorpusReader], CorpusReader]:
    """Decorator registering a corpus reader under ``name``."""

    def decorator(fn: CorpusReader) -> CorpusReader:
        if name in _READERS and _READERS[name] is not fn:
            raise ValueError(f"a corpus reader named '{name}' is already registered")
        _READERS[name] = fn
        return fn

    return decorator


def get_reader(name: str) -> CorpusReader:
    """The reader registered as ``name``; a clear error lists the known ones."""
    try:
        return _READERS[name]
    except KeyError:
        known = ", ".join(sorted(_READERS)) or "none"
        raise KeyError(f"unknown corpus reader '{name}' (registered: {known})") from None


def available_readers() -> list[str]:
    return sorted(_READERS)


def probe_audio(path: Path) -> tuple[float, int] | str:
    """``(duration_s, sample_rate)`` of a readable, non-empty audio file, else the reason."""
    if not path.is_file():
        return "missing"
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises several types for corrupt files
        return f"unreadable ({type(err).__name__}: {str(err).strip()[:120]})"
    if info.frames <= 0:
        return "empty (0 samples)"
    return info.frames / info.samplerate, int(info.samplerate)


def check_audio_files(
    records: Iterable[ClipRecord], report: ReadReport, *, strict: bool
) -> list[ClipRecord]:
    """Fill duration/sample rate of every record; all failures are reported at once.

    In strict mode a :class:`MissingAudioError` lists every missing/unreadable file; otherwise
    the records are dropped and each is counted in ``report``.
    """
    kept: list[ClipRecord] = []
    problems: list[tuple[str, str]] = []
    bad: list[tuple[ClipRecord, str, str]] = []
    for rec in records:
        probed = probe_audio(rec.wav)
        rec_problems = [("filepath_deg", rec.wav, probed)] if isinstance(probed, str) else []
        if rec.ref_wav is not None:
            ref_probe = probe_audio(rec.ref_wav)
            if isinstance(ref_probe, str):
                rec_problems.append(("filepath_ref", rec.ref_wav, ref_probe))
        if rec_problems:
            problems.extend((str(path), why) for _, path, why in rec_problems)
            fields = "+".join(fld for fld, _, _ in rec_problems)
            reason = "; ".join(f"audio {why}: {path}" for _, path, why in rec_problems)
            bad.append((rec, fields, reason))
            continue
        rec.duration, rec.sample_rate = probed
        kept.append(rec)
    if problems and strict:
        raise MissingAudioError(problems)
    for rec, fld, reason in bad:
        source, _, line = rec.origin.rpartition(":")
        report.skip(source or rec.origin, int(line) if line.isdigit() else None, fld, reason)
    return kept
