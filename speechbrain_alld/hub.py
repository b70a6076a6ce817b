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
