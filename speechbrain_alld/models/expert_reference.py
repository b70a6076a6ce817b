"""The ALLD reference policy: a frozen text-only expert LM scoring responses given the ratings.

ALLD distils at the token level: log pi_ref(y | x_t) and log pi_theta(y | x_a) must be sums over
the *same* response tokens, so the expert must tokenize exactly like the audio LLM
(Qwen2-7B-Instruct and Qwen2-Audio share the Qwen2 tokenizer; the audio LLM only adds its audio
special tokens). :func:`check_same_tokenizer` refuses any other expert with a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from speechbrain_alld.describe.prompts import DEFAULT_SYSTEM_PROMPT
from speechbrain_alld.hub import end_of_turn_token, hub_offline, resolve_dtype, text_chat_prompt
from speechbrain_alld.losses import IGNORE_INDEX, sequence_logprobs

#: Tokens the audio LLM adds to the text tokenizer; ignored when comparing vocabularies.
AUDIO_SPECIAL_TOKENS: tuple[str, ...] = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")

_PROBES = (
    "The speech is slightly noisy, with a MOS of 3.4.",
    "Speech A is cleaner than Speech B; I prefer Speech A.",
    "Coloration 2.5, discontinuity 4.9 -- loud & clear!\n",
)


class TokenizerMismatchError(ValueError):
    """The expert and the audio LLM do not share one tokenizer."""


def check_same_tokenizer(
    policy_tokenizer: Any, expert_tokenizer: Any, ignore: Sequence[str] = AUDIO_SPECIAL_TOKENS
) -> None:
    """Raise :class:`TokenizerMismatchError` unless both tokenize text identically."""
    pv = {t: i for t, i in policy_tokenizer.get_vocab().items() if t not in ignore}
    ev = {t: i for t, i in expert_tokenizer.get_vocab().items() if t not in ignore}
    if pv != ev:
        only_p = sorted(set(pv) - set(ev))[:5]
        only_e = sorted(set(ev) - set(pv))[:5]
        moved = sorted(t for t in set(pv) & set(ev) if pv[t] != ev[t])[:5]
        raise TokenizerMismatchError(
            "the expert's tokenizer differs from the audio LLM's, so token-level ALLD cannot "
            f"align their log-probs (vocab sizes {len(pv)} vs {len(ev)}; only in the audio LLM: "
            f"{only_p}; only in the expert: {only_e}; different ids: {moved}). Use an expert of "
            "the same family (e.g. Qwen2-7B-Instruct for Qwen2-Audio)."
        )
    for probe in _PROBES:
        a = policy_tokenizer(probe, add_special_tokens=False)["input_ids"]
        b = expert_tokenizer(probe, add_special_tokens=False)["input_ids"]
        if a != b:
            raise TokenizerMismatchError(
                f"the expert's tokenizer splits {probe!r} differently from the audio LLM's "
                f"({b} vs {a}); token-level ALLD needs identical tokenization")
    # The EOS *names* may differ (a base tokenizer says <|endoftext|>, an Instruct one
    # <|im_end|>): what must agree is the token both end a response with.
    if end_of_turn_token(policy_tokenizer) != end_of_turn_token(expert_tokenizer):
        raise TokenizerMismatchError(
            f"end-of-turn tokens differ: {end_of_turn_token(policy_tokenizer)!r} (audio LLM) vs "
            f"{end_of_turn_token(expert_tokenizer)!r} (expert)")


class ExpertReference(torch.nn.Module):
    """Frozen expert LM computing log pi_ref(y | x_t) for responses y and expert prompts x_t."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        policy_tokenizer: Any = None,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    ) -> None:
        super().__init__()
        if policy_tokenizer is not None:
            check_same_tokenizer(policy_tokenizer, tokenizer)
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the expert's tokenizer has no chat template")
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        *,
        policy_tokenizer: Any = None,
        dtype: str | torch.dtype | None = "auto",
        device: str | None = None,
        local_files_only: bool | None = None,
        **kwargs: Any,
    ) -> ExpertReference:
        """Load the expert (e.g. Qwen2-7B-Instruct) from a folder or hub id."""

        from transformers import AutoModelForCausalLM, AutoTokenizer

        if local_files_only is None:
            local_files_only = hub_offline()
        tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local_files_only)
        if policy_tokenizer is not None:
            check_same_tokenizer(policy_tokenizer, tokenizer)
        model = AutoModelForCausalLM.from_pretrained(
            str(source), dtype=resolve_dtype(dtype), local_files_only=local_files_only)
        if device is not None:
            model.to(device)
        return cls(model, tokenizer, None, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prepare_batch(self, prompts: Sequence[str], responses: Sequence[str]
                      ) -> dict[str, torch.Tensor]:
        """Right-padded ids of chat(prompt) + response + end-of-turn, labels on the response."""
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses must have the same length")
        rows, label_rows = [], []
        for prompt, response in zip(prompts, responses):
            chat = text_chat_prompt(self.tokenizer, prompt, self.system_prompt)
            p = self.tokenizer(chat, add_special_tokens=False)["input_ids"]
            r = self.tokenizer(response + end_of_turn_token(self.tokenizer),
                               add_special_tokens=False)["input_ids"]
            rows.append(p + r)
            label_rows.append([IGNORE_INDEX] * len(p) + r)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, IGNORE_INDEX)
        for k, (r, lab) in enumerate(zip(rows, label_rows)):
            ids[k, : len(r)] = torch.tensor(r)
            mask[k, : len(r)] = 1
            labels[k, : len(r)] = torch.tensor(lab)
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device),
                "labels": labels.to(self.device)}

    @torch.no_grad()
    def logprobs(self, prompts: Sequence[str], responses: Sequence[str]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log pi_ref(response | prompt) per example, and the response lengths."""
        batch = self.prepare_batch(prompts, responses)
        logits = self.model(input_ids=batch["input_ids"],
                            attention_mask=batch["attention_mask"]).logits
        return sequence_logprobs(logits, batch["labels"])
