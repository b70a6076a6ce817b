"""Hugging Face checkpoint I/O for the policy: adapters loaded onto (possibly adapter) bases,
merged LoRA weights without a second copy of the model, tensors saved in the compute dtype."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from speechbrain_alld.durable import write_text_atomic

EXTRA_TRAINABLE = "extra_trainable.safetensors"  # non-LoRA weights trained beside an adapter


def saved_tensor(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """A CPU copy of ``tensor`` for saving, floating-point ones in ``dtype`` (if given)."""
    target = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
    return tensor.detach().to("cpu", target).contiguous()


def load_merged_model(source: str, dtype: Any, local_files_only: bool) -> Any:
    """A ``Qwen2AudioForConditionalGeneration`` from a folder / hub id; an adapter folder is
    loaded onto its base (recursively: a base may be an adapter folder itself) and merged.
    The merged model remembers ``source`` as its name, so a new adapter on it names it as base.
    """
    from transformers import Qwen2AudioForConditionalGeneration

    adapter_config = Path(source) / "adapter_config.json"
    if not adapter_config.is_file():
        return Qwen2AudioForConditionalGeneration.from_pretrained(
            source, dtype=dtype, local_files_only=local_files_only)
    from peft import PeftModel

    base = json.loads(adapter_config.read_text(encoding="utf-8"))["base_model_name_or_path"]
    model = load_merged_model(str(base), dtype, local_files_only)
    model = PeftModel.from_pretrained(model, source).merge_and_unload()
    extra = Path(source) / EXTRA_TRAINABLE
    if extra.is_file():
        from safetensors.torch import load_file

        missing = model.load_state_dict(load_file(str(extra)), strict=False)
        if missing.unexpected_keys:
            raise RuntimeError(f"{extra} holds weights this model does not have: "
                               f"{missing.unexpected_keys[:5]}")
    model.name_or_path = model.config._name_or_path = source
    return model


@torch.no_grad()
def merged_lora_state_dict(core: torch.nn.Module, dtype: torch.dtype | None
                           ) -> dict[str, torch.Tensor]:
    """The state dict of a model with peft LoRA layers injected, every LoRA delta merged into
    its base weight and the LoRA weights left out, built one tensor at a time on the CPU (the
    model is not copied on its device and not changed)."""
    from peft.tuners.lora import LoraLayer

    adapted = {name: module for name, module in core.named_modules()
               if isinstance(module, LoraLayer)}
    state: dict[str, torch.Tensor] = {}
    for key, value in core.state_dict().items():
        if "lora_" in key:
            continue
        module, _, leaf = key.rpartition(".base_layer.")
        if module in adapted and leaf == "weight":
            layer = adapted[module]
            value = value + sum(layer.get_delta_weight(a) for a in layer.active_adapters)
        state[key.replace(".base_layer.", ".")] = saved_tensor(value, dtype)
    return state


def save_weights(model: Any, core: Any, folder: Path, *, lora: bool, merge: bool,
                 dtype: torch.dtype | None) -> None:
    """Write a policy's weights to ``folder`` in Hugging Face format (see
    :meth:`~speechbrain_alld.models.audio_llm.AudioLLM.save_pretrained`).

    Arguments
    ---------
    model : Any
        The trained module (a peft model in LoRA mode).
    core : Any
        The ``Qwen2AudioForConditionalGeneration`` inside it.
    folder : Path
        Where to write.
    lora, merge : bool
        LoRA mode, and whether to merge the adapter (else it is saved as an adapter).
    dtype : torch.dtype, optional
        The precision to save floating-point weights in (the compute dtype).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if lora and not merge:
        model.save_pretrained(folder)
        # peft's adapter holds only the lora_* weights: keep the other trained ones.
        from safetensors.torch import save_file

        extra = {n.removeprefix("base_model.model."): p.detach().contiguous().cpu()
                 for n, p in model.named_parameters() if p.requires_grad and "lora_" not in n}
        if extra:
            save_file(extra, str(folder / EXTRA_TRAINABLE))
        return
    state = (merged_lora_state_dict(core, dtype) if lora
             else {k: saved_tensor(v, dtype) for k, v in core.state_dict().items()})
    core.save_pretrained(folder, state_dict=state)
    if dtype is not None:  # transformers records the in-memory (fp32) dtype
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["dtype"] = str(dtype).removeprefix("torch.")
        write_text_atomic(config_path, json.dumps(config, indent=2) + "\n")
