"""A SpeechBrain pretrained interface for descriptive speech-quality evaluation.

    from speechbrain_alld.inference import DescriptiveQualityEvaluator

    evaluator = DescriptiveQualityEvaluator.from_hparams(source="results/.../alld/model",
                                                         savedir="pretrained/alld")
    result = evaluator.describe_file("clip.wav")      # .text, .mos, .dimensions, .parsed
    verdict = evaluator.compare_files("a.wav", "b.wav")  # both orders, agreement reported

The model folder holds the Hugging Face files written by the ALLD training plus a
``hyperparams.yaml`` (see :func:`write_interface_files`). ``from_hparams`` passes its ``source``
(a local folder or a hub id) on as ``model_source``, and the model is loaded from there with
transformers (a hub id is downloaded into the Hugging Face cache). ``custom_interface.py`` next
to it makes a local folder loadable with ``speechbrain.inference.interfaces.foreign_class`` too
(give ``savedir``: the folder is found through the fetched ``hyperparams.yaml``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch
from speechbrain.inference.interfaces import Pretrained

from speechbrain_alld.describe.prompts import DEFAULT_INSTRUCTIONS
from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.parsing import parse_dimensions, parse_mos, parse_verdict

LONG_AUDIO_POLICIES = ("chunk", "truncate", "error")
SILENCE_PEAK = 1e-4  # a peak below this (about -80 dBFS) counts as silence


class AudioInputError(ValueError):
    """An input that cannot be evaluated (unreadable, empty, silent, non-finite...)."""


@dataclass
class QualityDescription:
    """One evaluated clip: the generated text and what could be read from it."""

    text: str
    mos: float | None
    dimensions: dict[str, float] = field(default_factory=dict)
    parsed: bool = False
    source: str = ""
    chunks: list[QualityDescription] = field(default_factory=list)


@dataclass
class Comparison:
    """An A/B verdict ("A", "B", "tie", or None when it could not be read or orders disagree)."""

    verdict: str | None
    text: str
    agreement: bool | None = None  # both orders agree (None without debiasing)
    texts: list[str] = field(default_factory=list)
    verdicts: list[str | None] = field(default_factory=list)
    note: str = ""


class DescriptiveQualityEvaluator(Pretrained):
    """Describe and score speech quality with an ALLD-trained audio LLM.

    Hyperparameters (``hyperparams.yaml``): ``model_source`` (set by :meth:`from_hparams`),
    ``max_new_tokens``, ``instructions`` (per task, with ``<audio>``
    placeholders), ``long_audio`` (``chunk``: evaluate each window and average the MOS,
    ``truncate``: keep the first window, ``error``), ``min_chunk_seconds``, ``dtype``.
    """

    HPARAMS_NEEDED = ["max_new_tokens", "long_audio"]
    MODULES_NEEDED: list[str] = []

    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml", **kwargs):
        """Load from a folder or hub id holding ``hyperparams.yaml`` and the model files."""
        overrides = dict(kwargs.pop("overrides", None) or {})
        overrides.setdefault("model_source", str(source))
        return super().from_hparams(source, hparams_file, overrides=overrides, **kwargs)

    def __init__(self, modules=None, hparams=None, run_opts=None, freeze_params=True):
        source = hparams.get("model_source")
        if source is None:  # foreign_class: follow the fetched hyperparams.yaml symlink
            savedir = hparams.get("savedir")
            if savedir is None:
                raise ValueError("cannot locate the model: give savedir (or override "
                                 "model_source with the model folder)")
            source = (Path(savedir) / "hyperparams.yaml").resolve().parent
        policy = AudioLLM.from_pretrained(source, dtype=hparams.get("dtype", "auto"),
                                          finetune="frozen", train_projector=False)
        modules = {**(modules or {}), "policy": policy}
        super().__init__(modules=modules, hparams=hparams, run_opts=run_opts,
                         freeze_params=freeze_params)
        if self.hparams.long_audio not in LONG_AUDIO_POLICIES:
            raise ValueError(f"long_audio must be one of {LONG_AUDIO_POLICIES}, got "
                             f"{self.hparams.long_audio!r}")
        self.policy = policy
        self.sample_rate = policy.sampling_rate
        self.window = policy.window_seconds
        self.instructions = {**DEFAULT_INSTRUCTIONS, **dict(getattr(self.hparams,
                                                                    "instructions", {}) or {})}

    # ------------------------------------------------------------------ inputs
    def load_waveform(self, source: Any, sample_rate: int | None = None,
                      name: str | None = None) -> torch.Tensor:
        """A checked mono waveform at the model's rate from a path, tensor or array."""
        import torchaudio

        from speechbrain_alld.dataset import load_waveform

        label = name or (str(source) if isinstance(source, (str, Path)) else "<waveform>")
        if isinstance(source, (str, Path)):
            if not Path(source).is_file():
                raise AudioInputError(f"{label}: file not found")
            try:
                wav = load_waveform(str(source), self.sample_rate)
            except ValueError as err:
                raise AudioInputError(f"{label}: {err}") from None
        else:
            if sample_rate is None:
                raise AudioInputError(f"{label}: give sample_rate with a waveform")
            wav = torch.as_tensor(np.asarray(source, dtype=np.float32))
            if wav.ndim == 2:  # [channels, time] or [time, channels]: mix to mono
                wav = wav.mean(0) if wav.shape[0] < wav.shape[1] else wav.mean(1)
            if wav.ndim != 1:
                raise AudioInputError(f"{label}: expected mono or stereo audio, got shape "
                                      f"{tuple(wav.shape)}")
            if wav.numel() == 0:
                raise AudioInputError(f"{label}: empty waveform")
            if not torch.isfinite(wav).all():
                raise AudioInputError(f"{label}: waveform contains NaN or infinite samples")
            if sample_rate != self.sample_rate:
                wav = torchaudio.functional.resample(wav, sample_rate, self.sample_rate)
        if not torch.isfinite(wav).all():
            raise AudioInputError(f"{label}: audio contains NaN or infinite samples")
        if float(wav.abs().max()) < SILENCE_PEAK:
            raise AudioInputError(f"{label}: audio is silent (peak below {SILENCE_PEAK:g})")
        return wav

    def _windows(self, wav: torch.Tensor, label: str) -> list[torch.Tensor]:
        n = int(round(self.window * self.sample_rate))
        if wav.numel() <= n:
            return [wav]
        policy = self.hparams.long_audio
        if policy == "error":
            raise AudioInputError(f"{label}: {wav.numel() / self.sample_rate:.1f} s is longer "
                                  f"than the model's {self.window:g} s window (long_audio: "
                                  "error; use chunk or truncate)")
        if policy == "truncate":
            return [wav[:n]]
        chunks = [wav[i:i + n] for i in range(0, wav.numel(), n)]
        min_len = int(getattr(self.hparams, "min_chunk_seconds", 1.0) * self.sample_rate)
        if len(chunks) > 1 and chunks[-1].numel() < min_len:
            chunks = chunks[:-1]  # a short tail says little; the rest covers the clip
        return chunks

    # ------------------------------------------------------------------ MOS task
    def describe_file(self, path: str | Path) -> QualityDescription:
        """Describe one audio file."""
        return self.describe_batch([path])[0]

    @torch.no_grad()
    def describe_batch(self, inputs: Sequence[Any], sample_rate: int | None = None
                       ) -> list[QualityDescription]:
        """Describe a batch of files or waveforms with one ``generate`` call.

        Waveforms need ``sample_rate``. Clips longer than the model window follow
        ``long_audio``; with ``chunk`` every window is generated in the same call and the MOS
        is the mean of the windows' parsed MOS.
        """
        labels = [str(x) if isinstance(x, (str, Path)) else f"<waveform {i}>"
                  for i, x in enumerate(inputs)]
        waves = [self.load_waveform(x, sample_rate, name=lab) for x, lab in zip(inputs, labels)]
        windows = [self._windows(w, lab) for w, lab in zip(waves, labels)]
        flat = [[c] for ws in windows for c in ws]
        texts = self.policy.generate(flat, [self.instructions["mos"]] * len(flat),
                                     max_new_tokens=self.hparams.max_new_tokens)
        results, k = [], 0
        for lab, ws in zip(labels, windows):
            parts = [self._description(texts[k + j], lab) for j in range(len(ws))]
            k += len(ws)
            if len(parts) == 1:
                results.append(parts[0])
                continue
            found = [p.mos for p in parts if p.mos is not None]
            mos = float(np.mean(found)) if found else None
            text = " ".join(f"[{j * self.window:g}-{(j + 1) * self.window:g} s] {p.text}"
                            for j, p in enumerate(parts))
            results.append(QualityDescription(text, mos, {}, mos is not None, lab, parts))
        return results

    @staticmethod
    def _description(text: str, source: str) -> QualityDescription:
        mos = parse_mos(text)
        return QualityDescription(text, mos, parse_dimensions(text), mos is not None, source)

    # ------------------------------------------------------------------ A/B task
    @torch.no_grad()
    def compare_files(self, a: Any, b: Any, debias: bool = True,
                      sample_rate: int | None = None) -> Comparison:
        """A/B verdict for two clips; with ``debias`` both orders are run and must agree."""
        wa = self._windows(self.load_waveform(a, sample_rate), str(a))[0]
        wb = self._windows(self.load_waveform(b, sample_rate), str(b))[0]
        pairs = [[wa, wb], [wb, wa]] if debias else [[wa, wb]]
        texts = self.policy.generate(pairs, [self.instructions["ab"]] * len(pairs),
                                     max_new_tokens=self.hparams.max_new_tokens)
        return combine_orders(texts) if debias else Comparison(
            parse_verdict(texts[0]), texts[0], None, texts, [parse_verdict(texts[0])])


