"""Training a policy from a stage's YAML block with ``ALLDBrain``, and the helpers the stages share.

:func:`fit_policy` builds the Brain from the objects a block declares (``opt_class``,
``lr_scheduler``, ``epoch_counter``, ``checkpointer``, ``train_logger``, loaders, ``loss``),
fits it and loads the best checkpoint; :func:`save_policy` writes the model on the main process;
:func:`release_memory` frees a finished stage's model.
"""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks
from speechbrain.utils.distributed import ddp_barrier, if_main_process
from speechbrain.utils.logger import get_logger

from speechbrain_alld.brain import ALLDBrain
from speechbrain_alld.dataset import collate_examples, make_dataset, task_batch_sampler
from speechbrain_alld.hub import hub_offline, resolve_dtype
from speechbrain_alld.memory_plan import (
    RUNTIME_RESERVE,
    PolicyShape,
    Workload,
    alternatives,
    check_fit,
    format_plan,
    memory_plan,
)
from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.resume import effective_run_option, rank_world, world_size
from speechbrain_alld.sharding import (
    FSDPConfig,
    distributed_mode,
    gathered_state_dict,
    load_sharded_policy,
    save_sharded_policy,
)

logger = get_logger(__name__)


def run_device(run_opts: Any) -> str:
    """The device of work done outside a Brain (the Brain's rule: ``cuda:LOCAL_RANK``)."""
    device = run_opts.get("device") if hasattr(run_opts, "get") else None
    if device:
        return str(device)
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def release_memory() -> None:
    """Free a finished stage's model: the Brain and its checkpointer form reference cycles, so
    their tensors go only at a garbage collection; then return the cached CUDA blocks."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@register_checkpoint_hooks
class ProcessCount:
    """A checkpoint entry recording how many processes trained: a mid-epoch checkpoint's data
    position counts batches per process, so it resumes only on as many processes (end-of-epoch
    checkpoints, weights and optimiser state included, load on any number)."""

    @mark_as_saver
    def save(self, path: str | Path) -> None:
        Path(path).write_text(str(world_size()), encoding="utf-8")

    @mark_as_loader
    def load(self, path: str | Path, end_of_epoch: bool = False) -> None:
        saved = int(Path(path).read_text(encoding="utf-8"))
        if not end_of_epoch and saved != world_size():
            raise RuntimeError(
                f"{Path(path).parent} is a mid-epoch checkpoint written by {saved} process(es); "
                f"resume it with {saved} (now {world_size()}), or delete it to restart that "
                "epoch from the last end-of-epoch checkpoint on any number of processes")


def loader_options(opts: Mapping[str, Any]) -> dict[str, Any]:
    """A block's data-loader options with the example collation added."""
    return {**dict(opts), "collate_fn": collate_examples}


def plan_memory(stage: str, block: Mapping[str, Any], source: str | Path, run_opts: Any
                ) -> dict[str, float] | None:
    """Log the per-GPU memory plan of a training stage and, on a GPU, refuse a stage that
    cannot fit the visible memory, before any weight is read (see
    :mod:`speechbrain_alld.memory_plan`).

    The policy's settings come from the block's ``policy`` loader (``finetune``, ``lora_r``,
    ``train_encoder``, ``gradient_checkpointing``, ``dtype``), its config from ``source``; the
    step from ``train_dataloader_opts`` and the block's ``memory_plan`` mapping
    (``audio_seconds``, ``clips``, ``text_tokens``; ``check: False`` only logs).

    Returns
    -------
    The plan, or None when the loader's settings cannot be read (then nothing is checked).
    """
    settings = dict(getattr(block["policy"], "keywords", None) or {})
    options = dict(block.get("memory_plan") or {})
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(source), local_files_only=hub_offline())
    except (OSError, ValueError) as err:
        logger.warning("memory plan skipped: no config for %s (%s)", source, err)
        return None
    dtype = resolve_dtype(settings.get("dtype", "auto"))
    if dtype in ("auto", None):
        dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    dtype = resolve_dtype(dtype) if isinstance(dtype, str) else dtype
    load_bytes = torch.empty((), dtype=dtype or torch.float32).element_size()

    def shape_for(finetune: str) -> PolicyShape:
        return PolicyShape.from_config(
            config, finetune=finetune, lora_r=int(settings.get("lora_r", 8)),
            lora_target=settings.get("lora_target"),
            train_projector=bool(settings.get("train_projector", True)),
            train_encoder=bool(settings.get("train_encoder", False)), load_bytes=load_bytes)

    work = Workload(batch_size=int(block["train_dataloader_opts"]["batch_size"]),
                    sequences=2 if stage == "alld" else 1,
                    audio_seconds=float(options.get("audio_seconds", 10.0)),
                    clips=int(options.get("clips", 1)),
                    text_tokens=int(options.get("text_tokens", 400)),
                    gradient_checkpointing=bool(settings.get("gradient_checkpointing", False)))
    mode = distributed_mode(block)
    offload = mode == "fsdp" and FSDPConfig.from_mapping(block.get("fsdp")).cpu_offload
    finetune = str(settings.get("finetune", "lora"))
    world = world_size()
    device = run_device(run_opts)
    on_gpu = device.startswith("cuda") and torch.cuda.is_available()
    plan = memory_plan(shape_for(finetune), work, world=world, distributed=mode,
                       cpu_offload=offload, compute_bytes=min(load_bytes, 4),
                       runtime=RUNTIME_RESERVE if on_gpu else 0.0)
    logger.info("%s, %d process(es), %s, %s: %s", stage, world, mode, finetune,
                format_plan(plan, stage))
    if on_gpu and options.get("check", True):
        available = float(torch.cuda.mem_get_info(torch.device(device))[1])
        check_fit(plan, available, alternatives(
            shape_for, work, {"distributed": mode, "finetune": finetune,
                              "cpu_offload": offload}, world),
            what=f"the {stage} stage ({mode}, finetune: {finetune})")
    return plan


