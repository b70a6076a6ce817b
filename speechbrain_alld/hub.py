"""Loading helpers shared by every stage that touches Hugging Face models.

A foundation module (like :mod:`speechbrain_alld.jsonl_store`): it imports nothing else from the
package, so the description stage and the model modules can both use it without importing each
other.

- :func:`resolve_dtype`: dtype names from the hparams (``"bf16"``, ``"float32"``...) to torch.
- :func:`hub_offline`: whether ``HF_HUB_OFFLINE`` asks for local files only.
- :func:`text_chat_prompt`: a text-only chat (optional system message + one user message) through
  a tokenizer's chat template, ready for generation.
"""

from __future__ import annotations

import os
from typing import Any

import torch

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | str | None:
    """The torch dtype a name stands for; ``"auto"``, ``None`` and torch dtypes pass through.

    Arguments
    ---------
    dtype : str | torch.dtype | None
        ``"float32"``/``"fp32"``, ``"float16"``/``"fp16"``, ``"bfloat16"``/``"bf16"``,
        ``"auto"``, ``None`` or a torch dtype.

    Returns
    -------
    torch.dtype | str | None
        What ``from_pretrained(dtype=...)`` takes.

    Raises
    ------
    ValueError
        For any other name.

    Example
    -------
    >>> resolve_dtype("bf16")
    torch.bfloat16
    >>> resolve_dtype("auto"), resolve_dtype(None), resolve_dtype(torch.float16)
    ('auto', None, torch.float16)
    >>> resolve_dtype("float8")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown dtype 'float8'; use one of ['bf16', ...] or 'auto'
    """
    if dtype is None or isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)} or 'auto'") \
            from None


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for local files only (no hub look-ups).

    Returns
    -------
    bool
        ``False`` when the variable is unset, empty, ``"0"``, ``"false"`` or ``"False"``;
        ``True`` otherwise.

    Example
    -------
    >>> import os
    >>> saved = os.environ.get("HF_HUB_OFFLINE")
    >>> os.environ["HF_HUB_OFFLINE"] = "1"
    >>> hub_offline()
    True
    >>> os.environ["HF_HUB_OFFLINE"] = "0"
    >>> hub_offline()
    False
    >>> _ = os.environ.pop("HF_HUB_OFFLINE") if saved is None else os.environ.update(
    ...     HF_HUB_OFFLINE=saved)
    """
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def text_chat_prompt(tokenizer: Any, prompt: str, system_prompt: str | None = None) -> str:
    """A text-only chat prompt through ``tokenizer``'s chat template, ready for generation.

    Arguments
    ---------
    tokenizer : Any
        A tokenizer (or processor) with ``apply_chat_template``.
    prompt : str
        The user message.
    system_prompt : str | None
        The system message; ``None`` or empty for none.

    Returns
    -------
    str
        The chat text, ending with the assistant turn's opening (``add_generation_prompt``).

    Example
    -------
    >>> class ToyTokenizer:
    ...     def apply_chat_template(self, messages, tokenize, add_generation_prompt):
    ...         turns = "".join(f"<{m['role']}>{m['content']}" for m in messages)
    ...         return turns + ("<assistant>" if add_generation_prompt else "")
    >>> text_chat_prompt(ToyTokenizer(), "Describe the clip.", "Be brief.")
    '<system>Be brief.<user>Describe the clip.<assistant>'
    >>> text_chat_prompt(ToyTokenizer(), "Describe the clip.")
    '<user>Describe the clip.<assistant>'
    """
    messages = [{"role": "user", "content": prompt}]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


#: ChatML's end of turn: what Qwen2 / Qwen2-Audio chat models close every turn with.
END_OF_TURN = "<|im_end|>"


def end_of_turn_token(tokenizer: Any) -> str:
    """The token a response ends with: ChatML's ``<|im_end|>`` when the vocabulary has it (a
    base checkpoint's tokenizer may name ``<|endoftext|>`` as its EOS while the chat template
    closes turns with ``<|im_end|>``), else the tokenizer's EOS token.

    Arguments
    ---------
    tokenizer : Any
        A transformers tokenizer.

    Returns
    -------
    str
        The end-of-turn token; training targets, reference scores and generation all use it.

    Example
    -------
    >>> class Tok:
    ...     eos_token = "<|endoftext|>"
    ...     def get_vocab(self):
    ...         return {"<|endoftext|>": 0, "<|im_end|>": 1}
    >>> end_of_turn_token(Tok())
    '<|im_end|>'
    >>> Tok.get_vocab = lambda self: {"</s>": 0}
    >>> Tok.eos_token = "</s>"
    >>> end_of_turn_token(Tok())
    '</s>'
    """
    if END_OF_TURN in tokenizer.get_vocab():
        return END_OF_TURN
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has neither <|im_end|> nor an EOS token: a response "
                         "could never end")
    return tokenizer.eos_token


def stop_token_ids(tokenizer: Any, *eos_ids: int | list[int] | None) -> list[int]:
    """Every id that ends a response: the end of turn, the tokenizer's EOS and the ``eos_ids``
    of a checkpoint's configs (an ``int`` or a list each), without duplicates, end of turn first.

    Arguments
    ---------
    tokenizer : Any
        A transformers tokenizer.
    *eos_ids : int, list of int or None
        E.g. ``model.generation_config.eos_token_id`` (a list for Qwen2-Audio-7B-Instruct).

    Returns
    -------
    list[int]
        The ids to stop on and to count a response as finished with.

    Example
    -------
    >>> class Tok:
    ...     eos_token, eos_token_id = "<|endoftext|>", 0
    ...     def get_vocab(self):
    ...         return {"<|endoftext|>": 0, "<|im_end|>": 1}
    ...     def convert_tokens_to_ids(self, token):
    ...         return self.get_vocab()[token]
    >>> stop_token_ids(Tok(), [0, 1], None, 7)
    [1, 0, 7]
    """
    ids = [tokenizer.convert_tokens_to_ids(end_of_turn_token(tokenizer))]
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    for entry in eos_ids:
        if entry is None:
            continue
        ids.extend(int(i) for i in (entry if isinstance(entry, (list, tuple)) else [entry]))
    return list(dict.fromkeys(ids))


def decoding_config(
    *,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    eos_token_id: list[int] | int | None = None,
    pad_token_id: int | None = None,
    num_return_sequences: int = 1,
) -> Any:
    """A complete ``GenerationConfig``: greedy means greedy, sampling means exactly
    ``temperature`` / ``top_p`` (and ``top_k`` only when > 0).

    ``generate()`` fills every setting a config leaves at ``None`` from the checkpoint's
    ``generation_config`` (Qwen2-Audio-7B-Instruct's carries ``do_sample``, ``top_k`` 20,
    ``top_p`` 0.5, ``temperature`` 0.7, ``repetition_penalty`` 1.1), then from transformers'
    global defaults (``top_k`` 50). Here every setting that adds a logits processor is set to its
    neutral value, so nothing of the checkpoint's sampling leaks in.

    Arguments
    ---------
    max_new_tokens : int
        Tokens to generate at most.
    do_sample : bool
        Sample (``True``) or decode greedily.
    temperature, top_p, top_k : float, float, int
        The sampling settings (ignored when greedy); ``top_k`` 0 disables top-k.
    eos_token_id : list of int or int, optional
        Every id that ends a response (:func:`stop_token_ids`).
    pad_token_id : int, optional
        The padding id.
    num_return_sequences : int
        Sequences per input.

    Returns
    -------
    transformers.GenerationConfig

    Example
    -------
    >>> cfg = decoding_config(max_new_tokens=8, eos_token_id=[1, 0], pad_token_id=0)
    >>> cfg.do_sample, cfg.repetition_penalty, cfg.no_repeat_ngram_size, cfg.eos_token_id
    (False, 1.0, 0, [1, 0])
    >>> sampled = decoding_config(max_new_tokens=8, do_sample=True, temperature=0.9, top_p=0.95)
    >>> sampled.temperature, sampled.top_p, sampled.top_k
    (0.9, 0.95, 0)
    """
    from transformers import GenerationConfig

    # Processors applied in both modes: set to their neutral values.
    settings: dict[str, Any] = dict(
        max_new_tokens=max_new_tokens, min_new_tokens=0, num_beams=1,
        do_sample=do_sample, repetition_penalty=1.0, encoder_repetition_penalty=1.0,
        no_repeat_ngram_size=0, encoder_no_repeat_ngram_size=0, length_penalty=1.0,
        renormalize_logits=False, remove_invalid_values=False, suppress_tokens=[],
        begin_suppress_tokens=[], exponential_decay_length_penalty=None,
        eos_token_id=eos_token_id, pad_token_id=pad_token_id,
        num_return_sequences=num_return_sequences)
    if do_sample:  # the warpers, which transformers applies only when sampling
        settings.update(temperature=float(temperature), top_p=float(top_p), top_k=int(top_k),
                        min_p=0.0, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0)
    return GenerationConfig(**settings)
