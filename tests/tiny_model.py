"""Builds a tiny, randomly initialised model folder that the pretrained interface can load."""

from __future__ import annotations

from pathlib import Path

from speechbrain_alld.inference import write_interface_files
from speechbrain_alld.models.tiny import build_tiny_qwen2_audio, train_tiny_tokenizer

TEXTS = ["Describe and evaluate the quality of the speech. The speech is clean. MOS: 3.4",
         "A/B test: I prefer Speech B."] * 4


def make_model_folder(folder: Path, *, window_seconds: float = 2.0, seed: int = 2,
                      max_new_tokens: int = 6) -> Path:
    """Save a tiny Qwen2-Audio model, its processor and the interface files into ``folder``."""
    tokenizer = train_tiny_tokenizer(TEXTS, vocab_size=400)
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=window_seconds,
                                              seed=seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    write_interface_files(folder, max_new_tokens=max_new_tokens)
    return folder
