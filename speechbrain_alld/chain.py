"""The ALLD chain's stages (ALLD-SPEC §5), each a function of its YAML block and its inputs.

    examples -> SFT warm-up -> sample y_a -> reference log-probs -> ALLD -> test

A recipe's ``train.py`` calls them in order; each takes the :class:`~speechbrain_alld.resume.
StageRunner`, the name of its YAML block, the block itself (``hparams[name]``) and the results of
the stages it reads, and returns its own :class:`~speechbrain_alld.resume.StageResult`. A stage
whose output exists with the same fingerprint (its block, the run options that change it and its
inputs) is skipped; one made with other settings raises
:class:`~speechbrain_alld.resume.StageMismatchError`. To drop, reorder or replace a stage, edit
``train.py`` and the YAML: any function with the same shape fits (e.g. another y_a sampler that
returns a result with ``rejected``).

The training stages build the SpeechBrain ``Brain`` from the objects their block declares:
``policy`` (a loader, e.g. ``!name:...AudioLLM.from_pretrained``), ``opt_class``,
``lr_scheduler``, ``epoch_counter``, ``checkpointer``, ``train_logger``, the data-loader options
and, for ALLD, ``loss``.
"""

from __future__ import annotations

import gc
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from speechbrain.utils.distributed import ddp_barrier, if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from speechbrain_alld.brain import ALLDBrain
from speechbrain_alld.dataset import collate_examples, make_dataset, prepare_examples
from speechbrain_alld.durable import file_fingerprint, write_json_atomic
from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.models.expert_reference import check_same_tokenizer
from speechbrain_alld.models.tiny import init_tiny_models
from speechbrain_alld.preference import alld_examples, sample_rejected, score_reference
from speechbrain_alld.resume import (
    TRAINING_RUN_OPTIONS,
    StageResult,
    StageRunner,
    effective_run_option,
    source_fingerprint,
    world_size,
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
    """Free a finished stage's model: SpeechBrain's checkpointer keeps a reference cycle to the
    Brain, so its tensors go only at a garbage collection."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _description_files(folder: str | Path, splits: Sequence[str]) -> list[Path]:
    files = [p for s in splits for t in ("mos", "ab")
             if (p := Path(folder) / f"{s}_{t}.json").is_file()]
    if not files:
        raise FileNotFoundError(f"no description manifests for {list(splits)} in {folder}: "
                                "run the describe step first")
    return files


def _json_ready(info: Mapping[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in info.items()}


# ---------------------------------------------------------------------------- examples, models
def examples_stage(runner: StageRunner, name: str, block: Mapping[str, Any]) -> StageResult:
    """The example manifests of every stage (:func:`~speechbrain_alld.dataset.
    prepare_examples`): the block holds ``descriptions_folder``, ``folder`` and that function's
    keyword arguments. Its input is the content of the description manifests."""
    folder = Path(block["folder"])
    splits = [block["train_split"], block["valid_split"], block["test_split"]]
    described = _description_files(block["descriptions_folder"], splits)
    fp = runner.fingerprint(name, block, inputs=[file_fingerprint(*described)])
    done = runner.finished(name, folder, fp)
    if done is not None:
        return done
    kwargs = {k: v for k, v in block.items() if k not in ("folder", "descriptions_folder")}
    info = run_on_main(prepare_examples, args=[block["descriptions_folder"], folder],
                       kwargs=kwargs)
    return runner.finish(name, folder, fp, _json_ready(info))


def tiny_models_stage(runner: StageRunner, name: str, block: Mapping[str, Any]) -> StageResult:
    """The embedded default's tiny tokenizer, policy and trained expert
    (:func:`~speechbrain_alld.models.tiny.init_tiny_models`): the block holds
    ``descriptions_folder``, ``train_split``, ``folder`` and that function's keyword arguments;
    the result holds ``policy`` and ``expert`` (model folders)."""
    folder = Path(block["folder"])
    inputs = _description_files(block["descriptions_folder"], [block["train_split"]])
    fp = runner.fingerprint(name, block, inputs=[file_fingerprint(*inputs)])
    done = runner.finished(name, folder, fp)
    if done is not None:
        return done
    kwargs = {k: v for k, v in block.items()
              if k not in ("folder", "descriptions_folder", "train_split")}
    info = run_on_main(init_tiny_models, args=[block["descriptions_folder"],
                                               block["train_split"], folder],
                       kwargs={**kwargs, "progress": runner.progress})
    return runner.finish(name, folder, fp, _json_ready(info))


# ---------------------------------------------------------------------------- Brain stages
def _loader(opts: Mapping[str, Any]) -> dict[str, Any]:
    return {**dict(opts), "collate_fn": collate_examples}


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
    """Fit ``policy`` with ``ALLDBrain`` (``stage`` ``"sft"`` or ``"alld"``) from the objects of
    ``block``, then load the checkpoint with the lowest valid loss.

    The number of optimiser steps (for ``lr_scheduler``) is ``ceil(train examples / processes /
    batch size / grad_accumulation_factor)`` per epoch.
    """
    sr = policy.sampling_rate
    train = make_dataset(train_manifest, sr, extra_keys)
    valid = make_dataset(valid_manifest, sr)
    counter = block["epoch_counter"]
    checkpointer = block["checkpointer"]
    checkpointer.add_recoverable("policy", policy)
    grad_accum = int(effective_run_option("grad_accumulation_factor", block, run_opts))
    batch_size = int(block["train_dataloader_opts"]["batch_size"])
    steps_per_epoch = math.ceil(len(train) / world_size() / batch_size / grad_accum)
    hparams = {**block, "stage": stage, "total_steps": steps_per_epoch * counter.limit,
               "reference": reference}
    brain = ALLDBrain(modules={"policy": policy}, opt_class=block["opt_class"], hparams=hparams,
                      run_opts=run_opts, checkpointer=checkpointer)
    brain.fit(counter, train, valid, train_loader_kwargs=_loader(block["train_dataloader_opts"]),
              valid_loader_kwargs=_loader(block["valid_dataloader_opts"]))
    checkpointer.recover_if_possible(min_key="loss")
    return brain


def _save_policy(policy: AudioLLM, folder: Path, merge: bool) -> None:
    if if_main_process():
        policy.save_pretrained(folder, merge=merge)
    ddp_barrier()


def sft_stage(runner: StageRunner, name: str, block: Mapping[str, Any], data: StageResult
              ) -> StageResult:
    """The supervised warm-up: ``block["policy"](block["source"])`` fitted on ``sft_train``
    (cross-entropy on the expert texts), saved to ``<folder>/model``.

    ``use_model`` (a model folder) skips the warm-up and hands that model on, e.g. ALLD straight
    from the base model.
    """
    folder = Path(block["folder"])
    if block.get("use_model"):
        source = str(block["use_model"])
        return StageResult(name, folder, source_fingerprint(source), {"model": source})
    fp = runner.fingerprint(name, block, inputs=[data, source_fingerprint(block["source"])],
                            run_options=TRAINING_RUN_OPTIONS)
    done = runner.finished(name, folder, fp)
    if done is not None:
        return done
    policy = block["policy"](block["source"])
    brain = fit_policy("sft", policy, block, runner.run_opts, data["sft_train"],
                       data["sft_valid"])
    _save_policy(policy, folder / "model", block["save_merged"])
    del policy, brain
    release_memory()
    return runner.finish(name, folder, fp, {"model": str(folder / "model")})


def sample_stage(runner: StageRunner, name: str, block: Mapping[str, Any], sft: StageResult,
                 data: StageResult) -> StageResult:
    """y_a: ``n_samples`` responses per ALLD item sampled from the SFT model
    (:func:`~speechbrain_alld.preference.sample_rejected`), resumable item by item; the result's
    ``rejected`` is a JSON file ``{key: {"samples": [...], "finished": [...]}}``."""
    folder = Path(block["folder"])
    fp = runner.fingerprint(name, block, inputs=[sft, data], run_options=("world_size",))
    done = runner.finished(name, folder, fp)
    if done is not None:
        return done
    items = json.loads(Path(data["alld_items"]).read_text(encoding="utf-8"))
    if runner.debug:
        n_debug = int(runner.option("debug_batches", 2)) * int(block["batch_size"])
        items = dict(list(items.items())[:n_debug])
    if not items:
        raise ValueError("no items left for ALLD: warmup_fraction=1 with alld_items='rest' "
                         "uses every item for the warm-up; set alld_items: all")
    run_on_main(folder.mkdir, kwargs={"parents": True, "exist_ok": True})
    store = folder / "rejected.jsonl"
    runner.claim(store, fp)
    policy = block["policy"](sft["model"])
    policy.to(run_device(runner.run_opts)).eval()
    rejected = sample_rejected(policy, items, store, n_samples=block["n_samples"],
                               temperature=block["temperature"], top_p=block["top_p"],
                               max_new_tokens=block["max_new_tokens"],
                               batch_size=block["batch_size"],
                               sample_rate=policy.sampling_rate, seed=block["seed"],
                               progress=runner.progress)
    del policy
    release_memory()
    if if_main_process():
        write_json_atomic(folder / "rejected.json", rejected)
    ddp_barrier()
    n = sum(len(r["finished"]) for r in rejected.values())
    n_finished = sum(sum(r["finished"]) for r in rejected.values())
    return runner.finish(name, folder, fp, {
        "rejected": str(folder / "rejected.json"), "items": data["alld_items"],
        "model": sft["model"], "n_samples": n, "n_finished": n_finished})


def reference_stage(runner: StageRunner, name: str, block: Mapping[str, Any],
                    sample: StageResult) -> StageResult:
    """The ALLD training examples (:func:`~speechbrain_alld.preference.alld_examples`: one per
    finished y_a, paired with an expert text y_t) and, once, the frozen expert's
    log pi_ref(y_t|x_t) and log pi_ref(y_a|x_t) (:func:`~speechbrain_alld.preference.
    score_reference`), so ALLD holds only the policy. With ``live: True`` nothing is scored here
    and the ALLD stage keeps the expert in memory. The result's ``train`` is the manifest."""
    folder = Path(block["folder"])
    fp = runner.fingerprint(name, block, inputs=[sample, source_fingerprint(block["source"])])
    done = runner.finished(name, folder, fp)
    if done is not None:
        return done
    items = json.loads(Path(sample["items"]).read_text(encoding="utf-8"))
    rejected = json.loads(Path(sample["rejected"]).read_text(encoding="utf-8"))
    items = {k: items[k] for k in rejected}
    examples = alld_examples(items, rejected, block["chosen"],
                             keep_truncated=runner.debug or block["keep_truncated"])
    if not examples:
        raise ValueError("every sampled y_a hit max_new_tokens: raise the sample stage's "
                         "max_new_tokens (or set keep_truncated: True, e.g. for ALLD without "
                         "the SFT warm-up)")
    run_on_main(folder.mkdir, kwargs={"parents": True, "exist_ok": True})
    if not block["live"]:
        from transformers import AutoTokenizer

        reference = block["expert"](block["source"], device=run_device(runner.run_opts))
        check_same_tokenizer(AutoTokenizer.from_pretrained(sample["model"]),
                             reference.tokenizer)
        store = folder / "reference.jsonl"
        runner.claim(store, fp)
        scores = score_reference(reference, examples, store, batch_size=block["batch_size"],
                                 progress=runner.progress)
        for key, ex in examples.items():
            ex["ref_chosen"] = scores[key]["ref_chosen"]
            ex["ref_rejected"] = scores[key]["ref_rejected"]
        del reference
        release_memory()
    manifest = folder / "alld_train.json"
    if if_main_process():
        write_json_atomic(manifest, examples)
    ddp_barrier()
    return runner.finish(name, folder, fp, {"train": str(manifest), "live": block["live"],
                                            "n_examples": len(examples)})


def alld_stage(runner: StageRunner, name: str, block: Mapping[str, Any], sft: StageResult,
               preference: StageResult, data: StageResult) -> StageResult:
    """ALLD: the SFT model (``block["policy"](sft["model"])``) fitted with ``block["loss"]`` on
    the preference examples, validated on ``valid``, saved to ``<folder>/model``. When the
    reference stage ran ``live``, ``block["expert"](block["expert_source"])`` scores every
    batch."""
    folder = Path(block["folder"])
    fp = runner.fingerprint(name, block, inputs=[sft, preference, data],
                            run_options=TRAINING_RUN_OPTIONS)
    done = runner.finished(name, folder, fp)
    if done is not None:
        return done
    policy = block["policy"](sft["model"])
    reference = None
    extra: tuple[str, ...] = ("chosen", "rejected")
    if preference["live"]:
        reference = block["expert"](block["expert_source"], device=run_device(runner.run_opts))
        check_same_tokenizer(policy.tokenizer, reference.tokenizer)
    else:
        extra += ("ref_chosen", "ref_rejected")
    brain = fit_policy("alld", policy, block, runner.run_opts, preference["train"],
                       data["valid"], extra_keys=extra, reference=reference)
    _save_policy(policy, folder / "model", block["save_merged"])
    train_stats = getattr(brain, "train_stats", None)
    del policy, brain, reference
    release_memory()
    return runner.finish(name, folder, fp, {"model": str(folder / "model"),
                                            "last_train_stats": train_stats})


# ---------------------------------------------------------------------------- test
def test_stage(runner: StageRunner, name: str, block: Mapping[str, Any],
               models: Mapping[str, StageResult], data: StageResult) -> StageResult:
    """Test each model named in ``block["models"]`` on the ``test`` manifest: generation,
    parsing and the ``mos_stats`` / ``ab_stats`` scores, written to
    ``<folder>/<model>/test_<model>_summary.json`` and ``..._items.jsonl``. Each model is its
    own resumable unit (a finished one is not tested again); the result maps
    ``<model>_test`` to its summary."""
    folder = Path(block["folder"])
    results: dict[str, Any] = {}
    fps = []
    for model_name in block["models"]:
        if model_name not in models:
            raise KeyError(f"test: no model {model_name!r} (have: {', '.join(models)})")
        sub = folder / model_name
        fp = runner.fingerprint(name, block, inputs=[data, models[model_name], model_name],
                                run_options=("eval_precision",))
        fps.append(fp)
        done = runner.finished(f"{name}/{model_name}", sub, fp)
        if done is None:
            run_on_main(sub.mkdir, kwargs={"parents": True, "exist_ok": True})
            policy = block["policy"](models[model_name]["model"])
            brain = ALLDBrain(modules={"policy": policy},
                              hparams={**block, "stage": model_name, "output_folder": str(sub),
                                       "test_output_folder": str(sub)},
                              run_opts=runner.run_opts)
            brain.evaluate(make_dataset(data["test"], policy.sampling_rate),
                           test_loader_kwargs=_loader(block["dataloader_opts"]))
            done = runner.finish(f"{name}/{model_name}", sub, fp,
                                 {"model": models[model_name]["model"],
                                  "test": brain.test_stats})
            del policy, brain
            release_memory()
        results[f"{model_name}_test"] = done["test"]
        results[f"{model_name}_model"] = done["model"]
    return StageResult(name, folder, "+".join(fps), results)