def combine_orders(texts: Sequence[str]) -> Comparison:
    """The verdict from an A-B text and a B-A text: given only when both orders agree."""
    verdicts = [parse_verdict(t) for t in texts]
    swapped = {"A": "B", "B": "A", "tie": "tie"}.get(verdicts[1]) if verdicts[1] else None
    if verdicts[0] is None or swapped is None:
        which = "both orders" if verdicts[0] is None and swapped is None else "one order"
        return Comparison(None, texts[0], None, list(texts), verdicts,
                          note=f"the verdict could not be read from {which}")
    if verdicts[0] == swapped:
        return Comparison(verdicts[0], texts[0], True, list(texts), verdicts)
    return Comparison(None, texts[0], False, list(texts), verdicts,
                      note=f"the orders disagree: A-B says {verdicts[0]}, B-A says {swapped} "
                           "(in the A-B naming); no verdict is picked")


#: The ``hyperparams.yaml`` template written into model folders; it ships inside the package.
INTERFACE_HPARAMS = "hparams/DescriptiveQualityEvaluator.yaml"

CUSTOM_INTERFACE = '''"""foreign_class entry point (the interface is speechbrain_alld.inference)."""

from speechbrain_alld.inference import DescriptiveQualityEvaluator as CustomInterface  # noqa: F401
'''


