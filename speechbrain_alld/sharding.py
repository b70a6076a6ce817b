"""FSDP2 for the policy: sharded weights, gradients and optimiser state, sharded checkpoints.

``distributed: fsdp`` in a training block shards the policy with PyTorch's own FSDP2
(:func:`torch.distributed.fsdp.fully_shard`): one unit per decoder layer of the language model
and per layer of the audio encoder, then the whole ``Qwen2AudioForConditionalGeneration`` as
the root unit (embeddings, LM head, projector, the encoder's convolutions). Each process keeps
``1 / world`` of every weight (fp32 for trained ones, as the optimiser needs), of its gradient
and of its Adam state; a unit's weights are gathered in ``param_dtype`` (the policy's bf16) for
its forward and backward, and gradients are reduce-scattered in ``reduce_dtype`` (fp32).

Checkpoints hold the sharded trainable weights and optimiser state through
:mod:`torch.distributed.checkpoint` (every process writes its shards; a checkpoint loads on any
number of processes), and :func:`gathered_state_dict` brings the full weights to the CPU of
rank 0 one tensor at a time for the final Hugging Face save.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from speechbrain_alld.hub import resolve_dtype
from speechbrain_alld.models.audio_llm import AudioLLM

DISTRIBUTED_MODES = ("ddp", "fsdp")


@dataclass(frozen=True)
class FSDPConfig:
    """How :func:`shard_policy` shards (the ``fsdp`` mapping of a training block).

    Arguments
    ---------
    param_dtype : str or None
        The dtype weights are gathered and computed in: ``"auto"`` (the policy's compute dtype,
        bf16 for the real checkpoints; none for an fp32 model), a dtype name, or None (as
        stored).
    reduce_dtype : str
        The dtype gradients are reduce-scattered and kept in (with a ``param_dtype``).
    cpu_offload : bool
        Keep the weight, gradient and optimiser shards in CPU memory (FSDP2's
        ``CPUOffloadPolicy``); the GPU holds only the units being computed.
    reshard_after_forward : bool
        Free a unit's gathered weights after its forward (gathered again for its backward).

    Example
    -------
    >>> FSDPConfig.from_mapping({"cpu_offload": True}).cpu_offload
    True
    >>> FSDPConfig.from_mapping({"offload": True})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: fsdp: unknown option(s) offload (known: param_dtype, ...)
    """

    param_dtype: str | None = "auto"
    reduce_dtype: str = "float32"
    cpu_offload: bool = False
    reshard_after_forward: bool = True

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | FSDPConfig | None) -> FSDPConfig:
        """The config from a YAML mapping (unknown keys are an error)."""
        if isinstance(options, FSDPConfig):
            return options
        options = dict(options or {})
        known = list(asdict(cls()))
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"fsdp: unknown option(s) {', '.join(unknown)} "
                             f"(known: {', '.join(known)})")
        return cls(**options)


def distributed_mode(hparams: Any) -> str:
    """The ``distributed`` choice of a block / Brain hparams (``"ddp"`` when absent)."""
    get = hparams.get if isinstance(hparams, Mapping) else lambda k, d: getattr(hparams, k, d)
    mode = str(get("distributed", "ddp") or "ddp")
    if mode not in DISTRIBUTED_MODES:
        raise ValueError(f"distributed must be one of {DISTRIBUTED_MODES}, got {mode!r}")
    return mode


def shard_units(policy: AudioLLM) -> list[torch.nn.Module]:
    """The modules that become FSDP units below the root: every decoder layer of the language
    model and every layer of the audio encoder."""
    core = policy.core_model.model
    return [*core.language_model.layers, *core.audio_tower.layers]


def shard_policy(policy: AudioLLM, config: FSDPConfig | Mapping[str, Any] | None = None,
                 device: str | torch.device | None = None) -> AudioLLM:
    """Shard ``policy`` in place with FSDP2 over every process of the default group.

    Arguments
    ---------
    policy : AudioLLM
        The policy, anywhere (on the CPU it never exists whole on the GPU: each process moves
        only its shards to ``device``).
    config : FSDPConfig or mapping, optional
        Mixed precision, offload and resharding (see :class:`FSDPConfig`).
    device : str or torch.device, optional
        This process's device (default: ``cuda:<current>`` when CUDA is available, else CPU).

    Returns
    -------
    AudioLLM
        ``policy``, its parameters now ``DTensor`` shards.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import (
        CPUOffloadPolicy,
        MixedPrecisionPolicy,
        OffloadPolicy,
        fully_shard,
    )

    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise RuntimeError("distributed: fsdp needs a process group: launch with torchrun "
                           "(--nproc_per_node=1 for one GPU, e.g. to offload to the CPU)")
    if policy.sharded:
        return policy
    config = FSDPConfig.from_mapping(config)
    if config.param_dtype == "auto":
        param_dtype = policy.compute_dtype
    else:
        param_dtype = resolve_dtype(config.param_dtype) if config.param_dtype else None
    dtypes = {p.dtype for p in policy.parameters()}
    if param_dtype is None and len(dtypes) > 1:
        raise ValueError(f"the policy holds {sorted(map(str, dtypes))} weights, which FSDP "
                         "gathers in one dtype: set fsdp param_dtype (e.g. bfloat16)")
    mp = MixedPrecisionPolicy(param_dtype=param_dtype,
                              reduce_dtype=resolve_dtype(config.reduce_dtype)
                              if param_dtype is not None else None)
    device = torch.device(device) if device is not None else (
        torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available()
        else torch.device("cpu"))
    mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
    offload = (CPUOffloadPolicy(pin_memory=device.type == "cuda") if config.cpu_offload
               else OffloadPolicy())
    options = {"mesh": mesh, "mp_policy": mp, "offload_policy": offload}
    for unit in shard_units(policy):
        fully_shard(unit, reshard_after_forward=config.reshard_after_forward, **options)
    # The root stays gathered from its forward to its backward (FSDP2's rule for the root).
    fully_shard(policy.core_model, **options)
    return policy


