"""Import (and export) the paper's released descriptive corpus (JSON lines, ms-swift layout).

Two record kinds, one JSON object per line (ALLD-SPEC §3):

* MOS task: ``{"audios": [path], "query": "...<audio>...", "response": text, "mos": 1.8,
  "noi": 3.2, "col": 1.9, "dis": 4.0, "loud": 3.3}`` (``dis`` may be missing);
* A/B task: ``{"audios": [path_a, path_b], "query": "...<audio>...<audio>...", "response": text,
  "A_mos": .., "A_noi": .., ..., "B_mos": .., ..., "winner": "A" | "B"}``.

The authors' paths point to their machines. :func:`import_released_corpus` re-roots each onto the
user's NISQA copy by subset folder and file name (``.../NISQA_TRAIN_SIM/deg/x.wav`` ->
``<nisqa_root>/NISQA_TRAIN_SIM/deg/x.wav``, wherever ``x.wav`` lies inside that subset), and
reports every record whose audio cannot be found.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from speechbrain_alld.corpora.base import CorpusError
from speechbrain_alld.durable import atomic_output
from speechbrain_alld.ratings import RatingError, RatingRecord, ReadReport

AUDIO_PLACEHOLDER = "<audio>"
TASKS = ("mos", "ab")


@dataclass
class DescriptiveRecord:
    """One expert description: a MOS-task text for one clip or an A/B-task text for a pair."""

    record_id: str
    task: str  # "mos" or "ab"
    audios: list[Path]
    query: str
    response: str
    ratings: list[RatingRecord]  # one per audio, in order
    winner: str | None = None  # "A" or "B" for the A/B task ("tie" only in corpora made here)
    origin: str = ""
    original_audios: list[str] = field(default_factory=list)

    def to_manifest_entry(self) -> dict[str, Any]:
        """A SpeechBrain manifest entry for this record."""
        entry: dict[str, Any] = {"task": self.task, "query": self.query,
                                 "response": self.response, "origin": self.origin}
        if self.task == "mos":
            entry["wav"] = str(self.audios[0])
            entry.update(self.ratings[0].to_dict())
        else:
            entry["wav_a"], entry["wav_b"] = str(self.audios[0]), str(self.audios[1])
            entry["winner"] = self.winner
            entry.update(self.ratings[0].to_dict(prefix="A_"))
            entry.update(self.ratings[1].to_dict(prefix="B_"))
        return entry

    def to_released(self, path_map: Any = str) -> dict[str, Any]:
        """This record in the released JSON-lines layout (ratings rounded to one decimal)."""
        obj: dict[str, Any] = {
            "audios": [path_map(p) for p in self.audios],
            "query": self.query,
            "response": self.response,
        }
        prefixes = [""] if self.task == "mos" else ["A_", "B_"]
        for prefix, rating in zip(prefixes, self.ratings):
            for key, value in rating.to_dict(include_missing=False).items():
                if key.endswith("_std") or key == "votes":
                    continue
                obj[prefix + key] = round(value, 1)
        if self.task == "ab":
            obj["winner"] = self.winner
        return obj


@dataclass
class ImportResult:
    """Records imported, the read report, and records whose winner contradicts their MOS."""

    records: list[DescriptiveRecord]
    report: ReadReport
    winner_mismatch: list[str] = field(default_factory=list)

    def by_task(self, task: str) -> list[DescriptiveRecord]:
        return [r for r in self.records if r.task == task]


class AudioIndex:
    """Audio files under a NISQA root, findable from a foreign path by subset folder and name."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise CorpusError(f"NISQA folder not found: {self.root}")
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        for path in sorted(self.root.rglob("*")):
            if path.suffix.lower() in (".wav", ".flac") and path.is_file():
                self.by_name[path.name].append(path)
        self.subsets = {p.relative_to(self.root).parts[0] for ps in self.by_name.values()
                        for p in ps}

    def reroot(self, original: str) -> Path | str:
        """The local path for an author path, or the reason it cannot be found.

        Candidates share the file name; a subset folder named in the path restricts them to
        that subset; ties are broken by the longest run of equal trailing folders (``deg``).
        """
        parts = PurePosixPath(original.replace("\\", "/")).parts
        if not parts:
            return "empty audio path"
        name = parts[-1]
        candidates = self.by_name.get(name, [])
        subset = next((p for p in reversed(parts[:-1]) if p in self.subsets), None)
        if subset is not None:
            candidates = [c for c in candidates if c.relative_to(self.root).parts[0] == subset]
        if not candidates:
            where = self.root / subset if subset is not None else self.root
            return f"{name} not found in {where}"

        def shared_tail(path: Path) -> int:
            local = path.relative_to(self.root).parts
            n = 0
            while n < min(len(local), len(parts)) and local[-1 - n] == parts[-1 - n]:
                n += 1
            return n

        scores = [shared_tail(c) for c in candidates]
        best = max(scores)
        winners = [c for c, s in zip(candidates, scores) if s == best]
        if len(winners) == 1:
            return winners[0]
        return f"{name} is ambiguous under {self.root} ({len(winners)} files match its path)"


def _bad(reason: str, fld: str, value: Any, source: str, line: int) -> RatingError:
    return RatingError(reason, field=fld, value=value, source=source, line=line)


