"""Clean speech for the simulated corpus: espeak-ng synthesis of generated sentences, or a folder.

Sentences come from a small grammar (word lists and templates written for this project), drawn
with a caller-supplied ``np.random.Generator``. Each sentence belongs to exactly one *pool*
(``train``, ``val``, ``test`` or ``babble``), decided by a hash of its text, so the pools are
disjoint whatever the seed: test sentences are never heard in training. Subsets map to pools by
name (:func:`pool_for_subset`).

A user folder of clean recordings is split into the same pools by a hash of each file's relative
path (:func:`split_files`).
"""

from __future__ import annotations

import hashlib
import io
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from speechbrain_alld.durable import stable_seed

POOLS: tuple[str, ...] = ("train", "val", "test", "babble")
#: Share of the sentence hash space given to each pool (out of 20).
_POOL_SLOTS: dict[str, range] = {
    "babble": range(0, 1), "test": range(1, 3), "val": range(3, 5), "train": range(5, 20),
}
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac")
ESPEAK_INSTALL_HINT = (
    "espeak-ng is needed to synthesise the clean speech: install it with "
    "`apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng` (macOS), "
    "or pass clean_dir= a folder of clean .wav/.flac recordings"
)


class SpeechSourceError(RuntimeError):
    """The clean-speech source cannot be used (missing binary, empty folder, bad file)."""


# ------------------------------------------------------------------------------ sentences
_NAMES = (
    "Anna", "Ben", "Clara", "David", "Emma", "Frank", "Grace", "Henry", "Iris", "Jack", "Karen",
    "Liam", "Maria", "Noah", "Olivia", "Peter", "Rosa", "Samuel", "Tina", "Victor", "Wendy",
    "Oscar", "Nina", "Hugo",
)
_ADJECTIVES = (
    "old", "young", "quiet", "busy", "small", "large", "bright", "dark", "friendly", "careful",
    "clever", "lazy", "tired", "happy", "angry", "gentle", "noisy", "famous", "strange", "modern",
    "ancient", "heavy", "narrow", "wide", "golden", "silver", "wooden", "broken", "hidden",
    "patient", "honest", "nervous", "calm", "curious", "polite", "proud", "simple", "warm",
    "cold", "empty",
)
# (singular, plural)
_NOUNS = (
    ("teacher", "teachers"), ("farmer", "farmers"), ("doctor", "doctors"), ("child", "children"),
    ("captain", "captains"), ("painter", "painters"), ("driver", "drivers"), ("baker", "bakers"),
    ("student", "students"), ("neighbour", "neighbours"), ("sailor", "sailors"),
    ("musician", "musicians"), ("dog", "dogs"), ("cat", "cats"), ("horse", "horses"),
    ("bird", "birds"), ("fox", "foxes"), ("rabbit", "rabbits"), ("engineer", "engineers"),
    ("nurse", "nurses"), ("writer", "writers"), ("singer", "singers"), ("guard", "guards"),
    ("pilot", "pilots"),
)
_OBJECTS = (
    "letter", "basket", "window", "ladder", "lamp", "map", "ticket", "garden", "bicycle",
    "kettle", "jacket", "blanket", "bottle", "bridge", "candle", "carpet", "clock", "drawer",
    "engine", "fence", "hammer", "lantern", "mirror", "notebook", "parcel", "pencil", "piano",
    "pillow", "radio", "rope", "suitcase", "table", "tent", "umbrella", "wagon", "wallet",
    "door", "book", "boat", "coat",
)
_VERBS_PAST = (
    "opened", "closed", "painted", "carried", "cleaned", "found", "lost", "moved", "repaired",
    "watched", "dropped", "borrowed", "packed", "checked", "covered", "counted", "washed",
    "pushed", "pulled", "lifted", "sold", "bought", "hid", "fixed", "brought", "took",
    "noticed", "described", "measured", "locked",
)
_VERBS_ING = (
    "reading", "painting", "cleaning", "watching", "carrying", "repairing", "checking",
    "moving", "packing", "counting", "washing", "selling", "building", "drawing", "describing",
)
_VERBS_INTRANSITIVE = (
    "arrived", "laughed", "waited", "smiled", "stopped", "returned", "listened", "rested",
    "slept", "worked", "sang", "danced", "travelled", "whispered", "shouted",
)
_PLACES = (
    "near the river", "in the kitchen", "behind the station", "at the market",
    "on the hill", "by the old church", "in the garden", "under the bridge", "at the harbour",
    "across the square", "inside the museum", "next to the school", "in the forest",
    "on the train", "at the library", "outside the bakery", "along the beach",
    "in the village", "near the castle", "on the balcony",
)
_TIMES = (
    "this morning", "last night", "on Monday", "before dinner", "after lunch", "at noon",
    "every Sunday", "yesterday", "in the evening", "at dawn", "last winter", "on Friday",
    "during the storm", "before sunrise", "after the concert", "in early spring",
)
_ADVERBS = (
    "slowly", "quickly", "quietly", "carefully", "happily", "suddenly", "patiently", "gently",
    "loudly", "calmly", "proudly", "nervously",
)
_TEMPLATES = (
    "The {adj} {noun} {verb} the {adj2} {obj} {place}.",
    "{name} {verb} the {obj} {time}.",
    "The {noun} {adverb} {verb} a {adj} {obj}.",
    "{name} and {name2} {intrans} {place} {time}.",
    "The {adj} {nouns} were {ving} the {obj} {place}.",
    "{time_cap}, the {noun} {verb} an {adj_vowel} {obj}.",
    "Why did the {adj} {noun} {intrans_base} {place}?",
    "{name} thinks the {obj} is too {adj} for the {noun}.",
    "The {nouns} {intrans} {adverb} {time}.",
    "Please ask {name} to bring the {adj} {obj} {place}.",
    "We saw a {adj} {noun} {ving} the {obj} {time}.",
    "{name} never {verb} the {obj} {place}.",
)
_VOWEL_ADJECTIVES = ("old", "ancient", "angry", "empty", "honest", "orange", "odd", "icy")
_INTRANSITIVE_BASE = {
    "arrived": "arrive", "laughed": "laugh", "waited": "wait", "smiled": "smile",
    "stopped": "stop", "returned": "return", "listened": "listen", "rested": "rest",
    "slept": "sleep", "worked": "work", "sang": "sing", "danced": "dance",
    "travelled": "travel", "whispered": "whisper", "shouted": "shout",
}