def _trainable_names(policy: AudioLLM) -> set[str]:
    return {n for n, p in policy.core_model.named_parameters() if p.requires_grad}


def _sharded_model_state(policy: AudioLLM) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    trainable = _trainable_names(policy)
    state = get_model_state_dict(policy.core_model)
    return {k: v for k, v in state.items() if k in trainable}


def save_sharded_policy(policy: AudioLLM, path: str | Path) -> None:
    """Checkpoint hook (every process): the trainable weights' shards, written with
    :func:`torch.distributed.checkpoint.save` into the folder ``path``."""
    import torch.distributed.checkpoint as dcp

    dcp.save({"model": _sharded_model_state(policy)}, checkpoint_id=str(path))


def load_sharded_policy(policy: AudioLLM, path: str | Path, end_of_epoch: bool = False) -> None:
    """Checkpoint hook (every process): load what :func:`save_sharded_policy` wrote, on any
    number of processes (each reads the pieces of its own shards)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    state = {"model": _sharded_model_state(policy)}
    dcp.load(state, checkpoint_id=str(path))
    set_model_state_dict(policy.core_model, state["model"],
                         options=StateDictOptions(strict=False))


def sharded_optimizer_hooks(policy: AudioLLM) -> dict[str, Any]:
    """``custom_save_hook`` / ``custom_load_hook`` for the optimiser of a sharded policy: its
    state (fp32 moments of this process's shards) through distributed checkpointing."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )

    def save(optimizer: torch.optim.Optimizer, path: str | Path) -> None:
        dcp.save({"optim": get_optimizer_state_dict(policy.core_model, optimizer)},
                 checkpoint_id=str(path))

    def load(optimizer: torch.optim.Optimizer, path: str | Path, end_of_epoch: bool = False
             ) -> None:
        state = {"optim": get_optimizer_state_dict(policy.core_model, optimizer)}
        dcp.load(state, checkpoint_id=str(path))
        set_optimizer_state_dict(policy.core_model, optimizer, state["optim"])

    return {"custom_save_hook": save, "custom_load_hook": load}


def gathered_state_dict(policy: AudioLLM) -> dict[str, torch.Tensor]:
    """The full weights of a sharded policy (keys relative to its core model) on the CPU of
    rank 0, gathered one tensor at a time (no full copy on any GPU); ``{}`` on other ranks.
    Every process must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(policy.core_model, options=StateDictOptions(
        full_state_dict=True, cpu_offload=True))


def local_bytes(policy: AudioLLM, optimizer: torch.optim.Optimizer | None = None
                ) -> dict[str, int]:
    """Bytes this process holds for the policy's weights, gradients and optimiser state
    (the local shards of ``DTensor`` s): what the memory plan predicts per process."""
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor

    for module in policy.modules():  # the root stays gathered after an evaluation forward
        if isinstance(module, FSDPModule):
            module.reshard()

    def size(t: torch.Tensor) -> int:
        t = t.to_local() if isinstance(t, DTensor) else t
        return t.numel() * t.element_size()

    params = list(policy.parameters())
    out = {"weights": sum(size(p) for p in params),
           "grads": sum(size(p.grad) for p in params if p.grad is not None), "optimizer": 0}
    if optimizer is not None:
        out["optimizer"] = sum(size(v) for state in optimizer.state.values()
                               for v in state.values()
                               if isinstance(v, torch.Tensor) and v.dim() > 0)
    return out
