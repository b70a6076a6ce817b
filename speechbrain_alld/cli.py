"""``alld-evaluate``: describe speech quality (or compare two clips) from the command line.

    alld-evaluate --model DIR clip.wav folder/ [--output out.jsonl|out.csv]
    alld-evaluate --model DIR --compare a.wav b.wav

Describing: PATHs are audio files or folders (searched recursively for .wav/.flac/.ogg,
sorted). Files are described in batches (one ``generate`` call per batch) and each gives one
result (path, mos, dimensions, parsed, text), written as JSON lines to stdout or to
``--output`` (``.jsonl`` or ``.csv``, chosen by the extension). Unusable files (missing,
unreadable, empty, silent, non-finite, too long with ``--long-audio error``) are skipped and
listed in a summary on stderr.

Exit codes: 0 all went well; 1 some files were skipped (describe) or an input is unusable
(compare); 2 bad usage, nothing usable to describe, or the model could not be loaded.

``--model`` is a local model folder or a hub id; ``HF_HUB_OFFLINE=1`` in the environment is
respected by the loaders (nothing here overrides it).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from speechbrain_alld.ratings import DIMENSIONS

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
CSV_COLUMNS = ("path", "mos", *DIMENSIONS, "parsed", "text")
EXIT_OK, EXIT_SKIPPED, EXIT_USAGE = 0, 1, 2


class CLIError(Exception):
    """A problem reported as one clear message with an exit code (no traceback)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------- arguments
