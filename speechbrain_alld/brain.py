"""ALLDBrain: SFT and ALLD training of the audio-LLM policy as a SpeechBrain ``Brain``.

``hparams.stage`` selects the objective:

* ``"sft"``: cross-entropy on the expert text's tokens (prompt and padding masked);
* ``"alld"``: the ALLD loss over the policy's log-probs of the chosen (expert) and rejected
  (sampled) responses and the expert reference's precomputed log-probs (``ref_chosen``,
  ``ref_rejected`` in each example), or the reference computed live when ``hparams.reference``
  (an :class:`~speechbrain_alld.models.expert_reference.ExpertReference`) is given.

The hparams are one stage's YAML block (see ``recipes/*/ALLD/hparams/alld.yaml``): ``loss``
(for ALLD, :func:`~speechbrain_alld.losses.alld_loss` with its ``beta``, ``alpha``, ...
declared), ``lr_scheduler`` (a factory ``(optimizer, total_steps)``, e.g.
:func:`~speechbrain_alld.schedulers.warmup_cosine_scheduler`, stepped per optimiser step),
``epoch_counter``, ``train_logger``, ``mos_stats`` / ``ab_stats`` (see
:mod:`speechbrain_alld.metrics`), ``max_new_tokens`` and ``generate_every``; the stage adds
``stage`` and ``total_steps``.

Validation and test compute the SFT loss on the expert texts and, every ``generate_every``
epochs on validation (always on test), generate a text per item, parse it and update the
``mos_stats`` / ``ab_stats`` objects. ALLD training logs what DPO tools log, averaged over all
processes: ``rewards/chosen``, ``rewards/rejected``, ``rewards/margin``, ``rewards/accuracy``
and the policy's summed log-probs ``logps/chosen``, ``logps/rejected``. Only trainable
parameters are checkpointed (the policy's checkpoint hooks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import speechbrain as sb
import torch
from speechbrain.utils.logger import get_logger

from speechbrain_alld.dataset import TaskBatchSampler
from speechbrain_alld.durable import write_json_atomic, write_text_atomic
from speechbrain_alld.losses import regression_loss, sequence_logprobs, sft_loss
from speechbrain_alld.resume import world_size
from speechbrain_alld.sharding import (
    FSDPConfig,
    distributed_mode,
    shard_policy,
    sharded_optimizer_hooks,
)

logger = get_logger(__name__)


def gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order; ``[obj]`` without a process group."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(out, obj)
    return out


def reduce_means(sums: dict[str, float]) -> dict[str, float]:
    """Means of per-example sums over every process: ``sums`` holds totals and ``"n"``.

    Arguments
    ---------
    sums : dict
        ``{name: sum over this process's examples, ..., "n": number of examples}``.

    Returns
    -------
    ``{name: global sum / global n}`` (all processes' sums and counts added first, so the
    result is the mean over every example, whatever each process saw); empty when no
    process saw an example.

    Example
    -------
    >>> reduce_means({"rewards/margin": 3.0, "n": 2})
    {'rewards/margin': 1.5}
    >>> reduce_means({"n": 0})
    {}
    """
    keys = sorted(k for k in sums if k != "n")
    totals = torch.tensor([float(sums[k]) for k in keys] + [float(sums["n"])],
                          dtype=torch.float64)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
        totals = totals.to(device)
        torch.distributed.all_reduce(totals)
        totals = totals.cpu()
    n = float(totals[-1])
    return {k: float(totals[i]) / n for i, k in enumerate(keys)} if n else {}


class _ScheduledBrain(sb.Brain):
    """What both brains share: the declared optimiser (``opt_class``) over the trainable
    parameters with the declared schedule (``hparams.lr_scheduler(optimizer,
    total_steps=hparams.total_steps)``), both checkpointed, and the end-of-stage logging,
    checkpointing and test files."""

    def init_optimizers(self) -> None:
        params = [p for p in self.modules.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError("the model has no trainable parameters (finetune='frozen' "
                               "without a trainable projector?)")
        self.optimizer = self.opt_class(params)
        self.optimizers_dict = {"opt_class": self.optimizer}
        total = int(getattr(self.hparams, "total_steps", 0) or 0)
        self.lr_scheduler = self.hparams.lr_scheduler(self.optimizer, total_steps=total)
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer,
                                              **self._optimizer_hooks())
            self.checkpointer.add_recoverable("lr_scheduler", self.lr_scheduler)

    def _optimizer_hooks(self) -> dict[str, Any]:
        return {}

    def on_fit_batch_end(self, batch, outputs, loss, should_step) -> None:
        if should_step:
            self.lr_scheduler.step()

    def _report_stage(self, stage, stage_loss, epoch, stats: dict[str, Any], *, tag: str,
                      items: Any, meta: dict[str, Any] | None = None,
                      summary_extra: dict[str, Any] | None = None) -> None:
        """Keep the train stats; log valid and checkpoint (lowest loss kept); log the test and
        write ``test_<tag>_items.jsonl`` (``items()``, one JSON line each) and
        ``test_<tag>_summary.json`` to ``test_output_folder`` (else ``output_folder``)."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        meta = dict(meta or {})
        if stage == sb.Stage.VALID:
            self.valid_stats = stats
            self.hparams.train_logger.log_stats(
                stats_meta={**meta, "epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"]},
                train_stats=getattr(self, "train_stats", None), valid_stats=stats)
            if self.checkpointer is not None:
                self.checkpointer.save_and_keep_only(meta={"loss": stage_loss},
                                                     min_keys=["loss"])
            return
        counter = getattr(self.hparams, "epoch_counter", None)
        if counter is not None:
            meta["epoch loaded"] = counter.current
        self.hparams.train_logger.log_stats(stats_meta=meta, test_stats=stats)
        self.test_stats = stats
        out_dir = Path(getattr(self.hparams, "test_output_folder", self.hparams.output_folder))
        if sb.utils.distributed.if_main_process():
            write_text_atomic(out_dir / f"test_{tag}_items.jsonl", "".join(
                json.dumps(item, ensure_ascii=False) + "\n" for item in items()))
            write_json_atomic(out_dir / f"test_{tag}_summary.json",
                              {**stats, **(summary_extra or {})})


