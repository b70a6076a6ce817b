"""The regression baseline: the audio LLM's encoder + mean pooling + a MOS/dimension head.

The paper compares ALLD with MOS predictors that regress the ratings from a speech encoder.
:class:`RegressionBaseline` uses the *same* encoder class and size as the audio LLM (Qwen2-Audio's
Whisper-style ``audio_tower``): random-init from config for the tiny runs, or the pretrained
tower of a Qwen2-Audio checkpoint, then mean-pools the frames that hold audio and predicts MOS and
the four dimensions with a small MLP.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechbrain_alld.models.tiny import tiny_audio_encoder_config, tiny_feature_extractor
from speechbrain_alld.ratings import DIMENSIONS

#: The rating columns the head predicts, in output order.
TARGETS: tuple[str, ...] = ("mos", *DIMENSIONS)


class RegressionBaseline(torch.nn.Module):
    """Audio encoder -> masked mean pooling -> MLP -> ``[B, len(targets)]`` ratings.

    Arguments
    ---------
    encoder: a ``Qwen2AudioEncoder``.
    feature_extractor: its Whisper feature extractor (the window must match the encoder's).
    hidden: width of the head's hidden layer.
    targets: the rating names predicted (default MOS + noi/col/dis/loud).
    """

    def __init__(self, encoder: Any, feature_extractor: Any, hidden: int = 128,
                 targets: Sequence[str] = TARGETS, dropout: float = 0.1) -> None:
        super().__init__()
        fe = feature_extractor
        fe.n_samples = int(round(fe.n_samples))
        fe.nb_max_frames = fe.n_samples // fe.hop_length
        want = encoder.config.max_source_positions * 2
        if fe.nb_max_frames != want:
            raise ValueError(f"the feature extractor's window ({fe.nb_max_frames} frames) differs "
                             f"from the encoder's ({want} frames)")
        self.encoder = encoder
        self.feature_extractor = fe
        self.sampling_rate = int(fe.sampling_rate)
        self.targets = tuple(targets)
        dim = encoder.config.d_model
        self.head = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, len(self.targets)))
        # Start at the middle of the 1..5 scale, so early steps learn the spread, not the offset.
        torch.nn.init.zeros_(self.head[-1].weight)
        torch.nn.init.constant_(self.head[-1].bias, 3.0)

    @classmethod
    def from_config(cls, *, window_seconds: float = 4.0, audio_dim: int = 64,
                    audio_layers: int = 2, num_heads: int = 4, num_mel_bins: int = 128,
                    hidden: int = 128, seed: int = 0, **kwargs: Any) -> RegressionBaseline:
        """A random-init encoder of the tiny audio LLM's size (same knobs as ``tiny_policy``)."""
        from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

        torch.manual_seed(seed)
        encoder = Qwen2AudioEncoder(tiny_audio_encoder_config(
            window_seconds, audio_dim, audio_layers, num_heads, num_mel_bins))
        return cls(encoder, tiny_feature_extractor(window_seconds, num_mel_bins), hidden=hidden,
                   **kwargs)

    @classmethod
    def from_qwen2_audio(cls, source: str | Path, *, hidden: int = 128, dtype: str = "auto",
                         **kwargs: Any) -> RegressionBaseline:
        """The pretrained ``audio_tower`` of a Qwen2-Audio folder or hub id, plus a new head.

        Loads the whole checkpoint once and keeps only the encoder (for the 7B model that is
        about 0.6B of its 8.4B parameters).
        """
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        from speechbrain_alld.hub import resolve_dtype

        model = Qwen2AudioForConditionalGeneration.from_pretrained(
            str(source), dtype=resolve_dtype(dtype))
        processor = AutoProcessor.from_pretrained(str(source))
        encoder = model.model.audio_tower if hasattr(model, "model") and hasattr(
            model.model, "audio_tower") else model.audio_tower
        return cls(encoder.float(), processor.feature_extractor, hidden=hidden, **kwargs)

    def features(self, wav: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, int]:
        """Log-mel features of one mono clip, padded/trimmed to the window, and its frame count.

        Clips longer than the window are cut to it (the encoder has a fixed window).
        """
        audio = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
        enc = self.feature_extractor(audio.astype(np.float32), sampling_rate=self.sampling_rate,
                                     padding="max_length", truncation=True,
                                     return_attention_mask=True, return_tensors="pt")
        return enc["input_features"][0], int(enc["attention_mask"][0].sum())

    def forward(self, features: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        """``[B, mel, T]`` features and ``[B]`` valid frame counts -> ``[B, K]`` ratings."""
        hidden = self.encoder(features.to(self.encoder.conv1.weight.dtype)).last_hidden_state
        _, n_out = self.encoder._get_feat_extract_output_lengths(n_frames.long())
        n_out = n_out.clamp(min=1, max=hidden.shape[1]).to(hidden.device)
        mask = (torch.arange(hidden.shape[1], device=hidden.device)[None, :]
                < n_out[:, None]).to(hidden.dtype)
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.head(pooled.float())


def build_regression_model(source: str | Path | None = None, **kwargs: Any) -> RegressionBaseline:
    """``RegressionBaseline.from_qwen2_audio(source)`` when a source is given, else the tiny
    random-init encoder of ``from_config`` (the YAML entry point; unused knobs are ignored)."""
    if source is None:
        return RegressionBaseline.from_config(**kwargs)
    keep = {k: kwargs[k] for k in ("hidden", "dropout", "targets") if k in kwargs}
    return RegressionBaseline.from_qwen2_audio(source, **keep)
