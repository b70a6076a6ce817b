"""Per-GPU memory of a training stage, printed before training, and a fit check before loading.

The plan counts the policy's parameters from its config alone (the model is built on PyTorch's
``meta`` device: no weights are read) and adds, per process:

* weights: frozen ones in the load dtype (bf16: 2 bytes), trained ones in fp32 (4 bytes, the
  optimiser's master copy); gradients (4 bytes per trained parameter); Adam's two moments
  (8 bytes); under DDP its gradient buckets (4 bytes). FSDP divides the first three by the
  number of processes (none on the GPU with CPU offload) and adds the gathered working copies:
  the root unit (embeddings, LM head, projector, encoder stem) and two layers (the one computing
  and the prefetched one) in the compute dtype, plus one layer's unsharded fp32 gradient;
* activations: per token and language-model layer ``22 h + 8 f`` bytes in bf16 (the inputs each
  op keeps for backward: norms, projections, attention output, the gated MLP), ``2 h`` per layer
  plus one layer's worth with gradient checkpointing; the trained audio encoder likewise over its
  whole (padded) window; the logits in bf16 plus their fp32 log-softmax and its gradient
  (10 bytes per token and vocabulary entry);
* a fixed runtime reserve (CUDA context and allocator slack).

Tokens per step: ``batch x sequences x (25 x seconds x clips + text tokens)`` (Qwen2-Audio keeps
25 audio tokens per second; ALLD has 2 sequences per example, the chosen and the rejected one,
and encodes each clip once). The estimate is checked against measured peaks in
``benchmarks/README.md`` (7B shapes on an H200) and in the tests (tiny shapes on the CPU).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

GB = 1e9
RUNTIME_RESERVE = 1.5 * GB  # CUDA context, cuBLAS workspaces, allocator fragmentation
AUDIO_TOKENS_PER_SECOND = 25


@dataclass(frozen=True)
class PolicyShape:
    """What the plan needs to know about a policy: counts and sizes from its config."""

    n_params: int
    n_trainable: int
    n_root: int
    n_largest_unit: int
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    audio_dim: int
    audio_layers: int
    audio_ffn: int
    audio_positions: int
    train_encoder: bool
    load_bytes: int = 2  # the checkpoint's dtype: bf16

    @classmethod
    def from_config(cls, config: Any, *, finetune: str = "lora", lora_r: int = 8,
                    lora_target: str | None = None, train_projector: bool = True,
                    train_encoder: bool = False, load_bytes: int = 2) -> PolicyShape:
        """Count a ``Qwen2AudioConfig``'s parameters on the ``meta`` device (no memory).

        The trained ones follow :class:`~speechbrain_alld.models.audio_llm.AudioLLM`: all
        (``full``) or the LoRA matrices of the layers ``lora_target`` selects (``lora``), the
        projector when ``train_projector`` (always in ``full``), the encoder when
        ``train_encoder``.
        """
        import torch
        from transformers import Qwen2AudioForConditionalGeneration

        from speechbrain_alld.models.audio_llm import DEFAULT_LORA_TARGET

        with torch.device("meta"):
            model = Qwen2AudioForConditionalGeneration(config)
        units = [*model.model.language_model.layers, *model.model.audio_tower.layers]
        regex = re.compile(lora_target or DEFAULT_LORA_TARGET)
        lora_of = {id(m): lora_r * (m.in_features + m.out_features) if finetune == "lora" else 0
                   for name, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and regex.fullmatch(name)}
        lora = sum(lora_of.values())
        in_units = {id(p) for unit in units for p in unit.parameters()}
        unit_sizes = [sum(p.numel() for p in u.parameters())
                      + sum(lora_of.get(id(m), 0) for m in u.modules()) for u in units]
        n_params = sum(p.numel() for p in model.parameters()) + lora
        tower = sum(p.numel() for p in model.model.audio_tower.parameters())
        projector = sum(p.numel() for p in model.model.multi_modal_projector.parameters())
        if finetune == "full":
            trainable = n_params - (0 if train_encoder else tower)
        else:
            trainable = lora + projector * train_projector + tower * train_encoder
        text, audio = config.text_config, config.audio_config
        return cls(
            n_params=n_params, n_trainable=trainable,
            n_root=sum(p.numel() for p in model.parameters() if id(p) not in in_units),
            n_largest_unit=max(unit_sizes),
            hidden=text.hidden_size, layers=text.num_hidden_layers,
            intermediate=text.intermediate_size, vocab=text.vocab_size,
            audio_dim=audio.d_model, audio_layers=audio.encoder_layers,
            audio_ffn=audio.encoder_ffn_dim, audio_positions=audio.max_source_positions,
            train_encoder=train_encoder, load_bytes=load_bytes)


@dataclass(frozen=True)
class Workload:
    """One training step: ``batch_size`` examples per process of ``sequences`` each."""

    batch_size: int
    sequences: int = 1  # SFT 1, ALLD 2 (chosen and rejected)
    audio_seconds: float = 10.0
    clips: int = 1  # clips per example (A/B: 2)
    text_tokens: int = 400  # prompt + response
    gradient_checkpointing: bool = False

    @property
    def tokens(self) -> int:
        per_sequence = int(AUDIO_TOKENS_PER_SECOND * self.audio_seconds) * self.clips
        return self.batch_size * self.sequences * (per_sequence + self.text_tokens)


def _layer_bytes_per_token(hidden: int, ffn: int) -> int:
    return 22 * hidden + 8 * ffn


def memory_plan(shape: PolicyShape, work: Workload, *, world: int = 1,
                distributed: str = "ddp", cpu_offload: bool = False,
                compute_bytes: int = 2, runtime: float = RUNTIME_RESERVE) -> dict[str, float]:
    """Bytes per process for one training step.

    Arguments
    ---------
    shape : PolicyShape
        Parameter counts and sizes.
    work : Workload
        Batch, sequences, audio and text lengths, gradient checkpointing.
    world : int
        Processes (one per GPU).
    distributed : str
        ``"ddp"`` (a full copy per process) or ``"fsdp"`` (sharded).
    cpu_offload : bool
        FSDP with the shards in CPU memory.
    compute_bytes : int
        Bytes per element of the compute dtype (bf16: 2; the tiny fp32 models: 4).
    runtime : float
        The fixed reserve added to the total.

    Returns
    -------
    dict
        ``weights``, ``grads``, ``optimizer``, ``ddp_buckets``, ``gathered``, ``activations``,
        ``logits``, ``runtime``, ``total`` (the GPU bytes of one process) and ``cpu`` (offloaded).
        DDP's buckets exist only with more than one process (one process is not wrapped).

    Example
    -------
    >>> shape = PolicyShape(n_params=1000, n_trainable=100, n_root=200, n_largest_unit=100,
    ...                     hidden=8, layers=2, intermediate=16, vocab=50, audio_dim=8,
    ...                     audio_layers=1, audio_ffn=16, audio_positions=10,
    ...                     train_encoder=False)
    >>> plan = memory_plan(shape, Workload(batch_size=1, audio_seconds=0.2, text_tokens=5),
    ...                    world=2, runtime=0)
    >>> plan["weights"], plan["grads"], plan["optimizer"], plan["ddp_buckets"]
    (2200.0, 400.0, 800.0, 400.0)
    >>> plan["activations"], plan["logits"]  # 10 tokens x 2 layers x (22*8 + 8*16); 10*50*10
    (6080.0, 5000.0)
    >>> memory_plan(shape, Workload(batch_size=1), world=4, distributed="fsdp")["grads"]
    100.0
    """
    if distributed not in ("ddp", "fsdp"):
        raise ValueError(f"distributed must be 'ddp' or 'fsdp', got {distributed!r}")
    frozen = shape.n_params - shape.n_trainable
    weights = float(frozen * shape.load_bytes + shape.n_trainable * 4)
    grads = float(shape.n_trainable * 4)
    optimizer = float(shape.n_trainable * 8)
    plan = {"weights": weights, "grads": grads, "optimizer": optimizer, "ddp_buckets": 0.0,
            "gathered": 0.0, "cpu": 0.0}
    if distributed == "ddp":
        plan["ddp_buckets"] = grads if world > 1 else 0.0
    else:
        for key in ("weights", "grads", "optimizer"):
            plan[key] /= world
        if cpu_offload:
            plan["cpu"] = plan["weights"] + plan["grads"] + plan["optimizer"]
            plan["weights"] = plan["grads"] = plan["optimizer"] = 0.0
        trained_share = shape.n_trainable / max(shape.n_params, 1)
        plan["gathered"] = float((shape.n_root + 2 * shape.n_largest_unit) * compute_bytes
                                 + shape.n_largest_unit * 4 * trained_share)
    tokens = work.tokens
    scale = compute_bytes / 2  # the per-token coefficients count bf16 activations
    per_token_layer = _layer_bytes_per_token(shape.hidden, shape.intermediate)
    if work.gradient_checkpointing:
        lm = tokens * (shape.layers * shape.hidden * 2 + per_token_layer)
    else:
        lm = tokens * shape.layers * per_token_layer
    encoder = 0.0
    if shape.train_encoder:
        positions = work.batch_size * work.clips * shape.audio_positions
        per_position = _layer_bytes_per_token(shape.audio_dim, shape.audio_ffn)
        encoder = positions * (shape.audio_layers * shape.audio_dim * 2 + per_position
                               if work.gradient_checkpointing
                               else shape.audio_layers * per_position)
    plan["activations"] = float((lm + encoder) * scale)
    plan["logits"] = float(tokens * shape.vocab * 10)
    plan["runtime"] = float(runtime)
    plan["total"] = sum(plan[k] for k in ("weights", "grads", "optimizer", "ddp_buckets",
                                          "gathered", "activations", "logits", "runtime"))
    return plan


def _size(n: float) -> str:
    return f"{n / GB:.1f} GB" if n >= 0.1 * GB else f"{n / 1e6:.1f} MB"


def format_plan(plan: Mapping[str, float], title: str = "") -> str:
    """The plan as lines of GB, as printed before training.

    Example
    -------
    >>> print(format_plan({"weights": 2e9, "total": 2e9}, "sft"))
    memory plan sft (per GPU): weights 2.0 GB | total 2.0 GB
    """
    parts = [f"{k} {_size(v)}" for k, v in plan.items() if v and k not in ("total", "cpu")]
    parts.append(f"total {_size(plan['total'])}")
    if plan.get("cpu"):
        parts.append(f"CPU offload {_size(plan['cpu'])}")
    return f"memory plan{' ' + title if title else ''} (per GPU): " + " | ".join(parts)


class MemoryPlanError(RuntimeError):
    """The chosen mode does not fit the visible GPU memory."""


def alternatives(shape_for: Any, work: Workload, settings: Mapping[str, Any], world: int
                 ) -> list[tuple[str, dict[str, float]]]:
    """Plans of the nearby settings a user can switch to: ``distributed: fsdp`` (and with CPU
    offload), ``finetune: lora``, gradient checkpointing, batch size 1. ``shape_for(finetune)``
    gives the policy's shape in a fine-tuning mode."""
    out = []
    mode = settings.get("distributed", "ddp")
    finetune = settings.get("finetune", "lora")
    base = {"world": world, "distributed": mode, "cpu_offload": settings.get("cpu_offload",
                                                                             False)}
    if mode != "fsdp":
        out.append(("distributed: fsdp", memory_plan(shape_for(finetune), work,
                                                     **{**base, "distributed": "fsdp"})))
    if not base["cpu_offload"]:
        out.append(("distributed: fsdp with fsdp: {cpu_offload: True}", memory_plan(
            shape_for(finetune), work, **{**base, "distributed": "fsdp", "cpu_offload": True})))
    if finetune != "lora":
        out.append(("finetune: lora", memory_plan(shape_for("lora"), work, **base)))
    if not work.gradient_checkpointing:
        out.append(("gradient_checkpointing: True", memory_plan(
            shape_for(finetune), replace(work, gradient_checkpointing=True), **base)))
    if work.batch_size > 1:
        out.append(("batch_size: 1", memory_plan(shape_for(finetune),
                                                 replace(work, batch_size=1), **base)))
    return out


