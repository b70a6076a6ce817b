"""Durable files and stable fingerprints: the one helper that every resumable step uses.

* :func:`atomic_output` / :func:`write_text_atomic` / :func:`write_json_atomic`: write through a
  unique temporary file, flush, fsync and rename, so a crash never leaves half a file and two
  writers never share a temporary file.
* :func:`fingerprint` / :func:`file_fingerprint`: SHA-256 of a canonical JSON form of any
  settings, or of files' names and bytes, so "same settings and inputs" is one comparison.
* :func:`stable_seed`: an integer seed derived from text, identical across processes and runs
  (Python's ``hash`` is salted per process).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# mkstemp creates 0600 files; a written file gets the mode a plain open() would give it.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto it.

    Arguments
    ---------
    path : str or Path
        The file to (re)write. Its folder is created.

    Returns
    -------
    A context manager yielding the temporary ``Path`` to write. On an exception the temporary
    file is removed and ``path`` is left as it was.

    Example
    -------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_output(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    >>> sorted(p.name for p in target.parent.iterdir())
    ['a.txt']
    >>> target.stat().st_mode & 0o777 == 0o666 & ~_UMASK  # as open() would make it
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last: writers such as soundfile pick the format from it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_output`).

    Arguments
    ---------
    path : str or Path
        The file to write.
    text : str
        Its new content.

    Example
    -------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "sub" / "b.txt"
    >>> write_text_atomic(target, "one\\n")
    >>> target.read_text()
    'one\\n'
    """
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically.

    Arguments
    ---------
    path : str or Path
        The file to write.
    data : Any
        JSON-serialisable content.

    Example
    -------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "c.json"
    >>> write_json_atomic(target, {"x": [1, 2]})
    >>> json.loads(target.read_text())
    {'x': [1, 2]}
    """
    write_text_atomic(path, json.dumps(data, indent=2))


def fingerprint(data: Any) -> str:
    """SHA-256 (hex) of ``data``'s canonical JSON form (sorted keys; ``str`` for the rest).

    Arguments
    ---------
    data : Any
        Settings: dicts, lists, scalars; other objects count by their ``str``.

    Returns
    -------
    64 hex digits; equal for equal settings whatever the order of dict keys.

    Example
    -------
    >>> fingerprint({"a": 1, "b": [2, 3]}) == fingerprint({"b": [2, 3], "a": 1})
    True
    >>> fingerprint({"a": 1}) == fingerprint({"a": 1.5})
    False
    """
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_fingerprint(*paths: str | Path, root: str | Path | None = None) -> str:
    """SHA-256 (hex) of files' contents, in order; with ``root``, their relative names too.

    Arguments
    ---------
    *paths : str or Path
        The files.
    root : str or Path, optional
        When given, each file's path relative to it is hashed before its bytes, so a renamed
        file changes the fingerprint.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "x").write_text("1")
    >>> before = file_fingerprint(folder / "x")
    >>> _ = (folder / "x").write_text("2")
    >>> before == file_fingerprint(folder / "x")
    False
    """
    digest = hashlib.sha256()
    for path in paths:
        if root is not None:
            digest.update(str(Path(path).relative_to(root)).encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def stable_seed(key: str | bytes, n_bytes: int = 4, algorithm: str = "sha256") -> int:
    """A non-negative integer seed from the first ``n_bytes`` of ``key``'s digest (big-endian).

    Arguments
    ---------
    key : str or bytes
        What the seed stands for (e.g. a base seed and an item id); ``str`` is UTF-8 encoded.
    n_bytes : int
        Digest bytes used: 4 gives a seed below 2**32 (what ``numpy`` and ``torch`` accept).
    algorithm : str
        A :mod:`hashlib` algorithm name.

    Example
    -------
    >>> stable_seed("0:clip_1") == stable_seed(b"0:clip_1")
    True
    >>> 0 <= stable_seed("0:clip_1") < 2**32
    True
    >>> stable_seed("abc") == int(hashlib.sha256(b"abc").hexdigest()[:8], 16)
    True
    """
    raw = key.encode("utf-8") if isinstance(key, str) else key
    return int.from_bytes(hashlib.new(algorithm, raw).digest()[:n_bytes], "big")
