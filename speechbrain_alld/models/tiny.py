"""Tiny models of the real classes, built offline from config (tests and the embedded demo).

The tokenizer is a byte-level BPE trained with ``tokenizers`` on the caller's texts, with the
Qwen2 chat special tokens and digits split one per token (so MOS values are spelled digit by
digit), wrapped as a transformers fast tokenizer with a ChatML chat template.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from speechbrain.utils.logger import get_logger
from tqdm.auto import tqdm

from speechbrain_alld.dataset import load_descriptions
from speechbrain_alld.losses import sft_loss
from speechbrain_alld.models.expert_reference import ExpertReference, check_same_tokenizer

logger = get_logger(__name__)

#: Qwen2 / Qwen2-Audio special tokens, padding first.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>",
)

#: Qwen2-Audio-7B-Instruct's chat template as its hub files ship it (not transformers' newer,
#: more lenient default): an audio part is recognised only by an ``audio`` or ``audio_url`` key,
#: and text parts are written exactly as given. Text-only chats render as plain ChatML, so the
#: tiny tokenizer (and the tiny expert) use it too.
HUB_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: The sampling defaults Qwen2-Audio-7B-Instruct's ``generation_config.json`` carries, which
#: ``generate()`` applies to whatever its caller leaves unset.
INSTRUCT_GENERATION_DEFAULTS = {"do_sample": True, "top_k": 20, "top_p": 0.5,
                                "temperature": 0.7, "repetition_penalty": 1.1}


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
        chat_template=HUB_AUDIO_CHAT_TEMPLATE,
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
    like_instruct: bool = True,
):
    """A randomly initialised ``Qwen2AudioForConditionalGeneration`` and its processor.

    With ``like_instruct`` (the default) it is configured like Qwen2-Audio-7B-Instruct where
    the real path can break: the hub chat template (:data:`HUB_AUDIO_CHAT_TEMPLATE`), the
    sampling defaults of its generation config (:data:`INSTRUCT_GENERATION_DEFAULTS`) and its
    EOS list (``<|endoftext|>`` and ``<|im_end|>``).

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
    processor = Qwen2AudioProcessor(
        feature_extractor=feature_extractor, tokenizer=tokenizer,
        chat_template=HUB_AUDIO_CHAT_TEMPLATE if like_instruct else None)
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
    model = Qwen2AudioForConditionalGeneration(config)
    if like_instruct:
        from transformers import GenerationConfig

        ids = [tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>")]
        model.generation_config = GenerationConfig(
            **INSTRUCT_GENERATION_DEFAULTS, eos_token_id=ids,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    return model, processor


def train_text_expert(
    reference: ExpertReference,
    items: Mapping[str, Mapping[str, Any]],
    *,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Teach a (tiny) text LM to write y_t from x_t, so it is a real expert for this corpus.

    Trains on every (prompt, variant text) of ``items`` with the response-only cross-entropy;
    returns the loss per step.
    """
    pairs = [(it["prompt"], text) for it in items.values() for text in it["responses"].values()]
    if not pairs:
        raise ValueError("no (prompt, response) pairs to train the expert on")
    model = reference.model
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in tqdm(range(steps), desc="train expert LM", disable=not progress):
        idx = torch.randint(len(pairs), (batch_size,), generator=gen).tolist()
        batch = reference.prepare_batch([pairs[i][0] for i in idx], [pairs[i][1] for i in idx])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = sft_loss(logits, batch["labels"])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        losses.append(float(loss.detach()))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return losses


def init_tiny_models(
    descriptions_folder: str | Path,
    train_split: str,
    out_folder: str | Path,
    *,
    tasks: Sequence[str] = ("mos", "ab"),
    vocab_size: int = 512,
    window_seconds: float = 4.0,
    policy_config: Mapping[str, Any] | None = None,
    expert_config: Mapping[str, Any] | None = None,
    expert_steps: int = 300,
    expert_batch_size: int = 16,
    expert_lr: float = 1e-3,
    pretrained_policy: str | Path | None = None,
    expert_from: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the embedded default's models: a tiny Qwen2-Audio policy, its tokenizer, and a
    tiny Qwen2 expert trained briefly on (x_t -> y_t).

    Without ``pretrained_policy`` the tokenizer is trained on this corpus's texts and the
    policy is randomly initialised (written to ``policy_init`` under ``out_folder``); with it
    (a pretrained tiny Qwen2-Audio folder, e.g. :func:`speechbrain_alld.pretraining.
    shipped_model`) that model is copied to ``policy_init`` and its tokenizer is shared with
    the expert, as Qwen2-Audio shares Qwen2's. The expert is written to ``expert`` as a
    Hugging Face folder, so every later stage loads both exactly like real checkpoints; returns
    their paths and the expert's first and last training loss.

    ``expert_from`` (an expert folder this function wrote before, e.g. a table warm-up's kept
    ``save/tiny/expert``) is copied instead of training the expert again (minutes on two
    cores), after checking that it shares the policy's tokenizer; the returned losses are then
    None.
    """
    out = Path(out_folder)
    paths = {"policy": out / "policy_init", "expert": out / "expert"}
    items = load_descriptions(descriptions_folder, train_split, tasks)
    if pretrained_policy is not None:
        from transformers import AutoTokenizer

        shutil.copytree(pretrained_policy, paths["policy"], dirs_exist_ok=True)
        tokenizer = AutoTokenizer.from_pretrained(str(paths["policy"]))
    else:
        texts = [it["prompt"] for it in items.values()]
        texts += [it["instruction"] for it in items.values()]
        texts += [t for it in items.values() for t in it["responses"].values()]
        tokenizer = train_tiny_tokenizer(texts, vocab_size=vocab_size)
        model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=window_seconds,
                                                  seed=seed, **dict(policy_config or {}))
        model.save_pretrained(paths["policy"])
        processor.save_pretrained(paths["policy"])
    if expert_from is not None:
        from transformers import AutoTokenizer

        if not (Path(expert_from) / "config.json").is_file():
            raise FileNotFoundError(f"tiny.expert_from: {expert_from} holds no expert model "
                                    "(config.json)")
        check_same_tokenizer(tokenizer, AutoTokenizer.from_pretrained(str(expert_from)))
        shutil.copytree(expert_from, paths["expert"], dirs_exist_ok=True)
        logger.info("Tiny expert LM copied from %s", expert_from)
        return {**paths, "expert_loss_first": None, "expert_loss_last": None,
                "expert_from": str(expert_from), "vocab_size": len(tokenizer)}
    reference = ExpertReference(build_tiny_causal_lm(tokenizer, seed=seed + 1,
                                                     **dict(expert_config or {})), tokenizer)
    losses = train_text_expert(reference, items, steps=expert_steps,
                               batch_size=expert_batch_size, lr=expert_lr, seed=seed,
                               progress=progress)
    reference.model.save_pretrained(paths["expert"])
    tokenizer.save_pretrained(paths["expert"])
    logger.info("Tiny expert LM trained: loss %.3f -> %.3f", losses[0], losses[-1])
    return {**paths, "expert_loss_first": losses[0],
            "expert_loss_last": losses[-1], "vocab_size": len(tokenizer)}