def check_fit(plan: Mapping[str, float], available: float, options: list[tuple[str, dict]],
              what: str = "this stage") -> None:
    """Raise :class:`MemoryPlanError` when ``plan`` exceeds ``available`` bytes, naming the
    ``options`` (from :func:`alternatives`) that would fit.

    Example
    -------
    >>> check_fit({"total": 50e9}, 80e9, [])
    >>> check_fit({"total": 170e9}, 80e9, [("distributed: fsdp", {"total": 40e9})],
    ...           "sft")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_alld.memory_plan.MemoryPlanError: sft needs 170.0 GB per GPU, ... fsdp (40.0 GB)
    """
    if plan["total"] <= available:
        return
    fits = [f"{name} ({p['total'] / GB:.1f} GB)" for name, p in options
            if p["total"] <= available]
    raise MemoryPlanError(
        f"{what} needs {plan['total'] / GB:.1f} GB per GPU, {available / GB:.1f} GB are visible; "
        + ("would fit: " + "; ".join(fits) if fits else
           "none of fsdp, CPU offload, LoRA, gradient checkpointing or batch size 1 alone fits: "
           "combine them or use more GPUs"))


def qwen2_audio_7b_config(pad_token_id: int = 151643, audio_token_index: int = 151646) -> Any:
    """A ``Qwen2AudioConfig`` with Qwen2-Audio-7B(-Instruct)'s shapes (Whisper-large-v3
    encoder, 32-layer 4096-d language model, 156k vocabulary), to plan or benchmark offline."""
    from transformers import Qwen2AudioConfig, Qwen2AudioEncoderConfig, Qwen2Config

    return Qwen2AudioConfig(
        audio_config=Qwen2AudioEncoderConfig(num_mel_bins=128, encoder_layers=32,
                                             encoder_attention_heads=20, encoder_ffn_dim=5120,
                                             d_model=1280, max_source_positions=1500),
        text_config=Qwen2Config(vocab_size=156032, hidden_size=4096, intermediate_size=11008,
                                num_hidden_layers=32, num_attention_heads=32,
                                num_key_value_heads=32, max_position_embeddings=8192,
                                rope_theta=10000.0, pad_token_id=pad_token_id,
                                bos_token_id=None),
        audio_token_index=audio_token_index)


