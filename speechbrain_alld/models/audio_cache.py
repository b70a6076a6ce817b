"""Audio work done once per clip: log-mel features, a frozen encoder's output, shared clips.

Qwen2-Audio's processor pads every clip to the encoder's window (``padding="max_length"``) and
takes each clip's log-mel maximum on its own, so a clip's features, and a frozen audio encoder's
output for them, do not depend on the batch the clip is in. An SFT run over a fixed corpus
recomputes the same STFTs and encoder passes every epoch (in the tiny miniature, a fifth and a
quarter of a step). :class:`FeatureCache` stands in for the processor's feature extractor,
:func:`cached_encoder` for a frozen ``audio_tower``, and :func:`shared_audio` encodes a batch
made of k copies of the same clips once (ALLD's chosen and rejected responses).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch


class FeatureCache:
    """A feature extractor that remembers its output per waveform (least recently used first out).

    Arguments
    ---------
    extractor: the processor's feature extractor (e.g. ``WhisperFeatureExtractor``).
    max_clips: how many clips to keep (about ``4 * num_mel_bins * window frames`` bytes each:
        200 KB for the tiny 4 s encoder, 1.5 MB for Qwen2-Audio's 30 s window).

    Example
    -------
    >>> from speechbrain_alld.models.tiny import tiny_feature_extractor
    >>> fe = tiny_feature_extractor(window_seconds=1.0, num_mel_bins=16)
    >>> cache = FeatureCache(fe, max_clips=8)
    >>> clips = [np.sin(np.arange(8000, dtype=np.float32) / 7), np.zeros(4000, np.float32)]
    >>> out = cache(clips, sampling_rate=16000, return_attention_mask=True)
    >>> again = cache(clips[::-1], sampling_rate=16000, return_attention_mask=True)
    >>> bool((again["input_features"][0] == out["input_features"][1]).all()), cache.hits
    (True, 2)
    """

    def __init__(self, extractor: Any, max_clips: int) -> None:
        if getattr(extractor, "dither", 0.0):
            raise ValueError("the feature extractor dithers (random noise per call): its "
                             "features cannot be cached; set dither=0.0 or disable the cache")
        self.extractor = extractor
        self.store = LRUStore(max_clips)

    @property
    def hits(self) -> int:
        return self.store.hits

    @property
    def misses(self) -> int:
        return self.store.misses

    def __getattr__(self, name: str) -> Any:
        # Everything but __call__ (fetch_audio, sampling_rate, ...) is the extractor's own.
        return getattr(self.__dict__["extractor"], name)

    def __len__(self) -> int:
        return len(self.store)

    def __call__(self, raw_speech: Any, **kwargs: Any) -> Any:
        from transformers import BatchFeature

        clips = [raw_speech] if isinstance(raw_speech, np.ndarray) and raw_speech.ndim == 1 \
            else list(raw_speech)
        clips = [np.asarray(c, dtype=np.float32) for c in clips]
        if kwargs.get("padding", "max_length") != "max_length":
            raise ValueError("FeatureCache needs padding='max_length' (features independent of "
                             f"the batch), got padding={kwargs['padding']!r}")
        settings = repr(sorted((k, v) for k, v in kwargs.items() if k != "return_tensors"))
        keys = [hashlib.blake2b(c.tobytes(), digest_size=16).digest()
                + f"{c.shape[0]}{settings}".encode() for c in clips]
        uncached = {k: v for k, v in kwargs.items() if k != "return_tensors"}

        def compute(missing: list[int]) -> list[dict[str, np.ndarray]]:
            out = self.extractor([clips[k] for k in missing], return_tensors="np", **uncached)
            return [{name: np.array(v[j]) for name, v in out.items()}
                    for j in range(len(missing))]

        rows = self.store.get_many(keys, compute)
        data = {name: np.stack([r[name] for r in rows]) for name in rows[0]}
        return BatchFeature(data, tensor_type=kwargs.get("return_tensors"))


class LRUStore(OrderedDict):
    """An ordered dict that drops its least recently used entries beyond ``max_items``."""

    def __init__(self, max_items: int) -> None:
        super().__init__()
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.max_items = int(max_items)
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: list[bytes], compute: Callable[[list[int]], list[Any]]
                 ) -> list[Any]:
        """The values of ``keys``; ``compute(positions)`` makes those not stored (one call,
        for the positions in ``keys`` that missed), then the oldest beyond ``max_items`` go."""
        missing = [i for i, key in enumerate(keys) if key not in self]
        if missing:
            for i, value in zip(missing, compute(missing)):
                self[keys[i]] = value
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        for key in keys:
            self.move_to_end(key)
        values = [self[key] for key in keys]
        while len(self) > self.max_items:
            self.popitem(last=False)
        return values


@contextlib.contextmanager
def _replaced_forward(module: torch.nn.Module, make: Callable[[Callable], Callable]
                      ) -> Iterator[None]:
    """While active, ``module.forward`` is ``make(previous forward)``; restored afterwards
    (nested replacements unwind in order)."""
    had = "forward" in module.__dict__
    previous = module.__dict__.get("forward")
    module.forward = make(module.forward)
    try:
        yield
    finally:
        if had:
            module.forward = previous
        else:
            del module.forward  # back to the class's method


def shared_audio(tower: torch.nn.Module, repeats: int) -> Any:
    """While active, ``tower`` encodes the first ``1 / repeats`` of its batch and repeats the
    result (transformers' own merge of audio and text then runs unchanged)."""
    if repeats == 1:
        return contextlib.nullcontext()

    def make(encode: Callable) -> Callable:
        def encode_once(input_features: torch.Tensor, attention_mask: Any = None, **kwargs: Any):
            n = input_features.shape[0]
            if n % repeats:
                raise ValueError(f"audio_repeats={repeats} does not divide {n} clips")
            mask = attention_mask[: n // repeats] if attention_mask is not None else None
            out = encode(input_features[: n // repeats], attention_mask=mask, **kwargs)
            out.last_hidden_state = out.last_hidden_state.repeat(repeats, 1, 1)
            return out
        return encode_once

    return _replaced_forward(tower, make)


def _row_key(*rows: torch.Tensor | None) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for row in rows:
        if row is not None:
            row = row.detach().contiguous().cpu()
            digest.update(str((row.dtype, tuple(row.shape))).encode())
            digest.update(row.view(torch.uint8).numpy().tobytes() if row.dtype == torch.bool
                          else row.numpy().tobytes())
    return digest.digest()


def cached_encoder(tower: torch.nn.Module, store: LRUStore | None) -> Any:
    """While active, a frozen ``tower`` answers each clip it has encoded before from ``store``
    (keyed by the clip's features and attention mask) and encodes only the others, without
    gradients. ``store=None``: a no-op.

    Example
    -------
    >>> from transformers import Qwen2AudioEncoder, Qwen2AudioEncoderConfig
    >>> tower = Qwen2AudioEncoder(Qwen2AudioEncoderConfig(
    ...     num_mel_bins=8, d_model=16, encoder_layers=1, encoder_attention_heads=2,
    ...     encoder_ffn_dim=32, max_source_positions=10)).requires_grad_(False)
    >>> feats = torch.randn(3, 8, 20, generator=torch.Generator().manual_seed(0))
    >>> store = LRUStore(8)
    >>> with cached_encoder(tower, store):
    ...     first = tower(feats[:2]).last_hidden_state
    ...     both = tower(feats).last_hidden_state
    >>> # float32 rows differ by ~1e-7 between batch shapes; a wrong cache entry by ~1
    >>> torch.allclose(both, tower(feats).last_hidden_state, atol=1e-5), (store.misses, store.hits)
    (True, (3, 2))
    """
    if store is None:
        return contextlib.nullcontext()
    if any(p.requires_grad for p in tower.parameters()):
        raise ValueError("only a frozen audio encoder's output can be cached (train_encoder="
                         "False); this one has trainable parameters")

    def make(encode: Callable) -> Callable:
        def encode_cached(input_features: torch.Tensor, attention_mask: Any = None,
                          **kwargs: Any):
            n = input_features.shape[0]
            keys = [_row_key(input_features[i], None if attention_mask is None
                             else attention_mask[i]) for i in range(n)]
            def compute(missing: list[int]) -> list[torch.Tensor]:
                idx = torch.tensor(missing, device=input_features.device)
                mask = attention_mask[idx] if attention_mask is not None else None
                with torch.no_grad():
                    out = encode(input_features[idx], attention_mask=mask, **kwargs)
                return list(out.last_hidden_state.detach().unbind(0))

            from transformers.modeling_outputs import BaseModelOutput

            return BaseModelOutput(last_hidden_state=torch.stack(store.get_many(keys, compute)))
        return encode_cached

    return _replaced_forward(tower, make)
