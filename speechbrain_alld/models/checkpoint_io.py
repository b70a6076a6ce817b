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


def lora_scalings(core: torch.nn.Module) -> dict[str, tuple[str, float]]:
    """``{module name: (adapter name, scaling)}`` of every peft LoRA layer in ``core`` (one
    active adapter, plain low-rank deltas: DoRA and ``fan_in_fan_out`` layers are refused)."""
    from peft.tuners.lora import LoraLayer

    scalings = {}
    for name, module in core.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        if len(module.active_adapters) != 1:
            raise ValueError(f"{name}: exactly one active LoRA adapter is supported")
        adapter = module.active_adapters[0]
        if module.use_dora.get(adapter) or getattr(module, "fan_in_fan_out", False):
            raise ValueError(f"{name}: DoRA / fan_in_fan_out LoRA layers cannot be merged here")
        scalings[name] = (adapter, float(module.scaling[adapter]))
    return scalings


@torch.no_grad()
def merged_lora_state_dict(state: dict[str, torch.Tensor],
                           scalings: dict[str, tuple[str, float]],
                           dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """A LoRA model's state dict (keys relative to the ``Qwen2AudioForConditionalGeneration``,
    on any device) with each delta ``B @ A * scaling`` merged into its base weight and the
    LoRA weights left out, built one tensor at a time on the CPU (in float32, then ``dtype``).
    """
    merged: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if "lora_" in key:
            continue
        module, _, leaf = key.rpartition(".base_layer.")
        if module in scalings and leaf == "weight":
            adapter, scaling = scalings[module]
            a = state[f"{module}.lora_A.{adapter}.weight"]
            b = state[f"{module}.lora_B.{adapter}.weight"]
            value = value.detach().cpu().float() + (
                b.detach().cpu().float() @ a.detach().cpu().float()) * scaling
        merged[key.replace(".base_layer.", ".")] = saved_tensor(value, dtype)
    return merged


def save_weights(model: Any, core: Any, folder: Path, *, lora: bool, merge: bool,
                 dtype: torch.dtype | None, state: dict[str, torch.Tensor] | None = None,
                 trainable: set[str] | None = None) -> None:
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
    state : dict, optional
        ``core``'s full state dict when ``core`` itself cannot give one (an FSDP-sharded
        model: the tensors gathered on the CPU of this process); ``core.state_dict()`` if not.
    trainable : set of str, optional
        The names (relative to ``core``) of the trained parameters; by default those of
        ``core`` that require gradients.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if state is None:
        state = core.state_dict()
    if trainable is None:
        trainable = {n for n, p in core.named_parameters() if p.requires_grad}
    if lora and not merge:
        prefix = "base_model.model."
        model.save_pretrained(folder, state_dict={prefix + k: saved_tensor(v, None)
                                                  for k, v in state.items() if "lora_" in k})
        # peft's adapter holds only the lora_* weights: keep the other trained ones.
        from safetensors.torch import save_file

        extra = {k: saved_tensor(v, None) for k, v in state.items()
                 if k in trainable and "lora_" not in k}
        if extra:
            save_file(extra, str(folder / EXTRA_TRAINABLE))
        return
    state = (merged_lora_state_dict(state, lora_scalings(core), dtype) if lora
             else {k: saved_tensor(v, dtype) for k, v in state.items()})
    core.save_pretrained(folder, state_dict=state)
    if dtype is not None:  # transformers records the in-memory (fp32) dtype
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["dtype"] = str(dtype).removeprefix("torch.")
        write_text_atomic(config_path, json.dumps(config, indent=2) + "\n")
