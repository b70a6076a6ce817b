"""The ALLD chain's stages (ALLD-SPEC §5), each a function of its YAML block and its inputs.

    examples -> SFT warm-up -> sample y_a -> reference log-probs -> ALLD -> test

(the test stage lives in :mod:`speechbrain_alld.chain_scoring` and is re-exported here)

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

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from speechbrain.utils.distributed import ddp_barrier, if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from speechbrain_alld.chain_scoring import test_stage
from speechbrain_alld.dataset import prepare_examples
from speechbrain_alld.durable import file_fingerprint, fingerprint, write_json_atomic
from speechbrain_alld.hub import hub_offline
from speechbrain_alld.models.expert_reference import check_same_tokenizer
from speechbrain_alld.models.tiny import init_tiny_models
from speechbrain_alld.preference import alld_examples, sample_rejected, score_reference
from speechbrain_alld.pretraining import file_hashes
from speechbrain_alld.resume import (
    TRAINING_RUN_OPTIONS,
    StageResult,
    StageRunner,
    source_fingerprint,
)
from speechbrain_alld.training import (
    fit_policy,
    plan_memory,
    release_memory,
    run_device,
    save_policy,
)

logger = get_logger(__name__)

__all__ = ["alld_stage", "examples_stage", "reference_stage", "sample_stage", "sft_stage",
           "test_stage", "tiny_models_stage"]


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
    prepare_examples`); its input is the content of the description manifests.

    Arguments
    ---------
    runner : StageRunner
        Decides whether the stage runs and records it.
    name : str
        The stage's YAML block name (its fingerprint hashes that block).
    block : mapping
        ``descriptions_folder``, ``folder`` and ``prepare_examples``' keyword arguments.

    Returns
    -------
    StageResult
        ``sft_train``, ``sft_valid``, ``alld_items``, ``valid``, ``test`` (manifest paths),
        ``n_sft`` and ``n_alld_items``.
    """
    folder = Path(block["folder"])
    splits = [block["train_split"], block["valid_split"], block["test_split"]]
    described = _description_files(block["descriptions_folder"], splits)
    fp, done = runner.lookup(name, block, folder, inputs=[file_fingerprint(*described)])
    if done is not None:
        return done
    kwargs = {k: v for k, v in block.items() if k not in ("folder", "descriptions_folder")}
    info = run_on_main(prepare_examples, args=[block["descriptions_folder"], folder],
                       kwargs=kwargs)
    return runner.finish(name, folder, fp, _json_ready(info))


def tiny_models_stage(runner: StageRunner, name: str, block: Mapping[str, Any]) -> StageResult:
    """The embedded default's tiny tokenizer, policy and trained expert
    (:func:`~speechbrain_alld.models.tiny.init_tiny_models`).

    Arguments
    ---------
    runner : StageRunner
        Decides whether the stage runs and records it.
    name : str
        The stage's YAML block name.
    block : mapping
        ``descriptions_folder``, ``train_split``, ``folder`` and ``init_tiny_models``' keyword
        arguments (``pretrained_policy``: a pretrained policy folder; ``expert_from``: an
        expert folder to copy instead of training one; both fingerprinted by their files'
        hashes).

    Returns
    -------
    StageResult
        ``policy`` and ``expert`` (Hugging Face model folders) and the expert's training loss.
    """
    folder = Path(block["folder"])
    inputs = [file_fingerprint(*_description_files(block["descriptions_folder"],
                                                    [block["train_split"]]))]
    for key in ("pretrained_policy", "expert_from"):  # their content, wherever they lie
        if block.get(key):
            inputs.append(fingerprint(file_hashes(block[key])))
    fp, done = runner.lookup(name, block, folder, inputs=inputs)
    if done is not None:
        return done
    kwargs = {k: v for k, v in block.items()
              if k not in ("folder", "descriptions_folder", "train_split")}
    info = run_on_main(init_tiny_models, args=[block["descriptions_folder"],
                                               block["train_split"], folder],
                       kwargs={**kwargs, "progress": runner.progress})
    return runner.finish(name, folder, fp, _json_ready(info))


