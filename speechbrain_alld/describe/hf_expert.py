"""An expert backed by any Hugging Face causal LM (Llama-3.1-70B-Instruct, Qwen2-7B-Instruct, ...).

The prompt goes in as a chat (system + user message) through the tokenizer's chat template;
requests sharing sampling settings are generated together, ``batch_size`` at a time, with left
padding. For 70B-scale corpora a server backend (e.g. an OpenAI-compatible vLLM endpoint) can
implement :class:`~speechbrain_alld.describe.experts.Expert` the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import torch

from speechbrain_alld.describe.experts import Expert, GenerationRequest, SamplingConfig
from speechbrain_alld.describe.prompts import DEFAULT_SYSTEM_PROMPT, build_verdict_prompt
from speechbrain_alld.durable import stable_seed
from speechbrain_alld.hub import hub_offline, resolve_dtype, text_chat_prompt

_LETTER = re.compile(r"\b([AB])\b")


def model_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's config and a sample of its weights (for cache keys)."""
    digest = hashlib.sha256(str(getattr(model, "config", "")).encode())
    params = list(model.parameters())
    for p in (params[:2] + params[-2:]) if params else []:
        digest.update(p.detach().float().cpu().numpy().tobytes()[:4096])
    return digest.hexdigest()[:12]


class HFExpert(Expert):
    """Generate expert texts with a causal LM from a local folder, a hub id or an object.

    Arguments
    ---------
    model: a folder or hub id, or an already built ``PreTrainedModel``.
    tokenizer: required with a model object; loaded from ``model`` otherwise.
    dtype: ``"auto"``, ``"bf16"``, ``"fp16"``, ``"fp32"`` or a torch dtype.
    device: where the model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
    device_map: passed to ``from_pretrained`` (e.g. ``"auto"`` spreads a 70B model over the
        visible GPUs; needs ``accelerate``); then ``device`` is where the inputs go.
    batch_size: requests per ``generate`` call.
    system_prompt: the system message (``None`` for none).
    expert_id: part of every cache key; derived from the model name (or weights) if not given.
    """

    def __init__(
        self,
        model: str | Path | Any,
        tokenizer: Any = None,
        *,
        dtype: str | torch.dtype | None = "auto",
        device: str = "cpu",
        device_map: str | dict | None = None,
        batch_size: int = 8,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        expert_id: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(model, (str, Path)):
            name = str(model)
            kwargs = {"local_files_only": hub_offline(), "trust_remote_code": trust_remote_code}
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(name, **kwargs)
            if device_map is not None:
                kwargs["device_map"] = device_map
            model = AutoModelForCausalLM.from_pretrained(name, dtype=resolve_dtype(dtype),
                                                         **kwargs)
            default_id = f"hf:{name}"
        else:
            if tokenizer is None:
                raise ValueError("HFExpert needs a tokenizer when given a model object")
            default_id = f"hf:{getattr(model, 'name_or_path', '') or 'in-memory'}:" \
                         f"{model_fingerprint(model)}"
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the expert's tokenizer has no chat template; set "
                             "tokenizer.chat_template (an instruction-tuned model has one)")
        self.model = (model if device_map is not None else model.to(device)).eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = device
        self.batch_size = batch_size
        self.system_prompt = system_prompt
        self.expert_id = expert_id or default_id
        self.n_generate_calls = 0

    @torch.no_grad()
    def _generate_texts(self, prompts: Sequence[str], sampling: SamplingConfig,
                        seed: int) -> list[str]:
        chats = [text_chat_prompt(self.tokenizer, p, self.system_prompt) for p in prompts]
        enc = self.tokenizer(chats, return_tensors="pt", padding=True,
                             add_special_tokens=False).to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens,
                                  "do_sample": sampling.do_sample,
                                  "pad_token_id": self.tokenizer.pad_token_id}
        if sampling.do_sample:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
            torch.manual_seed(seed)
        self.n_generate_calls += 1
        out = self.model.generate(**enc, **kwargs)
        new_tokens = out[:, enc["input_ids"].shape[1]:]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens,
                                                               skip_special_tokens=True)]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Generate one text per request; requests are grouped by sampling settings."""
        texts: dict[int, str] = {}
        order = sorted(range(len(requests)), key=lambda i: requests[i].variant.key())
        for _, group in groupby(order, key=lambda i: requests[i].variant.key()):
            idx = list(group)
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                seed_src = "|".join(f"{requests[i].item_id}:{requests[i].seed}" for i in chunk)
                seed = stable_seed(seed_src)
                outs = self._generate_texts([requests[i].prompt for i in chunk],
                                            requests[chunk[0]].variant, seed)
                texts.update(zip(chunk, outs))
        return [texts[i] for i in range(len(requests))]

    def summarise_verdict(self, texts: Sequence[str]) -> list[str | None]:
        """Ask the model itself which clip each comparison prefers (greedy, a few tokens)."""
        answers: list[str | None] = []
        greedy = SamplingConfig("verdict", do_sample=False, max_new_tokens=4)
        for start in range(0, len(texts), self.batch_size):
            prompts = [build_verdict_prompt(t) for t in texts[start:start + self.batch_size]]
            for out in self._generate_texts(prompts, greedy, 0):
                match = _LETTER.search(out)
                answers.append(match.group(1) if match else None)
        return answers
