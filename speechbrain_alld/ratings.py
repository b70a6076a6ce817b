"""Rating records: an overall MOS plus the four NISQA quality dimensions.

Scales follow ITU-T P.800 absolute category rating (ALLD-SPEC §2): every value is a mean over
listeners on 1..5, higher is better. ``mos`` is required; ``noi`` (noisiness), ``col``
(coloration), ``dis`` (discontinuity) and ``loud`` (loudness) are optional (the NISQA TEST sets
and most other corpora carry MOS only). Each may carry the standard deviation of its votes, and a
record may carry the number of votes.

Validation is strict by default: a bad value raises :class:`RatingError`, which names the source
file, the line and the field. Readers that offer a lenient mode catch it, skip the row and count it
in a :class:`ReadReport`; nothing is ever dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

DIMENSIONS: tuple[str, ...] = ("noi", "col", "dis", "loud")
RATING_KEYS: tuple[str, ...] = ("mos",) + DIMENSIONS
STD_KEYS: tuple[str, ...] = tuple(f"{k}_std" for k in RATING_KEYS)
DIMENSION_NAMES: dict[str, str] = {
    "mos": "overall quality",
    "noi": "noisiness",
    "col": "coloration",
    "dis": "discontinuity",
    "loud": "loudness",
}
SCALE_MIN, SCALE_MAX = 1.0, 5.0

# Cells read as "not rated" for the optional fields (pandas writes NaN as an empty cell or "nan").
_MISSING_CELLS = {"", "nan", "na", "n/a", "none", "null"}


class RatingError(ValueError):
    """A rating value that fails validation, located by file, line and field.

    Arguments
    ---------
    reason : str
        What is wrong with the value.
    field : str
        The field (column or key) that holds it.
    value : Any
        The offending value.
    source : str | None
        The file it was read from (``<ratings>`` in the message when unknown).
    line : int | None
        The line (or record number) in ``source``.

    Example
    -------
    >>> err = RatingError("outside the rating scale [1, 5]", field="mos", value=7.0,
    ...                   source="a.csv", line=3)
    >>> str(err)
    "a.csv:3: field 'mos': outside the rating scale [1, 5] (got 7.0)"
    >>> (err.field, err.line)
    ('mos', 3)
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str,
        value: Any = None,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = reason
        self.field = field
        self.value = value
        self.source = source
        self.line = line
        where = source or "<ratings>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: field '{field}': {reason} (got {value!r})")


@dataclass
class SkippedItem:
    """One row or record left out in lenient mode, with the reason.

    Arguments
    ---------
    source : str
        The file it was read from.
    line : int | None
        The line (or record number) in ``source``, if known.
    field : str | None
        The field at fault, if one is.
    reason : str
        Why it was left out.

    Example
    -------
    >>> str(SkippedItem("a.csv", 3, "mos", "missing"))
    "a.csv:3: field 'mos' missing"
    >>> str(SkippedItem("b.json", None, None, "no MOS"))
    'b.json: no MOS'
    """

    source: str
    line: int | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        fld = f" field '{self.field}'" if self.field else ""
        return f"{where}:{fld} {self.reason}"


@dataclass
class ReadReport:
    """What a reader read, kept and skipped. ``skipped`` holds every left-out item.

    Arguments
    ---------
    n_read : int
        Rows or records read.
    n_kept : int
        Rows or records kept.
    skipped : list[SkippedItem]
        Every item left out, with its reason.

    Example
    -------
    >>> report = ReadReport(n_read=3, n_kept=2)
    >>> report.skip("a.csv", 3, "mos", "missing")
    >>> report.n_skipped
    1
    >>> print(report.summary())
    read 3, kept 2, skipped 1:
      a.csv:3: field 'mos' missing
    """

    n_read: int = 0
    n_kept: int = 0
    skipped: list[SkippedItem] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def skip(self, source: str, line: int | None, field: str | None, reason: str) -> None:
        self.skipped.append(SkippedItem(str(source), line, field, reason))

    def merge(self, other: ReadReport) -> ReadReport:
        self.n_read += other.n_read
        self.n_kept += other.n_kept
        self.skipped.extend(other.skipped)
        return self

    def summary(self, max_items: int = 10) -> str:
        text = f"read {self.n_read}, kept {self.n_kept}, skipped {self.n_skipped}"
        if self.skipped:
            shown = "\n  ".join(str(s) for s in self.skipped[:max_items])
            more = self.n_skipped - max_items
            text += ":\n  " + shown + (f"\n  ... and {more} more" if more > 0 else "")
        return text