def make_sentence(rng: np.random.Generator) -> str:
    """One sentence from the grammar (any pool)."""
    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    noun, nouns = pick(_NOUNS)
    name = pick(_NAMES)
    name2 = pick([n for n in _NAMES if n != name])
    adj = pick(_ADJECTIVES)
    time = pick(_TIMES)
    intrans = pick(_VERBS_INTRANSITIVE)
    return pick(_TEMPLATES).format(
        adj=adj, adj2=pick(_ADJECTIVES), adj_vowel=pick(_VOWEL_ADJECTIVES), noun=noun,
        nouns=nouns, obj=pick(_OBJECTS), verb=pick(_VERBS_PAST), ving=pick(_VERBS_ING),
        intrans=intrans, intrans_base=_INTRANSITIVE_BASE[intrans], place=pick(_PLACES),
        time=time, time_cap=time[0].upper() + time[1:], adverb=pick(_ADVERBS), name=name,
        name2=name2,
    )


def _hash_slot(key: str) -> int:
    return stable_seed(key, n_bytes=8, algorithm="sha1") % 20


def sentence_pool(text: str) -> str:
    """The pool a sentence belongs to (a hash of its text)."""
    slot = _hash_slot(text)
    return next(pool for pool, slots in _POOL_SLOTS.items() if slot in slots)


