"""The reproduction table's formatting: aggregates over seeds, cells, markdown, README sections.

Pure functions used by :mod:`speechbrain_alld.table` (which re-exports them) and its report.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

START_MARKER = "<!-- table:start -->"
END_MARKER = "<!-- table:end -->"


def aggregate(per_seed: Mapping[Any, float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation (n-1), min and max over the seeds' finite values.

    ``n`` counts the finite values, ``n_missing`` the seeds without one (``None``/nan: e.g. no
    MOS could be parsed); ``std`` is nan with fewer than two values.
    """
    values = [float(v) for v in per_seed.values() if v is not None and math.isfinite(float(v))]
    out: dict[str, Any] = {"n": len(values), "n_missing": len(per_seed) - len(values)}
    if not values:
        return {**out, "mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {**out, "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else math.nan,
            "min": min(values), "max": max(values)}


def format_value(value: float, fmt: str) -> str:
    """``f3``/``f2``/``f1``: decimals; ``pct``: a share as percent with one decimal."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if fmt == "pct":
        return f"{100 * value:.1f}%"
    if fmt.startswith("f") and fmt[1:].isdigit():
        return f"{value:.{int(fmt[1:])}f}"
    raise ValueError(f"unknown format {fmt!r} (expected f<digits> or pct)")


def format_cell(agg: Mapping[str, Any], fmt: str) -> str:
    """``mean ± std`` (the std in the same format; a percent's std in points)."""
    if agg["n"] == 0:
        return "n/a"
    cell = format_value(agg["mean"], fmt)
    if agg["n"] > 1:
        spread = format_value(agg["std"], fmt).rstrip("%")
        cell += f" ± {spread}"
    if agg["n_missing"]:
        cell += f" ({agg['n']}/{agg['n'] + agg['n_missing']})"
    return cell


def markdown_table(results: Mapping[str, Mapping[str, Mapping[str, Any]]],
                   columns: Sequence[Sequence[str]]) -> str:
    """Rows (in ``results`` order) x ``columns`` (``[header, key, format]``) of aggregates.

    ``results[row][key]`` is an :func:`aggregate`; a key a row does not have shows ``–``.
    """
    header = "| system | " + " | ".join(c[0] for c in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for row, scores in results.items():
        cells = [format_cell(scores[key], fmt) if key in scores else "–"
                 for _, key, fmt in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_section(text: str, content: str, start: str = START_MARKER,
                    end: str = END_MARKER) -> str:
    """``text`` with what lies between ``start`` and ``end`` replaced by ``content``.

    Without the markers, they and the content are appended at the end.
    """
    block = f"{start}\n{content.strip()}\n{end}"
    i, j = text.find(start), text.find(end)
    if i < 0 and j < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    if i < 0 or j < i:
        raise ValueError(f"the text has {end!r} without a {start!r} before it")
    return text[:i] + block + text[j + len(end):]


def machine_description() -> str:
    """CPU model and core count, RAM, Python and torch versions (for the table's header)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        ram = f", {mem:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        ram = ""
    gpu = "no GPU" if not torch.cuda.is_available() else torch.cuda.get_device_name(0)
    return (f"{cpu}, {os.cpu_count()} cores{ram}, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")
