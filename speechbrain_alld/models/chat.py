"""Chat content for Qwen2-Audio: instructions with ``<audio>`` placeholders as the chat
template's text and audio parts, and waveforms as the processor takes them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

AUDIO_PLACEHOLDER = "<audio>"  # as in the instructions of speechbrain_alld.describe.prompts


def instruction_to_content(instruction: str, n_audios: int) -> list[dict[str, str]]:
    """Split an instruction with ``<audio>`` placeholders into chat content parts.

    Each audio part carries an ``audio_url`` (a placeholder: the waveforms go to the processor
    separately), because Qwen2-Audio's hub chat template recognises an audio part only by an
    ``audio`` or ``audio_url`` key. The templates write an audio part as ``Audio N: <audio
    tokens>`` plus a newline, so text before an audio ends with one space and text after it
    starts without one.

    Arguments
    ---------
    instruction : str
        The instruction x_a with one ``<audio>`` per clip.
    n_audios : int
        The number of clips.

    Returns
    -------
    list[dict[str, str]]
        Chat content parts, in order.

    Example
    -------
    >>> parts = instruction_to_content("Compare <audio> and <audio> please.", 2)
    >>> [p.get("text", p.get("audio_url")) for p in parts]
    ['Compare ', 'audio_1', 'and ', 'audio_2', 'please.']
    """
    pieces = instruction.split(AUDIO_PLACEHOLDER)
    if len(pieces) - 1 != n_audios:
        raise ValueError(f"instruction has {len(pieces) - 1} {AUDIO_PLACEHOLDER} placeholder(s) "
                         f"for {n_audios} audio(s): {instruction!r}")
    content: list[dict[str, str]] = []
    for k, piece in enumerate(pieces):
        text = piece.lstrip() if k > 0 else piece
        text = text.rstrip() + " " if k < n_audios else text.rstrip()
        if text.strip():
            content.append({"type": "text", "text": text})
        if k < n_audios:
            content.append({"type": "audio", "audio_url": f"audio_{k + 1}"})
    return content


def waveform_array(wav: Any) -> np.ndarray:
    """A mono waveform (tensor, array or list) as a float32 numpy array; other shapes refused.

    Example
    -------
    >>> waveform_array([0.5, -0.5]).dtype
    dtype('float32')
    """
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected a mono waveform [samples], got shape {wav.shape}")
    return wav