def interface_hparams_template() -> str:
    """The text of the packaged ``hyperparams.yaml`` template (:data:`INTERFACE_HPARAMS`)."""
    return files("speechbrain_alld").joinpath(INTERFACE_HPARAMS).read_text(encoding="utf-8")


def _set_yaml_value(text: str, key: str, value: str) -> str:
    """``text`` with the value of the one ``key:`` line (at any indentation) set to ``value``.

    ``value`` must already be a YAML scalar (a number, a plain word or a JSON string); a
    trailing comment on the line is kept.
    """
    pattern = re.compile(rf"^([ \t]*{re.escape(key)}:[ \t]+)\S.*?(?=[ \t]+#|$)", re.MULTILINE)
    out, n = pattern.subn(lambda m: m.group(1) + value, text)
    if n != 1:
        raise ValueError(f"the interface template has {n} '{key}:' lines, expected one")
    return out


def write_interface_files(folder: str | Path, *, max_new_tokens: int = 256,
                          long_audio: str = "chunk",
                          instructions: dict[str, str] | None = None) -> Path:
    """Write ``hyperparams.yaml`` and ``custom_interface.py`` into a saved model folder.

    ``hyperparams.yaml`` is the packaged template with ``max_new_tokens``, ``long_audio`` and
    the instructions (JSON-quoted, so any text stays one YAML string) filled in.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no Hugging Face model (config.json missing)")
    if long_audio not in LONG_AUDIO_POLICIES:
        raise ValueError(f"long_audio must be one of {LONG_AUDIO_POLICIES}, got {long_audio!r}")
    ins = {**DEFAULT_INSTRUCTIONS, **(instructions or {})}
    text = interface_hparams_template()
    for key, value in (("max_new_tokens", str(max_new_tokens)), ("long_audio", long_audio),
                       ("mos", json.dumps(ins["mos"])), ("ab", json.dumps(ins["ab"]))):
        text = _set_yaml_value(text, key, value)
    (folder / "hyperparams.yaml").write_text(text, encoding="utf-8")
    (folder / "custom_interface.py").write_text(CUSTOM_INTERFACE, encoding="utf-8")
    return folder / "hyperparams.yaml"
