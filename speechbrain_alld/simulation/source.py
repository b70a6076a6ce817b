"""Clean speech of the simulated clips: espeak-ng sentences, or files of a user folder.

:class:`CleanSource` gives each clip its clean speech at the nominal active level (drawn from the
clip's ``speech`` generator) and builds, once per process and from the run's seed only, the bank
of talkers that babble noise is mixed from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechbrain_alld.simulation import speech as sp
from speechbrain_alld.simulation.config import SimulationConfig, SimulationError
from speechbrain_alld.simulation.degradations import scale_to_level

# Seed tags of the per-run (not per-clip) generators.
_FOLDER_ORDER_TAG, _BABBLE_TAG = 1000, 2000


class CleanSource:
    """Clean speech for a clip: espeak-ng sentences, or files of a user folder.

    Arguments
    ---------
    config : SimulationConfig
        Sample rate, duration, level and espeak-ng settings.
    seed : int
        The run's seed (orders the user files and draws the babble talkers).
    clean_dir : Path, optional
        The user folder; ``None`` synthesises speech with espeak-ng.
    pool_files : dict, optional
        With ``clean_dir``: the files of each sentence pool (``train``, ``val``, ``test``).
    """

    def __init__(self, config: SimulationConfig, seed: int, clean_dir: Path | None = None,
                 pool_files: dict[str, list[Path]] | None = None) -> None:
        self.config = config
        self.seed = seed
        self.clean_dir = clean_dir
        self.pool_files = pool_files or {}
        self._babble: list[np.ndarray] | None = None

    @property
    def kind(self) -> str:
        """``espeak-ng`` or ``user``: the CSV's ``source`` column."""
        return "espeak-ng" if self.clean_dir is None else "user"

    def _fit(self, x: np.ndarray, rng: np.random.Generator, random_crop: bool) -> np.ndarray:
        c = self.config
        return sp.fit_duration(x, c.sample_rate, c.max_duration, rng, random_crop,
                               pad=c.pad_to_max_duration)

    def _synth(self, pool: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        c = self.config
        text = sp.sample_sentence(pool, rng)
        voice = c.voices[int(rng.integers(len(c.voices)))]
        voice += c.variants[int(rng.integers(len(c.variants)))]
        speed = int(rng.integers(int(c.speed_range[0]), int(c.speed_range[1]) + 1))
        pitch = int(rng.integers(int(c.pitch_range[0]), int(c.pitch_range[1]) + 1))
        audio = sp.trim_silence(sp.synthesize(text, voice, speed, pitch, c.sample_rate,
                                              c.espeak_binary))
        lead, tail = (int(rng.uniform(*c.silence_range) * c.sample_rate) for _ in range(2))
        audio = np.concatenate([np.zeros(lead), audio, np.zeros(tail)])
        meta = {"text": text, "voice": voice, "speed": speed, "pitch": pitch, "source_file": ""}
        return audio, meta

    def clean(self, pool: str, index: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """Clean clip at the nominal active level, and what it is (text/voice or file).

        Arguments
        ---------
        pool : str
            The sentence pool of the clip's subset.
        index : int
            The clip's index in its subset (picks the user file).
        rng : numpy.random.Generator
            The clip's ``speech`` generator.

        Returns
        -------
        The audio (float, ``config.sample_rate``) and a dict with ``text``, ``voice``, ``speed``,
        ``pitch`` and ``source_file`` (empty strings where they do not apply).
        """
        c = self.config
        if self.clean_dir is None:
            audio, meta = self._synth(pool, rng)
            audio = self._fit(audio, rng, random_crop=False)
        else:
            files = self.pool_files[pool]
            order = np.random.default_rng([self.seed, _FOLDER_ORDER_TAG + sp.POOLS.index(pool)])
            order = order.permutation(len(files))
            path = files[int(order[index % len(files)])]
            audio = self._fit(sp.load_clean_file(path, c.sample_rate), rng, random_crop=True)
            meta = {"text": "", "voice": "", "speed": "", "pitch": "",
                    "source_file": path.relative_to(self.clean_dir).as_posix()}
        try:
            audio = scale_to_level(audio, c.sample_rate, c.speech_level_db)
        except ValueError as err:
            raise SimulationError(f"silent clean speech ({meta}): {err}") from err
        return audio, meta

    def babble_talkers(self) -> list[np.ndarray]:
        """Talker signals for babble noise, built once per process from the seed only.

        Returns
        -------
        Non-silent talker signals: sentences of the ``babble`` pool, or files of the user folder.
        """
        if self._babble is None:
            c = self.config
            rng = np.random.default_rng([self.seed, _BABBLE_TAG])
            if self.clean_dir is None:
                talkers = [self._synth("babble", rng)[0] for _ in range(c.babble_bank_size)]
            else:
                files = sorted(f for fs in self.pool_files.values() for f in fs)
                picks = rng.choice(len(files), size=min(c.babble_bank_size, len(files)),
                                   replace=False)
                talkers = [self._fit(sp.load_clean_file(files[int(k)], c.sample_rate), rng, True)
                           for k in picks]
            self._babble = [t for t in talkers if np.any(t)]
        return self._babble