def sample_sentence(pool: str, rng: np.random.Generator) -> str:
    """Draw sentences until one belongs to ``pool``."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; use one of {POOLS}")
    while True:
        text = make_sentence(rng)
        if sentence_pool(text) == pool:
            return text


def pool_for_subset(subset: str) -> str:
    """``test`` if the name contains TEST, ``val`` for VAL/DEV, else ``train``."""
    name = subset.upper()
    if "TEST" in name:
        return "test"
    if "VAL" in name or "DEV" in name:
        return "val"
    return "train"


# ------------------------------------------------------------------------------ audio sources
def resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Polyphase resampling (identity when the rates match)."""
    if fs_in == fs_out:
        return x
    g = math.gcd(int(fs_in), int(fs_out))
    return resample_poly(x, fs_out // g, fs_in // g)


def check_espeak(binary: str = "espeak-ng") -> str:
    """Path of the espeak-ng binary, or :class:`SpeechSourceError` saying how to install it."""
    path = shutil.which(binary)
    if path is None:
        raise SpeechSourceError(f"'{binary}' not found on PATH. {ESPEAK_INSTALL_HINT}")
    return path


def synthesize(
    text: str, voice: str, speed: int, pitch: int, fs: int, binary: str = "espeak-ng"
) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng and return float samples at ``fs``."""
    cmd = [binary, "--stdout", "-v", voice, "-s", str(int(speed)), "-p", str(int(pitch)), text]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    except FileNotFoundError as err:
        raise SpeechSourceError(f"'{binary}' not found. {ESPEAK_INSTALL_HINT}") from err
    if proc.returncode != 0 or not proc.stdout:
        raise SpeechSourceError(
            f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace')}"
        )
    audio, rate = sf.read(io.BytesIO(proc.stdout), dtype="float64")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return resample(audio, rate, fs)


def list_audio_files(clean_dir: str | Path) -> list[Path]:
    """All .wav/.flac files under ``clean_dir`` (recursive, sorted)."""
    root = Path(clean_dir)
    if not root.is_dir():
        raise SpeechSourceError(f"clean_dir {root} is not a folder")
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )
    if not files:
        raise SpeechSourceError(
            f"clean_dir {root} holds no {'/'.join(AUDIO_EXTENSIONS)} files (searched recursively)"
        )
    return files


def split_files(
    files: list[Path], root: str | Path, pools: tuple[str, ...] = ("train", "val", "test")
) -> dict[str, list[Path]]:
    """Split files into disjoint pools: ordered by a hash of the relative path, ~10% each to
    ``val`` and ``test`` (at least one file each when there are enough), the rest to ``train``.
    Only the pools named in ``pools`` are filled; the others get nothing."""
    root = Path(root)
    ordered = sorted(
        files, key=lambda p: hashlib.sha1(p.relative_to(root).as_posix().encode()).hexdigest()
    )
    wanted = [p for p in ("test", "val") if p in pools]
    out: dict[str, list[Path]] = {p: [] for p in pools}
    start = 0
    n_each = max(1, int(round(0.1 * len(ordered))))
    for pool in wanted:
        out[pool] = ordered[start : start + n_each]
        start += n_each
    if "train" in pools:
        out["train"] = ordered[start:]
    return out


def load_clean_file(path: str | Path, fs: int) -> np.ndarray:
    """Read a recording with soundfile, mix to mono and resample to ``fs``."""
    try:
        audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except Exception as err:  # soundfile raises several types for unreadable files
        raise SpeechSourceError(f"cannot read clean file {path}: {err}") from err
    return resample(audio.mean(axis=1), rate, fs)


def fit_duration(
    x: np.ndarray, fs: int, max_seconds: float, rng: np.random.Generator, random_crop: bool,
    pad: bool = False,
) -> np.ndarray:
    """Cut ``x`` to at most ``max_seconds`` (random crop or the start, with a 10 ms fade-out);
    zero-pad to exactly ``max_seconds`` when ``pad``."""
    n = int(round(max_seconds * fs))
    if x.size > n:
        start = int(rng.integers(x.size - n + 1)) if random_crop else 0
        x = x[start : start + n].copy()
        fade = min(int(0.01 * fs), n)
        x[n - fade :] *= np.linspace(1.0, 0.0, fade)
    elif pad and x.size < n:
        x = np.pad(x, (0, n - x.size))
    return x


def trim_silence(x: np.ndarray, threshold: float = 1e-4) -> np.ndarray:
    """Drop leading and trailing samples below ``threshold`` in magnitude."""
    idx = np.nonzero(np.abs(x) > threshold)[0]
    return x[idx[0] : idx[-1] + 1] if idx.size else x[:0]