def build_parser() -> argparse.ArgumentParser:
    """The ``alld-evaluate`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="alld-evaluate",
        description="Describe speech quality with an ALLD audio LLM (MOS, dimensions and a "
                    "description per file), or compare two clips with --compare A B.",
        epilog="Exit codes: 0 ok; 1 some inputs were unusable (skipped files are summarised on "
               "stderr); 2 bad usage, nothing usable to describe, or the model cannot be "
               "loaded. HF_HUB_OFFLINE=1 is respected.")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="audio files or folders (searched recursively for "
                             + "/".join(AUDIO_SUFFIXES) + ")")
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="model folder (Hugging Face files + hyperparams.yaml) or hub id")
    parser.add_argument("--savedir", default=None, metavar="D",
                        help="where SpeechBrain puts the fetched interface files")
    parser.add_argument("--device", default=None,
                        help="cpu or cuda (default: cuda when available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N",
                        help="files per generate call (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                        help="override the model's max_new_tokens")
    parser.add_argument("--long-audio", choices=("chunk", "truncate", "error"), default=None,
                        help="clips longer than the model window: chunk (average the windows' "
                             "MOS), truncate, or error (skip the file); default: the model's")
    parser.add_argument("--output", "-o", default=None, metavar="FILE",
                        help="write results to FILE (.jsonl or .csv) instead of JSON lines on "
                             "stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                        help="A/B comparison of two clips (prints one JSON object)")
    parser.add_argument("--no-debias", action="store_true",
                        help="with --compare: run only the A-B order")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.compare is not None and args.paths:
        parser.error("give either PATHs to describe or --compare A B, not both")
    if args.compare is None and not args.paths:
        parser.error("no inputs: give audio files or folders (or --compare A B)")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        parser.error("--max-new-tokens must be at least 1")
    if args.output is not None and _output_format(args.output) is None:
        parser.error(f"--output must end in .jsonl or .csv, got {args.output!r}")
    if args.no_debias and args.compare is None:
        parser.error("--no-debias only applies to --compare")


def _output_format(path: str) -> str | None:
    suffix = Path(path).suffix.lower()
    return {".jsonl": "jsonl", ".csv": "csv"}.get(suffix)


# ---------------------------------------------------------------------------------- inputs
def collect_inputs(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files from files and folders (recursive, sorted), and the paths that were unusable.

    Files named directly are kept whatever their extension (loading decides); a missing path
    or a folder without audio files is reported as ``(path, reason)``. Duplicates are dropped.
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                problems.append((str(path), "folder holds no "
                                 + "/".join(AUDIO_SUFFIXES) + " files"))
            for p in found:
                add(p)
        elif path.exists():
            add(path)
        else:
            problems.append((str(path), "file not found"))
    return files, problems


def _reason(err: BaseException, path: str | Path) -> str:
    """An error message without a repeated ``<path>:`` prefix."""
    text = str(err).strip() or type(err).__name__
    prefix = f"{path}: "
    text = text[len(prefix):] if text.startswith(prefix) else text
    return text.splitlines()[0]


# ---------------------------------------------------------------------------------- model
def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_evaluator(args: argparse.Namespace) -> Any:
    """The :class:`DescriptiveQualityEvaluator` the arguments ask for (``CLIError`` if not)."""
    from speechbrain_alld.inference import DescriptiveQualityEvaluator

    model = args.model
    local = Path(model).expanduser()
    looks_local = local.is_absolute() or model.startswith(".") or local.exists() \
        or model.count("/") != 1
    if looks_local and not local.is_dir():
        raise CLIError(f"cannot load the model: {model} is not a folder")
    if looks_local and not (local / "hyperparams.yaml").is_file():
        raise CLIError(f"cannot load the model: {model} holds no hyperparams.yaml "
                       "(write it with speechbrain_alld.inference.write_interface_files)")
    overrides: dict[str, Any] = {}
    if args.max_new_tokens is not None:
        overrides["max_new_tokens"] = args.max_new_tokens
    if args.long_audio is not None:
        overrides["long_audio"] = args.long_audio
    device = args.device or _default_device()
    if args.no_progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    try:
        return DescriptiveQualityEvaluator.from_hparams(
            source=str(local) if looks_local else model, savedir=args.savedir,
            overrides=overrides, run_opts={"device": device})
    except Exception as err:  # any loader failure is reported as one line
        raise CLIError(f"cannot load the model from {model}: {type(err).__name__}: "
                       f"{_reason(err, model)}") from None


# ---------------------------------------------------------------------------------- output
def result_row(path: str | Path, description: Any) -> dict[str, Any]:
    """One output record for a described file."""
    return {"path": str(path), "mos": description.mos,
            "dimensions": dict(description.dimensions), "parsed": bool(description.parsed),
            "text": description.text}


class ResultWriter:
    """Writes result rows as JSON lines or CSV, row by row (partial results survive)."""

    def __init__(self, stream: IO[str], fmt: str) -> None:
        self.stream = stream
        self.fmt = fmt
        self.csv: Any = None
        if fmt == "csv":
            self.csv = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
            self.csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        """Write one result row."""
        if self.csv is not None:
            flat = {"path": row["path"], "mos": "" if row["mos"] is None else row["mos"],
                    "parsed": row["parsed"], "text": row["text"]}
            for dim in DIMENSIONS:
                value = row["dimensions"].get(dim)
                flat[dim] = "" if value is None else value
            self.csv.writerow(flat)
        else:
            self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.stream.flush()


@contextmanager
def _open_output(path: str | None) -> Iterator[ResultWriter]:
    if path is None:
        yield ResultWriter(sys.stdout, "jsonl")
        return
    fmt = _output_format(path) or "jsonl"
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(path, "w", encoding="utf-8", newline="")
    except OSError as err:
        raise CLIError(f"cannot write {path}: {err.strerror or err}") from None
    with stream:
        yield ResultWriter(stream, fmt)


# ---------------------------------------------------------------------------------- describe
def _batches(items: Sequence[Path], size: int) -> Iterator[list[Path]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def _validate(evaluator: Any, path: Path) -> Any:
    """The checked waveform of ``path`` (raises if it cannot be described)."""
    wav = evaluator.load_waveform(path)
    windows = getattr(evaluator, "_windows", None)
    if windows is not None:  # long_audio: error raises here, per file
        windows(wav, str(path))
    return wav


def describe_paths(evaluator: Any, files: Sequence[Path], batch_size: int,
                   writer: ResultWriter, progress: bool = True) -> tuple[int, list[tuple[str,
                                                                                     str]]]:
    """Describe ``files`` in batches; returns (how many were described, skipped (path, why))."""
    from tqdm import tqdm

    described, skipped = 0, []
    bar = tqdm(total=len(files), desc="describing", unit="file", file=sys.stderr,
               disable=not progress)
    try:
        for batch in _batches(files, batch_size):
            good, waves = [], []
            for path in batch:
                try:
                    waves.append(_validate(evaluator, path))
                    good.append(path)
                except Exception as err:  # any per-file load error: skip the file
                    skipped.append((str(path), _reason(err, path)))
            results = _describe_good(evaluator, good, waves, skipped)
            for path, result in results:
                writer.write(result_row(path, result))
                described += 1
            bar.update(len(batch))
            if skipped:
                bar.set_postfix(skipped=len(skipped))
    finally:
        bar.close()
    return described, skipped


def _describe_good(evaluator: Any, paths: list[Path], waves: list[Any],
                   skipped: list[tuple[str, str]]) -> list[tuple[Path, Any]]:
    """Describe validated waveforms in one call; if the batch fails, retry them one by one."""
    if not paths:
        return []
    rate = evaluator.sample_rate
    try:
        return list(zip(paths, evaluator.describe_batch(waves, sample_rate=rate)))
    except Exception as err:
        if len(paths) == 1:
            skipped.append((str(paths[0]), _reason(err, "<waveform 0>")))
            return []
    out = []
    for path, wav in zip(paths, waves):
        try:
            out.append((path, evaluator.describe_batch([wav], sample_rate=rate)[0]))
        except Exception as err:  # this file breaks generation: skip it, keep the rest
            skipped.append((str(path), _reason(err, "<waveform 0>")))
    return out


def _summary(described: int, skipped: list[tuple[str, str]]) -> str:
    lines = [f"described {described}, skipped {len(skipped)}" + (":" if skipped else "")]
    lines += [f"  {path}: {reason}" for path, reason in skipped]
    return "\n".join(lines)


def run_describe(args: argparse.Namespace) -> int:
    """The describe command; returns the exit code."""
    files, problems = collect_inputs(args.paths)
    if not files:
        print(_summary(0, problems), file=sys.stderr)
        raise CLIError("nothing to describe: no usable audio files among the given paths")
    evaluator = load_evaluator(args)
    with _open_output(args.output) as writer:
        described, skipped = describe_paths(evaluator, files, args.batch_size, writer,
                                            progress=not args.no_progress)
    skipped = problems + skipped
    print(_summary(described, skipped), file=sys.stderr)
    if described == 0:
        print("alld-evaluate: error: no file could be described", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_SKIPPED if skipped else EXIT_OK


# ---------------------------------------------------------------------------------- compare
def run_compare(args: argparse.Namespace) -> int:
    """The ``--compare A B`` command; returns the exit code."""
    from speechbrain_alld.inference import AudioInputError

    a, b = args.compare
    missing = [p for p in (a, b) if not Path(p).is_file()]
    if missing:
        print("alld-evaluate: error: unusable input: "
              + "; ".join(f"{p}: file not found" for p in missing), file=sys.stderr)
        return EXIT_SKIPPED
    evaluator = load_evaluator(args)
    try:
        result = evaluator.compare_files(a, b, debias=not args.no_debias)
    except (AudioInputError, ValueError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"alld-evaluate: error: unusable input: {reason}", file=sys.stderr)
        return EXIT_SKIPPED
    record = {"a": str(a), "b": str(b), "verdict": result.verdict,
              "agreement": result.agreement, "note": result.note, "texts": list(result.texts),
              "verdicts": list(result.verdicts)}
    print(json.dumps(record, ensure_ascii=False))
    return EXIT_OK


# ---------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``alld-evaluate`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_args(parser, args)
    except SystemExit as exc:  # --help (0) or a usage error (2): already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return run_compare(args) if args.compare is not None else run_describe(args)
    except CLIError as err:
        print(f"alld-evaluate: error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("alld-evaluate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