def fit_policy(
    stage: str,
    policy: AudioLLM,
    block: Mapping[str, Any],
    run_opts: Any,
    train_manifest: str | Path,
    valid_manifest: str | Path,
    *,
    extra_keys: Sequence[str] = (),
    reference: Any = None,
) -> ALLDBrain:
    """Fit ``policy`` with ``ALLDBrain`` from the objects of ``block``, then load the checkpoint
    with the lowest valid loss.

    Arguments
    ---------
    stage : str
        ``"sft"`` or ``"alld"``: the Brain's objective.
    policy : AudioLLM
        The model to train (added to ``block["checkpointer"]``).
    block : mapping
        The stage's YAML block: ``distributed`` (``ddp`` / ``fsdp``) and ``fsdp``,
        ``opt_class``, ``lr_scheduler``, ``epoch_counter``,
        ``checkpointer``, ``train_logger``, ``train_dataloader_opts``, ``valid_dataloader_opts``,
        ``mos_stats``, ``ab_stats``, ``max_new_tokens``, ``generate_every`` (and ``loss`` for
        ALLD); run options such as ``precision`` are read from it as SpeechBrain does.
    run_opts : mapping or RunOptions
        SpeechBrain run options.
    train_manifest, valid_manifest : str or Path
        Example manifests.
    extra_keys : sequence of str
        Further example fields the batches carry (ALLD: the responses and reference scores).
    reference : ExpertReference, optional
        A live expert reference (ALLD without precomputed scores).

    Returns
    -------
    ALLDBrain
        The fitted Brain; ``block["checkpointer"]`` holds only its declared recoverables again
        (the policy, optimiser and Brain it took are removed). The schedule spans
        ``ceil(train examples / processes / batch size / grad_accumulation_factor)`` optimiser
        steps per epoch, or SpeechBrain's ``optimizer_step_limit`` (in the block or on the
        command line) when that is smaller: training stops there.
    """
    sr = policy.sampling_rate
    train = make_dataset(train_manifest, sr, extra_keys)
    valid = make_dataset(valid_manifest, sr)
    counter = block["epoch_counter"]
    checkpointer = block["checkpointer"]
    declared = set(checkpointer.recoverables)
    checkpointer.add_recoverable("processes", ProcessCount(), optional_load=True)
    if distributed_mode(block) == "fsdp":  # every process writes its shards
        checkpointer.add_recoverable("policy", policy, custom_save_hook=save_sharded_policy,
                                     custom_load_hook=load_sharded_policy)
    else:
        checkpointer.add_recoverable("policy", policy)
    grad_accum = int(effective_run_option("grad_accumulation_factor", block, run_opts))
    train_opts = loader_options(block["train_dataloader_opts"])
    batch_size = int(train_opts["batch_size"])
    if train_opts.pop("group_by_task", False):
        rank, world = rank_world()
        sampler = task_batch_sampler(train, batch_size,
                                     int(os.environ.get("SB_GLOBAL_SEED", 563375142)),
                                     num_replicas=world, rank=rank)
        for key in ("batch_size", "shuffle", "drop_last"):
            train_opts.pop(key, None)
        train_opts["batch_sampler"] = sampler  # this process's share (ALLDBrain keeps it)
        steps_per_epoch = math.ceil(len(sampler) / grad_accum)
    else:
        steps_per_epoch = math.ceil(len(train) / world_size() / batch_size / grad_accum)
    total_steps = steps_per_epoch * counter.limit
    limit = effective_run_option("optimizer_step_limit", block, run_opts)
    if limit:  # SpeechBrain stops there; the schedule ends there too
        total_steps = min(total_steps, int(limit))
    hparams = {**block, "stage": stage, "total_steps": total_steps, "reference": reference}
    brain = ALLDBrain(modules={"policy": policy}, opt_class=block["opt_class"], hparams=hparams,
                      run_opts=run_opts, checkpointer=checkpointer)
    brain.fit(counter, train, valid,
              train_loader_kwargs=train_opts,
              valid_loader_kwargs=loader_options(block["valid_dataloader_opts"]))
    checkpointer.recover_if_possible(min_key="loss")
    # The YAML's checkpointer outlives the stage: hand back what the stage added to it (the
    # policy, the optimiser, the Brain), or the model stays in memory for the rest of the run.
    for name in set(checkpointer.recoverables) - declared:
        for table in (checkpointer.recoverables, checkpointer.optional_recoverables,
                      checkpointer.custom_load_hooks, checkpointer.custom_save_hooks):
            table.pop(name, None)
    return brain


def save_policy(policy: AudioLLM, folder: Path, merge: bool) -> None:
    """Save ``policy`` in Hugging Face format on the main process; every process waits. A
    sharded policy's weights are first gathered on the main process's CPU."""
    state = gathered_state_dict(policy) if policy.sharded else None
    if if_main_process():
        policy.save_pretrained(folder, merge=merge, state_dict=state)
    del state
    ddp_barrier()