def _parse_float(raw: Any, key: str, source: str | None, line: int | None) -> float | None:
    """Float from a cell; ``None`` for an empty/NaN-marker cell; RatingError when unparsable."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in _MISSING_CELLS:
            return None
        try:
            return float(text)
        except ValueError:
            raise RatingError(
                "not a number", field=key, value=raw, source=source, line=line
            ) from None
    if isinstance(raw, bool):
        raise RatingError("not a number", field=key, value=raw, source=source, line=line)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise RatingError(
            "not a number", field=key, value=raw, source=source, line=line
        ) from None
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class RatingRecord:
    """Mean opinion scores of one clip: ``mos`` and optional dimensions, stds and vote count.

    Validated on construction (:meth:`validate`): a bad value raises :class:`RatingError`.

    Arguments
    ---------
    mos : float
        The overall MOS, 1..5.
    noi, col, dis, loud : float | None
        Noisiness, coloration, discontinuity and loudness, 1..5 (``None``: not rated).
    mos_std, noi_std, col_std, dis_std, loud_std : float | None
        Standard deviations of the votes (>= 0).
    votes : int | None
        The number of votes (>= 1).

    Example
    -------
    >>> rec = RatingRecord.from_mapping({"A_mos": "3.25", "A_noi": "2.5", "A_col": "",
    ...                                  "A_votes": "4"}, prefix="A_")
    >>> rec.mos, rec.col, rec.votes, rec.dimensions()
    (3.25, None, 4, {'noi': 2.5})
    >>> rec.to_dict(prefix="B_", include_missing=False)
    {'B_mos': 3.25, 'B_noi': 2.5, 'B_votes': 4}
    >>> RatingRecord.from_mapping({"mos": "5.02"}, tolerance=0.05).mos
    5.0
    >>> RatingRecord.from_mapping({"mos": "5.2"}, source="r.csv", line=7)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_alld.ratings.RatingError: r.csv:7: field 'mos': outside the rating scale ... 5.2)
    """

    mos: float
    noi: float | None = None
    col: float | None = None
    dis: float | None = None
    loud: float | None = None
    mos_std: float | None = None
    noi_std: float | None = None
    col_std: float | None = None
    dis_std: float | None = None
    loud_std: float | None = None
    votes: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(
        self, tolerance: float = 0.0, source: str | None = None, line: int | None = None
    ) -> None:
        """Raise :class:`RatingError` unless every value is finite and on the 1..5 scale."""
        for key in RATING_KEYS:
            value = getattr(self, key)
            if value is None:
                if key == "mos":
                    raise RatingError("missing", field=key, value=value, source=source, line=line)
                continue
            _check_scale(key, value, tolerance, source, line)
        for key in STD_KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise RatingError(
                    "standard deviation must be a finite number >= 0",
                    field=key,
                    value=value,
                    source=source,
                    line=line,
                )
        if self.votes is not None and (
            not isinstance(self.votes, int) or isinstance(self.votes, bool) or self.votes < 1
        ):
            raise RatingError(
                "vote count must be an integer >= 1",
                field="votes",
                value=self.votes,
                source=source,
                line=line,
            )

    @classmethod
    def from_mapping(
        cls,
        row: Mapping[str, Any],
        *,
        prefix: str = "",
        tolerance: float = 0.0,
        source: str | None = None,
        line: int | None = None,
    ) -> RatingRecord:
        """Build and validate a record from a CSV row or JSON object.

        ``prefix`` selects keys such as ``A_mos`` (``prefix="A_"``). Values slightly outside
        1..5 (within ``tolerance``) are clipped onto the scale; anything else out of range,
        non-finite or unparsable raises :class:`RatingError` naming ``source``, ``line`` and the
        field. Empty cells mean "not rated" except for ``mos``, which is required.
        """
        values: dict[str, Any] = {}
        for key in RATING_KEYS + STD_KEYS:
            full = prefix + key
            value = _parse_float(row.get(full), full, source, line)
            if key in RATING_KEYS and value is not None:
                _check_scale(full, value, tolerance, source, line)
                value = min(max(value, SCALE_MIN), SCALE_MAX)
            values[key] = value
        if values["mos"] is None:
            raise RatingError(
                "missing (mos is required)",
                field=prefix + "mos",
                value=row.get(prefix + "mos"),
                source=source,
                line=line,
            )
        votes_raw = _parse_float(row.get(prefix + "votes"), prefix + "votes", source, line)
        votes = None
        if votes_raw is not None:
            if not math.isfinite(votes_raw) or votes_raw != int(votes_raw) or votes_raw < 1:
                raise RatingError(
                    "vote count must be an integer >= 1",
                    field=prefix + "votes",
                    value=row.get(prefix + "votes"),
                    source=source,
                    line=line,
                )
            votes = int(votes_raw)
        try:
            return cls(**values, votes=votes)
        except RatingError as err:
            raise RatingError(
                err.reason, field=prefix + err.field, value=err.value, source=source, line=line
            ) from None

    def dimensions(self) -> dict[str, float]:
        """The dimension values present on this record (MOS excluded)."""
        return {k: getattr(self, k) for k in DIMENSIONS if getattr(self, k) is not None}

    def to_dict(self, prefix: str = "", include_missing: bool = True) -> dict[str, Any]:
        """Flat dict (optionally prefixed) for manifests and JSON files."""
        data = asdict(self)
        if not include_missing:
            data = {k: v for k, v in data.items() if v is not None}
        return {prefix + k: v for k, v in data.items()}


def _check_scale(
    key: str, value: Any, tolerance: float, source: str | None, line: int | None
) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise RatingError("must be a finite number", field=key, value=value, source=source,
                          line=line)
    if value < SCALE_MIN - tolerance or value > SCALE_MAX + tolerance:
        bounds = f"[{SCALE_MIN:g}, {SCALE_MAX:g}]"
        if tolerance:
            bounds += f" (tolerance {tolerance:g})"
        raise RatingError(f"outside the rating scale {bounds}", field=key, value=value,
                          source=source, line=line)