class ALLDBrain(_ScheduledBrain):
    """Trains :class:`~speechbrain_alld.models.audio_llm.AudioLLM` with SFT or ALLD.

    ``hparams.distributed``: ``"ddp"`` (default: SpeechBrain's DDP, a full copy of the policy
    per process) or ``"fsdp"`` (the policy sharded with FSDP2 over the processes, see
    :mod:`speechbrain_alld.sharding`; ``hparams.fsdp`` holds :class:`~speechbrain_alld.
    sharding.FSDPConfig` options). Under FSDP the policy is not moved to the device whole:
    each process moves its own shards, and checkpoints hold the sharded weights and optimiser
    state. Validation and test split their items over the processes and gather the texts and
    per-example losses before scoring; their loss is the token-mean cross-entropy over every
    item, whatever the batching or the number of processes.
    """

    def __init__(self, modules=None, opt_class=None, hparams=None, run_opts=None,
                 checkpointer=None) -> None:
        shard = distributed_mode(hparams or {}) == "fsdp"
        super().__init__(modules=None if shard else modules, opt_class=opt_class,
                         hparams=hparams, run_opts=run_opts, checkpointer=checkpointer)
        if shard:
            self.modules = torch.nn.ModuleDict(modules)

    def _wrap_distributed(self) -> None:
        if distributed_mode(self.hparams) != "fsdp":
            super()._wrap_distributed()
            return
        shard_policy(self.modules.policy, FSDPConfig.from_mapping(
            getattr(self.hparams, "fsdp", None)), self.device)

    def _optimizer_hooks(self) -> dict[str, Any]:
        return sharded_optimizer_hooks(self.policy) if self.policy.sharded else {}

    def _train_loader_specifics(self, dataset, loader_kwargs):
        # A task-grouped sampler is already this process's share of the batches: SpeechBrain's
        # DistributedSamplerWrapper would split it again (and breaks on a one-batch share).
        if isinstance(loader_kwargs.get("batch_sampler"), TaskBatchSampler):
            self.train_sampler = loader_kwargs["batch_sampler"]  # set_epoch each epoch
            return loader_kwargs
        return super()._train_loader_specifics(dataset, loader_kwargs)

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **loader_kwargs):
        if stage != sb.Stage.TRAIN:
            self._eval_order = {key: k for k, key in enumerate(dataset.data_ids)}
            if world_size() > 1 and loader_kwargs.get("sampler") is None:
                # Every process gets as many items (the last ones repeat a few), so a sharded
                # policy runs as many forwards on each; the repeats are dropped when gathering.
                loader_kwargs = {**loader_kwargs, "sampler": torch.utils.data.DistributedSampler(
                    dataset, shuffle=False, drop_last=False)}
        return super().make_dataloader(dataset, stage, ckpt_prefix, **loader_kwargs)

    @property
    def policy(self) -> Any:
        """The policy module, unwrapped from DDP / DataParallel."""
        module = self.modules.policy
        return module.module if hasattr(module, "module") and not hasattr(
            module, "prepare_batch") else module

    # ------------------------------------------------------------------ forward / loss
    def _is_alld_train(self, stage: sb.Stage) -> bool:
        return self.hparams.stage == "alld" and stage == sb.Stage.TRAIN

    def compute_forward(self, batch, stage):
        policy = self.policy
        if self._is_alld_train(stage):
            inputs = policy.prepare_batch(batch.audio + batch.audio,
                                          batch.instruction + batch.instruction,
                                          list(batch.chosen) + list(batch.rejected))
            inputs["audio_repeats"] = 2  # chosen and rejected share each clip: encode it once
        else:
            inputs = policy.prepare_batch(batch.audio, batch.instruction, batch.response)
        return self.modules.policy(inputs), inputs

    def compute_objectives(self, predictions, batch, stage):
        logits, inputs = predictions
        if self._is_alld_train(stage):
            logp, lengths = sequence_logprobs(logits, inputs["labels"])
            n = len(batch)
            ref_chosen, ref_rejected = self._reference_logprobs(batch)
            out = self.hparams.loss(logp[:n], logp[n:], ref_chosen, ref_rejected,
                                    chosen_lengths=lengths[:n], rejected_lengths=lengths[n:])
            sums = {"rewards/chosen": out.chosen_rewards.sum(),
                    "rewards/rejected": out.rejected_rewards.sum(),
                    "rewards/margin": out.reward_margin * n,
                    "rewards/accuracy": out.reward_accuracy * n,
                    "logps/chosen": logp[:n].detach().sum(),
                    "logps/rejected": logp[n:].detach().sum()}
            for key, value in sums.items():
                self._reward[key] = self._reward.get(key, 0.0) + float(value)
            self._reward["n"] += n
            return out.loss
        if stage == sb.Stage.TRAIN:
            return sft_loss(logits, inputs["labels"])
        # One log-softmax gives both the per-item sums the stage end gathers and the batch loss.
        logp, lengths = sequence_logprobs(logits, inputs["labels"])
        for key, lp, n in zip(batch.id, logp.tolist(), lengths.tolist()):
            self._eval_nll[key] = (-lp, n)
        if self._generating:
            self._generate_and_score(batch)
        return -logp.sum() / lengths.sum().clamp(min=1)

    def _reference_logprobs(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        reference = getattr(self.hparams, "reference", None)
        if reference is not None:  # live reference (for comparison with precomputed)
            chosen, _ = reference.logprobs(batch.prompt, batch.chosen)
            rejected, _ = reference.logprobs(batch.prompt, batch.rejected)
            return chosen.to(self.device), rejected.to(self.device)
        as_tensor = lambda xs: torch.tensor([float(x) for x in xs], device=self.device)  # noqa: E731
        return as_tensor(batch.ref_chosen), as_tensor(batch.ref_rejected)

    @torch.no_grad()
    def _generate_and_score(self, batch) -> None:
        texts = self.policy.generate(batch.audio, batch.instruction,
                                     max_new_tokens=self.hparams.max_new_tokens)
        for task, stats in (("mos", self._mos_stats), ("ab", self._ab_stats)):
            idx = [k for k, t in enumerate(batch.task) if t == task]
            if not idx:
                continue
            targets = [batch.mos[k] if task == "mos" else batch.winner[k] for k in idx]
            args = ([batch.id[k] for k in idx], [texts[k] for k in idx], targets,
                    [batch.response[k] for k in idx])
            if task == "mos" and hasattr(batch, "dims"):
                stats.append(*args, dimensions=[batch.dims[k] for k in idx])
            else:
                stats.append(*args)

    # ------------------------------------------------------------------ stage hooks
    def on_stage_start(self, stage, epoch=None) -> None:
        self._reward: dict[str, float] = {"n": 0}
        self._eval_nll: dict[str, tuple[float, int]] = {}
        every = int(getattr(self.hparams, "generate_every", 1) or 0)
        self._generating = stage == sb.Stage.TEST or (
            stage == sb.Stage.VALID and every > 0 and epoch is not None and epoch % every == 0)
        self._mos_stats = self.hparams.mos_stats()
        self._ab_stats = self.hparams.ab_stats()

    def _stage_stats(self, stage, stage_loss) -> dict[str, Any]:
        stats: dict[str, Any] = {"loss": stage_loss}
        if stage == sb.Stage.TRAIN and self.hparams.stage == "alld":
            stats.update(reduce_means(self._reward))
        if self._generating:
            for prefix, st in (("mos", self._mos_stats), ("ab", self._ab_stats)):
                if st.texts:
                    summary = st.summarize()
                    for key, value in summary.items():
                        if key != "signature" and isinstance(value, (int, float)):
                            stats[f"{prefix}_{key}"] = value
                    if "signature" in summary:
                        self.bleu_signature = summary["signature"]
        return stats

    def _gather_eval(self) -> float:
        """Gather every process's per-example losses and texts (each item once, in dataset
        order) and return the token-mean loss over all items."""
        order = getattr(self, "_eval_order", {})
        nll: dict[str, tuple[float, int]] = {}
        for part in gather_objects(self._eval_nll):
            nll.update(part)
        for stats in (self._mos_stats, self._ab_stats):
            stats.merge_unique(gather_objects(stats.entries()),
                               key=lambda item: order.get(item, len(order)))
        tokens = sum(n for _, n in nll.values())
        return sum(v for v, _ in nll.values()) / tokens if tokens else float("nan")

    def on_stage_end(self, stage, stage_loss, epoch=None) -> None:
        if stage != sb.Stage.TRAIN:
            stage_loss = self._gather_eval()
        self._report_stage(
            stage, stage_loss, epoch, self._stage_stats(stage, stage_loss),
            tag=self.hparams.stage, meta={"stage": self.hparams.stage},
            items=lambda: self._mos_stats.items() + self._ab_stats.items(),
            summary_extra={"bleu_signature": getattr(self, "bleu_signature", None)})


class RegressionBrain(_ScheduledBrain):
    """Trains :class:`~speechbrain_alld.models.regression.RegressionBaseline` with MSE.

    Batches (SpeechBrain ``PaddedBatch``) hold ``features`` (``[B, mel, T]``, padded to the
    window), ``n_frames`` and ``targets`` (``[B, K]`` in the model's ``targets`` order, ``nan``
    where a rating is missing). Valid and test collect the predictions in
    ``hparams.regression_stats`` (:class:`~speechbrain_alld.stats.RegressionStats`) and score
    MOS (MSE/LCC/SRCC) and each dimension; the
    test writes ``test_regression_summary.json`` and ``test_regression_items.jsonl`` to
    ``hparams.output_folder``.
    """

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        return self.modules.model(batch.features.data, batch.n_frames)

    def compute_objectives(self, predictions, batch, stage):
        targets = batch.targets.data.to(predictions.device)
        loss = regression_loss(predictions, targets)
        if stage != sb.Stage.TRAIN:
            self._stats.append(list(batch.id), predictions.detach().float().cpu(),
                               targets.detach().float().cpu())
        return loss

    def on_stage_start(self, stage, epoch=None) -> None:
        self._stats = self.hparams.regression_stats(self.modules.model.targets)

    def on_stage_end(self, stage, stage_loss, epoch=None) -> None:
        stats: dict[str, Any] = {"loss": stage_loss}
        if stage != sb.Stage.TRAIN:
            stats.update({k: v for k, v in self._stats.summarize().items() if k in (
                "mos_mse", "mos_lcc", "mos_srcc") or stage == sb.Stage.TEST})
        self._report_stage(stage, stage_loss, epoch, stats, tag="regression",
                           items=self._stats.items)
