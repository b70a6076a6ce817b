"""Tiny models of the real classes, built offline from config (tests and the embedded demo).

The tokenizer is a byte-level BPE trained with ``tokenizers`` on the caller's texts, with the
Qwen2 chat special tokens and digits split one per token (so MOS values are spelled digit by
digit), wrapped as a transformers fast tokenizer with a ChatML chat template.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

#: Qwen2 / Qwen2-Audio special tokens, padding first.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>",
)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'audio' %}Audio {{ loop.index }}: "
    "<|audio_bos|><|AUDIO|><|audio_eos|>\n{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on ``texts`` (takes well under a second)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHATML_TEMPLATE,
        model_max_length=32768,
    )


def build_tiny_causal_lm(
    tokenizer, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
    intermediate_size: int | None = None, seed: int = 0,
):
    """A randomly initialised ``Qwen2ForCausalLM`` sized for CPU tests, matching ``tokenizer``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def tiny_feature_extractor(window_seconds: float = 4.0, num_mel_bins: int = 128):
    """A Whisper feature extractor whose window is ``window_seconds`` (100 mel frames per s)."""
    from transformers import WhisperFeatureExtractor

    frames = int(round(window_seconds * 100))
    if frames % 2 or abs(frames / 100 - window_seconds) > 1e-9:
        raise ValueError(f"window_seconds must be a multiple of 0.02 s, got {window_seconds}")
    feature_extractor = WhisperFeatureExtractor(
        feature_size=num_mel_bins, sampling_rate=16000, hop_length=160, n_fft=400,
        chunk_length=int(window_seconds) if float(window_seconds).is_integer() else window_seconds,
    )
    # Whisper derives these from chunk_length; keep them integral for sub-second windows.
    feature_extractor.n_samples = int(round(window_seconds * 16000))
    feature_extractor.nb_max_frames = feature_extractor.n_samples // 160
    return feature_extractor


def tiny_audio_encoder_config(window_seconds: float = 4.0, audio_dim: int = 64,
                              audio_layers: int = 2, num_heads: int = 4,
                              num_mel_bins: int = 128):
    """A ``Qwen2AudioEncoderConfig`` whose window is ``window_seconds`` (``window * 25`` tokens)."""
    from transformers import Qwen2AudioEncoderConfig

    return Qwen2AudioEncoderConfig(
        num_mel_bins=num_mel_bins, encoder_layers=audio_layers,
        encoder_attention_heads=num_heads, encoder_ffn_dim=2 * audio_dim, d_model=audio_dim,
        max_source_positions=int(round(window_seconds * 100)) // 2,
    )


def build_tiny_qwen2_audio(
    tokenizer,
    *,
    window_seconds: float = 4.0,
    audio_dim: int = 64,
    audio_layers: int = 2,
    text_dim: int = 64,
    text_layers: int = 2,
    num_heads: int = 4,
    num_mel_bins: int = 128,
    seed: int = 0,
):
    """A randomly initialised ``Qwen2AudioForConditionalGeneration`` and its processor.

    The Whisper feature extractor's window equals the encoder's: ``max_source_positions`` is
    ``window_seconds * 50`` (the mel length the encoder insists on is twice that, at 100 frames
    per second), so a 4 s window gives 100 audio tokens per clip.
    """
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
    )

    feature_extractor = tiny_feature_extractor(window_seconds, num_mel_bins)
    processor = Qwen2AudioProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    config = Qwen2AudioConfig(
        audio_config=tiny_audio_encoder_config(window_seconds, audio_dim, audio_layers,
                                               num_heads, num_mel_bins),
        text_config=Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=text_dim, intermediate_size=2 * text_dim,
            num_hidden_layers=text_layers, num_attention_heads=num_heads,
            num_key_value_heads=num_heads, max_position_embeddings=4096,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None, tie_word_embeddings=False,
        ),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    return Qwen2AudioForConditionalGeneration(config), processor