def sft_stage(runner: StageRunner, name: str, block: Mapping[str, Any], data: StageResult
              ) -> StageResult:
    """The supervised warm-up: ``block["policy"](block["source"])`` fitted on ``sft_train``
    (cross-entropy on the expert texts), saved to ``<folder>/model``.

    ``use_model`` (a model folder) skips the warm-up and hands that model on, e.g. ALLD straight
    from the base model.

    Arguments
    ---------
    runner : StageRunner
        Decides whether the stage runs and records it.
    name : str
        The stage's YAML block name (its fingerprint hashes that block).
    block : mapping
        ``folder``, ``source``, ``policy`` (a loader), ``save_merged``, ``use_model`` and what
        :func:`fit_policy` reads.
    data : StageResult
        The examples stage (``sft_train``, ``sft_valid``).

    Returns
    -------
    StageResult
        ``model``: the SFT model folder (Hugging Face format).
    """
    folder = Path(block["folder"])
    if block.get("use_model"):
        source = str(block["use_model"])
        if not Path(source).is_dir() and (source.count("/") > 1 or source.startswith((".", "/"))):
            raise FileNotFoundError(f"{name}.use_model: {source} is not a model folder (and "
                                    "not a hub id of the form owner/name)")
        return StageResult(name, folder, source_fingerprint(source), {"model": source})
    fp, done = runner.lookup(name, block, folder,
                             inputs=[data, source_fingerprint(block["source"])],
                             run_options=TRAINING_RUN_OPTIONS)
    if done is not None:
        return done
    plan_memory("sft", block, block["source"], runner.run_opts)
    policy = block["policy"](block["source"])
    brain = fit_policy("sft", policy, block, runner.run_opts, data["sft_train"],
                       data["sft_valid"])
    save_policy(policy, folder / "model", block["save_merged"])
    del policy, brain
    release_memory()
    return runner.finish(name, folder, fp, {"model": str(folder / "model")})


def sample_stage(runner: StageRunner, name: str, block: Mapping[str, Any], sft: StageResult,
                 data: StageResult) -> StageResult:
    """y_a: ``n_samples`` responses per ALLD item sampled from the SFT model
    (:func:`~speechbrain_alld.preference.sample_rejected`), resumable item by item; the result's
    ``rejected`` is a JSON file ``{key: {"samples": [...], "finished": [...]}}``.

    Arguments
    ---------
    runner : StageRunner
        Decides whether the stage runs and records it.
    name : str
        The stage's YAML block name (its fingerprint hashes that block).
    block : mapping
        ``folder``, ``policy`` (a frozen loader), ``n_samples``, ``temperature``, ``top_p``,
        ``top_k`` (0: none), ``max_new_tokens``, ``batch_size``, ``seed``.
    sft : StageResult
        The model to sample from (``model``).
    data : StageResult
        The examples stage (``alld_items``).

    Returns
    -------
    StageResult
        ``rejected``, ``items`` and ``model`` (paths), ``n_samples`` and ``n_finished``.
    """
    folder = Path(block["folder"])
    fp, done = runner.lookup(name, block, folder, inputs=[sft, data],
                             run_options=("world_size",))
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
                               top_k=block["top_k"],
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
    and the ALLD stage keeps the expert in memory.

    Arguments
    ---------
    runner : StageRunner
        Decides whether the stage runs and records it.
    name : str
        The stage's YAML block name (its fingerprint hashes that block).
    block : mapping
        ``folder``, ``source`` (the expert), ``expert`` (a loader), ``chosen``,
        ``keep_truncated``, ``live``, ``batch_size``.
    sample : StageResult
        A y_a sampling stage (``rejected``, ``items``, ``model``).

    Returns
    -------
    StageResult
        ``train`` (the ALLD example manifest), ``live`` and ``n_examples``.
    """
    folder = Path(block["folder"])
    fp, done = runner.lookup(name, block, folder,
                             inputs=[sample, source_fingerprint(block["source"])])
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
        policy_tokenizer = AutoTokenizer.from_pretrained(sample["model"],
                                                         local_files_only=hub_offline())
        check_same_tokenizer(policy_tokenizer, reference.tokenizer)
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
    batch.

    Arguments
    ---------
    runner : StageRunner
        Decides whether the stage runs and records it.
    name : str
        The stage's YAML block name (its fingerprint hashes that block).
    block : mapping
        ``folder``, ``policy`` (a loader), ``loss``, ``expert``, ``expert_source``,
        ``save_merged`` and what :func:`fit_policy` reads.
    sft : StageResult
        The model ALLD starts from (``model``).
    preference : StageResult
        The reference stage (``train``, ``live``).
    data : StageResult
        The examples stage (``valid``).

    Returns
    -------
    StageResult
        ``model`` (the ALLD model folder) and ``last_train_stats``.
    """
    folder = Path(block["folder"])
    fp, done = runner.lookup(name, block, folder, inputs=[sft, preference, data],
                             run_options=TRAINING_RUN_OPTIONS)
    if done is not None:
        return done
    plan_memory("alld", block, sft["model"], runner.run_opts)
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
    save_policy(policy, folder / "model", block["save_merged"])
    train_stats = getattr(brain, "train_stats", None)
    del policy, brain, reference
    release_memory()
    return runner.finish(name, folder, fp, {"model": str(folder / "model"),
                                            "last_train_stats": train_stats})


# ---------------------------------------------------------------------------- test
