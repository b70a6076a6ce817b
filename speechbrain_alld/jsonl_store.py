"""A crash-safe, append-only JSON-lines store of finished work items, keyed by ``key``.

Long stages (description generation, rejected-response sampling, reference scoring) append each
finished item here, flushed and fsynced one batch at a time. On load, a line cut off by a crash is
reported and trimmed before anything new is appended, and a corrupt complete line is reported and
ignored, so an interrupted run resumes without losing or repeating a finished item.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from speechbrain.utils.logger import get_logger

logger = get_logger(__name__)


class JsonlStore:
    """Append-only JSON-lines store of finished work items, loaded into a dict by ``key``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = {}
        self.n_corrupt = 0
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        with open(self.path, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # never trim a line another writer is writing
            try:
                self._load_locked()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load_locked(self) -> None:
        with open(self.path, "rb") as f:
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        for line_no, raw in enumerate(complete.splitlines(), start=1):
            try:
                entry = json.loads(raw)
                self.entries[entry["key"]] = entry
            except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
                self.n_corrupt += 1
                logger.warning("Cache %s line %d is corrupt and is ignored.", self.path, line_no)
        if len(complete) < len(data):
            logger.warning("Cache %s: trimming %d byte(s) of a line cut off by an interrupted "
                           "write; that item will be generated again.", self.path,
                           len(data) - len(complete))
            with open(self.path, "r+b") as f:
                f.truncate(len(complete))
                f.flush()
                os.fsync(f.fileno())

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def add(self, entries: Iterable[dict[str, Any]]) -> None:
        """Append finished entries (each with a ``key``) durably, then index them."""
        entries = list(entries)
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        with open(self.path, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        for entry in entries:
            self.entries[entry["key"]] = entry