def parse_released_record(
    obj: Any, source: str, line: int, index: AudioIndex | None, tolerance: float = 0.0
) -> tuple[DescriptiveRecord, list[str]]:
    """Validate one JSON object; returns the record and the audio problems (may be empty).

    Raises :class:`RatingError` (naming file, line and field) for a malformed record.
    """
    if not isinstance(obj, dict):
        raise _bad("record is not a JSON object", "<record>", type(obj).__name__, source, line)
    audios = obj.get("audios")
    if not isinstance(audios, list) or not audios or not all(isinstance(a, str) for a in audios):
        raise _bad("must be a non-empty list of paths", "audios", audios, source, line)
    for key in ("query", "response"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise _bad("must be a non-empty string", key, obj.get(key), source, line)
    n_placeholders = obj["query"].count(AUDIO_PLACEHOLDER)
    if n_placeholders != len(audios):
        raise _bad(f"has {n_placeholders} {AUDIO_PLACEHOLDER} placeholder(s) for "
                   f"{len(audios)} audio(s)", "query", obj["query"][:80], source, line)
    if len(audios) == 1:
        task, winner = "mos", None
        ratings = [RatingRecord.from_mapping(obj, tolerance=tolerance, source=source, line=line)]
    elif len(audios) == 2:
        task = "ab"
        winner = obj.get("winner")
        if winner not in ("A", "B", "tie"):
            raise _bad("must be 'A', 'B' (or 'tie' in corpora made here)", "winner", winner,
                       source, line)
        ratings = [
            RatingRecord.from_mapping(obj, prefix=p, tolerance=tolerance, source=source,
                                      line=line)
            for p in ("A_", "B_")
        ]
    else:
        raise _bad("must hold 1 (MOS task) or 2 (A/B task) paths", "audios", audios, source,
                   line)
    problems: list[str] = []
    local: list[Path] = []
    for original in audios:
        found = index.reroot(original) if index is not None else Path(original)
        if isinstance(found, str):
            problems.append(found)
        else:
            local.append(found)
    record = DescriptiveRecord(
        record_id=f"{Path(source).stem}:{line}",
        task=task,
        audios=local,
        query=obj["query"],
        response=obj["response"],
        ratings=ratings,
        winner=winner,
        origin=f"{source}:{line}",
        original_audios=list(audios),
    )
    return record, problems


def import_released_corpus(
    jsonl_paths: str | Path | Sequence[str | Path],
    nisqa_root: str | Path,
    *,
    strict: bool = True,
    tolerance: float = 0.0,
    missing_audio: str = "skip",
) -> ImportResult:
    """Read released JSON-lines files and re-root their audio onto ``nisqa_root``.

    ``strict``: a malformed line or record raises (file, line, field); otherwise it is skipped
    and counted. ``missing_audio``: ``"skip"`` drops records whose audio cannot be found and lists
    each in the report; ``"error"`` raises one :class:`CorpusError` listing all of them.
    """
    if missing_audio not in ("skip", "error"):
        raise ValueError(f"missing_audio must be 'skip' or 'error', got {missing_audio!r}")
    if isinstance(jsonl_paths, (str, Path)):
        jsonl_paths = [jsonl_paths]
    index = AudioIndex(nisqa_root)
    report = ReadReport()
    records: list[DescriptiveRecord] = []
    missing: list[str] = []
    mismatch: list[str] = []
    for path in map(Path, jsonl_paths):
        if not path.is_file():
            raise CorpusError(f"released corpus file not found: {path}")
        with open(path, encoding="utf-8") as f:
            for line_no, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                report.n_read += 1
                try:
                    try:
                        obj = json.loads(text)
                    except json.JSONDecodeError as err:
                        raise _bad(f"invalid JSON ({err.msg}, column {err.colno})", "<line>",
                                   text.strip()[:60], str(path), line_no) from None
                    rec, problems = parse_released_record(obj, str(path), line_no, index,
                                                          tolerance)
                except RatingError as err:
                    if strict:
                        raise
                    report.skip(str(path), line_no, err.field, f"{err.reason} (got "
                                f"{err.value!r})")
                    continue
                if problems:
                    missing.extend(f"{path}:{line_no}: {p}" for p in problems)
                    report.skip(str(path), line_no, "audios", "; ".join(problems))
                    continue
                if rec.task == "ab":
                    a, b = rec.ratings[0].mos, rec.ratings[1].mos
                    if (rec.winner == "A" and a < b) or (rec.winner == "B" and b < a):
                        mismatch.append(f"{rec.origin}: winner {rec.winner} but A_mos={a:g}, "
                                        f"B_mos={b:g}")
                records.append(rec)
    if missing and missing_audio == "error":
        shown = "\n  ".join(missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise CorpusError(f"{len(missing)} audio reference(s) not found under {index.root}:\n  "
                          f"{shown}{more}")
    report.n_kept = len(records)
    return ImportResult(records, report, mismatch)


def export_released_jsonl(
    records: Iterable[DescriptiveRecord],
    path: str | Path,
    relative_to: str | Path | None = None,
) -> int:
    """Write records in the released JSON-lines layout; returns how many were written.

    With ``relative_to`` the audio paths are written relative to that folder (portable corpora).
    The file is written to a temporary name and renamed, so it is never left half written.
    """
    base = Path(relative_to).resolve() if relative_to is not None else None

    def path_map(p: Path) -> str:
        return str(Path(p).resolve().relative_to(base)) if base is not None else str(p)

    count = 0
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec.to_released(path_map), ensure_ascii=False) + "\n")
            count += 1
    return count