def plan_table(config: Any, work: Workload, gpus: tuple[int, ...] = (1, 4, 8),
               gpu_memory: float = 80 * GB) -> str:
    """A Markdown table of per-GPU totals: full fine-tuning and LoRA, DDP and FSDP (with and
    without CPU offload: then also the host memory per process), for each GPU count; a cell
    over ``gpu_memory`` is marked."""
    rows = [("full (encoder + LLM)", "full", True), ("full (LLM, encoder frozen)", "full", False),
            ("LoRA r=16 + projector", "lora", False)]
    modes = [("DDP", "ddp", False), ("FSDP", "fsdp", False), ("FSDP + CPU offload", "fsdp", True)]
    head = "| fine-tuning | mode | " + " | ".join(f"{n} GPU" for n in gpus) + " |"
    lines = [head, "|" + "---|" * (2 + len(gpus))]
    for label, finetune, encoder in rows:
        shape = PolicyShape.from_config(config, finetune=finetune, lora_r=16,
                                        train_encoder=encoder)
        for mode_name, mode, offload in modes:
            cells = []
            for n in gpus:
                plan = memory_plan(shape, work, world=n, distributed=mode, cpu_offload=offload)
                total = plan["total"]
                cells.append(f"{total / GB:.1f}" + (" (no)" if total > gpu_memory else "")
                             + (f" + {plan['cpu'] / GB:.0f} CPU" if plan["cpu"] else ""))
            lines.append(f"| {label} | {mode_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``python -m speechbrain_alld.memory_plan``: the per-GPU plan of Qwen2-Audio-7B shapes
    (or ``--source``'s config) for 1/4/8 GPUs."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--source", help="a model folder or hub id (default: the 7B shapes)")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--alld", action="store_true", help="ALLD: chosen + rejected")
    parser.add_argument("--audio_seconds", type=float, default=10.0)
    parser.add_argument("--clips", type=int, default=1)
    parser.add_argument("--text_tokens", type=int, default=400)
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--gpu_memory_gb", type=float, default=80.0)
    args = parser.parse_args(argv)
    if args.source:
        from transformers import AutoConfig

        from speechbrain_alld.hub import hub_offline

        config = AutoConfig.from_pretrained(args.source, local_files_only=hub_offline())
    else:
        config = qwen2_audio_7b_config()
    work = Workload(batch_size=args.batch_size, sequences=2 if args.alld else 1,
                    audio_seconds=args.audio_seconds, clips=args.clips,
                    text_tokens=args.text_tokens,
                    gradient_checkpointing=args.gradient_checkpointing)
    print(f"{'ALLD' if args.alld else 'SFT'} step: batch {work.batch_size} per GPU, "
          f"{work.tokens} tokens, gradient checkpointing {work.gradient_checkpointing}; "
          f"GB per GPU, (no) = over {args.gpu_memory_gb:g} GB")
    print(plan_table(config, work, gpu_memory=args.gpu_memory_gb * GB))


if __name__ == "__main__":
    main()
