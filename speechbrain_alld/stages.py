"""The ALLD training chain, one resumable stage at a time (ALLD-SPEC §5).

    examples -> [tiny models] -> SFT warm-up -> sample y_a -> reference log-probs -> ALLD -> test

Each stage writes its output under ``save_folder`` and is skipped when that output exists, so
``python train.py hparams/alld.yaml`` can be rerun after an interruption. Sampling and scoring
append every finished item to a :class:`~speechbrain_alld.jsonl_store.JsonlStore`, so they resume
mid-way without repeating work; the Brain stages resume from SpeechBrain checkpoints (also
mid-epoch with ``--ckpt_interval_steps``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import speechbrain as sb
import torch
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger
from tqdm.auto import tqdm

from speechbrain_alld.brain import ALLDBrain
from speechbrain_alld.corpora.prepare import write_json_atomic
from speechbrain_alld.dataset import (
    collate_examples,
    eval_items,
    load_descriptions,
    make_dataset,
    mix_tasks,
    sft_examples,
    split_items,
    write_examples,
)
from speechbrain_alld.jsonl_store import JsonlStore
from speechbrain_alld.losses import sft_loss
from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.models.expert_reference import ExpertReference, check_same_tokenizer
from speechbrain_alld.models.tiny import (
    build_tiny_causal_lm,
    build_tiny_qwen2_audio,
    train_tiny_tokenizer,
)

logger = get_logger(__name__)

DONE = "done.json"


def _opts_hash(opts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(opts, sort_keys=True, default=str).encode()).hexdigest()


def _done(folder: Path) -> dict[str, Any] | None:
    path = folder / DONE
    return json.loads(path.read_text()) if path.is_file() else None


def _mark_done(folder: Path, info: Mapping[str, Any]) -> None:
    if if_main_process():
        write_json_atomic(folder / DONE, dict(info))


# ---------------------------------------------------------------------------- examples
def prepare_examples(
    descriptions_folder: str | Path,
    out_folder: str | Path,
    *,
    train_split: str,
    valid_split: str,
    test_split: str,
    tasks: Sequence[str] = ("mos", "ab"),
    warmup_fraction: float = 0.5,
    alld_items: str = "rest",
    ab_share: float | None = None,
    valid_max_items: int | None = None,
    seed: int = 0,
) -> dict[str, Path]:
    """Write the example manifests of every stage; returns their paths.

    ``sft_train.json``: (item, variant) examples of the warm-up share of the training items
    (MOS/A-B mixed to ``ab_share``); ``alld_items.json``: the items ALLD trains on (``"rest"``:
    those not used for the warm-up; ``"all"``: every training item); ``valid.json`` and
    ``test.json``: one evaluation item per clip / pair.
    """
    out = Path(out_folder)
    opts = dict(descriptions=str(descriptions_folder), train=train_split, valid=valid_split,
                test=test_split, tasks=list(tasks), warmup_fraction=warmup_fraction,
                alld_items=alld_items, ab_share=ab_share, valid_max_items=valid_max_items,
                seed=seed)
    paths = {name: out / f"{name}.json" for name in ("sft_train", "sft_valid", "alld_items",
                                                     "valid", "test")}
    done = _done(out)
    if done and done.get("opts_hash") == _opts_hash(opts) and all(
            p.is_file() for p in paths.values()):
        return paths
    if alld_items not in ("rest", "all"):
        raise ValueError(f"alld_items must be 'rest' or 'all', got {alld_items!r}")
    train = load_descriptions(descriptions_folder, train_split, tasks)
    warm, rest = split_items(list(train), warmup_fraction, seed)
    alld_keys = rest if alld_items == "rest" else sorted(train)
    if not warm:
        raise ValueError(f"{len(train)} training items give no warm-up items; use more data "
                         "or a larger warmup_fraction")
    write_examples(paths["sft_train"], sft_examples(train, mix_tasks(warm, ab_share, seed)))
    write_examples(paths["alld_items"], {k: train[k] for k in mix_tasks(alld_keys, ab_share,
                                                                        seed + 1)})
    valid = eval_items(load_descriptions(descriptions_folder, valid_split, tasks))
    if valid_max_items is not None and len(valid) > valid_max_items:
        keep = sorted(split_items(list(valid), valid_max_items / len(valid), seed)[0])
        valid = {k: valid[k] for k in keep}
    write_examples(paths["valid"], valid)
    write_examples(paths["sft_valid"], valid)
    write_examples(paths["test"], eval_items(load_descriptions(descriptions_folder, test_split,
                                                               tasks)))
    _mark_done(out, {"opts_hash": _opts_hash(opts), "n_sft": len(warm),
                     "n_alld_items": len(alld_keys)})
    return paths


# ---------------------------------------------------------------------------- expert LM
def train_text_expert(
    reference: ExpertReference,
    items: Mapping[str, Mapping[str, Any]],
    *,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Teach a (tiny) text LM to write y_t from x_t, so it is a real expert for this corpus.

    Trains on every (prompt, variant text) of ``items`` with the response-only cross-entropy;
    returns the loss per step.
    """
    pairs = [(it["prompt"], text) for it in items.values() for text in it["responses"].values()]
    if not pairs:
        raise ValueError("no (prompt, response) pairs to train the expert on")
    model = reference.model
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in tqdm(range(steps), desc="train expert LM", disable=not progress):
        idx = torch.randint(len(pairs), (batch_size,), generator=gen).tolist()
        batch = reference.prepare_batch([pairs[i][0] for i in idx], [pairs[i][1] for i in idx])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = sft_loss(logits, batch["labels"])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        losses.append(float(loss.detach()))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return losses


def init_tiny_models(
    descriptions_folder: str | Path,
    train_split: str,
    out_folder: str | Path,
    *,
    tasks: Sequence[str] = ("mos", "ab"),
    vocab_size: int = 512,
    window_seconds: float = 4.0,
    policy_config: Mapping[str, Any] | None = None,
    expert_config: Mapping[str, Any] | None = None,
    expert_steps: int = 300,
    expert_batch_size: int = 16,
    expert_lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Build the embedded default's models: a tokenizer trained on this corpus's texts, a tiny
    Qwen2-Audio policy, and a tiny Qwen2 expert trained briefly on (x_t -> y_t).

    Writes Hugging Face folders ``policy_init`` and ``expert`` under ``out_folder`` (skipped when
    they exist), so every later stage loads them exactly like a real checkpoint.
    """
    out = Path(out_folder)
    paths = {"policy": out / "policy_init", "expert": out / "expert"}
    if _done(out) is not None:
        return paths
    items = load_descriptions(descriptions_folder, train_split, tasks)
    texts = [it["prompt"] for it in items.values()] + [it["instruction"] for it in items.values()]
    texts += [t for it in items.values() for t in it["responses"].values()]
    tokenizer = train_tiny_tokenizer(texts, vocab_size=vocab_size)
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=window_seconds,
                                              seed=seed, **dict(policy_config or {}))
    model.save_pretrained(paths["policy"])
    processor.save_pretrained(paths["policy"])
    reference = ExpertReference(build_tiny_causal_lm(tokenizer, seed=seed + 1,
                                                     **dict(expert_config or {})), tokenizer)
    losses = train_text_expert(reference, items, steps=expert_steps,
                               batch_size=expert_batch_size, lr=expert_lr, seed=seed,
                               progress=progress)
    reference.model.save_pretrained(paths["expert"])
    tokenizer.save_pretrained(paths["expert"])
    _mark_done(out, {"expert_loss_first": losses[0], "expert_loss_last": losses[-1],
                     "vocab_size": len(tokenizer)})
    logger.info("Tiny expert LM trained: loss %.3f -> %.3f", losses[0], losses[-1])
    return paths


# ---------------------------------------------------------------------------- y_a, ref
def sample_rejected(
    policy: AudioLLM,
    items: Mapping[str, Mapping[str, Any]],
    store_path: str | Path,
    *,
    n_samples: int = 1,
    temperature: float = 1.0,
    top_p: float = 0.95,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    sample_rate: int = 16000,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Sample ``n_samples`` responses y_a per item from the (SFT) policy; resumable."""
    from speechbrain_alld.dataset import load_waveform

    store = JsonlStore(store_path)
    todo = [k for k in items if k not in store]
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="sample y_a",
               disable=not progress)
    for start in range(0, len(todo), batch_size):
        keys = todo[start:start + batch_size]
        torch.manual_seed(seed + start)
        audios = [[load_waveform(w, sample_rate) for w in items[k]["wavs"]] for k in keys]
        texts = policy.generate(audios, [items[k]["instruction"] for k in keys],
                                max_new_tokens=max_new_tokens, do_sample=True,
                                temperature=temperature, top_p=top_p,
                                num_return_sequences=n_samples)
        store.add({"key": k, "samples": texts[i * n_samples:(i + 1) * n_samples]}
                  for i, k in enumerate(keys))
        bar.update(len(keys))
    bar.close()
    return {k: store.get(k)["samples"] for k in items}


def alld_examples(
    items: Mapping[str, Mapping[str, Any]], rejected: Mapping[str, Sequence[str]],
    chosen: str = "cycle",
) -> dict[str, dict[str, Any]]:
    """One ALLD example per (item, sampled y_a); the chosen y_t cycles through the variants."""
    if chosen not in ("cycle", "all"):
        raise ValueError(f"chosen must be 'cycle' or 'all', got {chosen!r}")
    out = {}
    for n_item, (key, item) in enumerate(sorted(items.items())):
        variants = sorted(item["responses"])
        for j, y_a in enumerate(rejected[key]):
            picks = variants if chosen == "all" else [variants[(n_item + j) % len(variants)]]
            for variant in picks:
                out[f"{key}#{variant}#y{j}"] = {
                    "task": item["task"], "item_id": item["item_id"], "wavs": item["wavs"],
                    "duration": item["duration"], "instruction": item["instruction"],
                    "prompt": item["prompt"], "chosen": item["responses"][variant],
                    "rejected": y_a, "mos": item["mos"] if item["mos"] is not None else -1.0,
                    "winner": item["winner"] or "",
                }
    return out


def score_reference(
    reference: ExpertReference,
    examples: Mapping[str, Mapping[str, Any]],
    store_path: str | Path,
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """log pi_ref(y_t|x_t) and log pi_ref(y_a|x_t) for every example; resumable."""
    store = JsonlStore(store_path)
    todo = [k for k in examples if k not in store]
    bar = tqdm(total=len(examples), initial=len(examples) - len(todo), desc="reference log-probs",
               disable=not progress)
    for start in range(0, len(todo), batch_size):
        keys = todo[start:start + batch_size]
        prompts = [examples[k]["prompt"] for k in keys]
        rc, nc = reference.logprobs(prompts, [examples[k]["chosen"] for k in keys])
        rr, nr = reference.logprobs(prompts, [examples[k]["rejected"] for k in keys])
        store.add({"key": k, "ref_chosen": float(rc[i]), "ref_rejected": float(rr[i]),
                   "chosen_len": int(nc[i]), "rejected_len": int(nr[i])}
                  for i, k in enumerate(keys))
        bar.update(len(keys))
    bar.close()
    return {k: store.get(k) for k in examples}


# ---------------------------------------------------------------------------- Brain stages
def _loader_opts(batch_size: int, shuffle: bool, num_workers: int = 0) -> dict[str, Any]:
    return {"batch_size": batch_size, "shuffle": shuffle, "num_workers": num_workers,
            "collate_fn": collate_examples}


def run_brain_stage(
    stage: str,
    policy: AudioLLM,
    hparams: Mapping[str, Any],
    run_opts: Mapping[str, Any],
    train_manifest: Path,
    valid_manifest: Path,
    test_manifest: Path | None,
    folder: Path,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    extra_keys: Sequence[str] = (),
    reference: ExpertReference | None = None,
) -> ALLDBrain:
    """Fit ``policy`` for one stage (``"sft"`` or ``"alld"``), then test it when asked."""
    sr = policy.sampling_rate
    train = make_dataset(train_manifest, sr, extra_keys)
    valid = make_dataset(valid_manifest, sr)
    counter = sb.utils.epoch_loop.EpochCounter(limit=epochs)
    checkpointer = sb.utils.checkpoints.Checkpointer(
        folder / "checkpoints", recoverables={"policy": policy, "counter": counter})
    grad_accum = int(run_opts.get("grad_accumulation_factor", 1) or 1)
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    steps_per_epoch = math.ceil(len(train) / world / batch_size / grad_accum)
    total = steps_per_epoch * epochs
    warmup = hparams.get(f"{stage}_warmup_steps")
    if warmup is None:
        warmup = round(total * hparams.get("warmup_ratio", 0.05))
    stage_hparams = {
        **hparams, "stage": stage, "epoch_counter": counter, "total_steps": total,
        "warmup_steps": warmup, "output_folder": str(folder), "test_output_folder": str(folder),
        "reference": reference,
        "train_logger": sb.utils.train_logger.FileTrainLogger(save_file=folder / "log.txt"),
    }
    brain = ALLDBrain(
        modules={"policy": policy},
        opt_class=lambda params: torch.optim.AdamW(params, lr=lr,
                                                   weight_decay=hparams.get("weight_decay", 0.0)),
        hparams=stage_hparams, run_opts=run_opts, checkpointer=checkpointer,
    )
    brain.fit(counter, train, valid,
              train_loader_kwargs=_loader_opts(batch_size, True, hparams.get("loader_workers", 0)),
              valid_loader_kwargs=_loader_opts(hparams.get("eval_batch_size", batch_size),
                                               False))
    if test_manifest is not None:
        brain.evaluate(make_dataset(test_manifest, sr), min_key="loss",
                       test_loader_kwargs=_loader_opts(hparams.get("eval_batch_size",
                                                                   batch_size), False))
    return brain


def _device(run_opts: Mapping[str, Any]) -> str:
    """The device a stage outside the Brain runs on (the Brain's rule: cuda:LOCAL_RANK)."""
    import os

    if run_opts.get("device"):
        return str(run_opts.get("device"))
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def build_policy(source: str | Path, hparams: Mapping[str, Any]) -> AudioLLM:
    """The policy from a folder / hub id with the fine-tuning settings of ``hparams``."""
    return AudioLLM.from_pretrained(source, dtype=hparams.get("policy_dtype", "auto"),
                                    **dict(hparams.get("policy_kwargs", {})))


def run_chain(hparams: Mapping[str, Any], run_opts: Mapping[str, Any]) -> dict[str, Any]:
    """SFT warm-up -> sample y_a -> reference log-probs -> ALLD -> test, skipping done stages.

    Expects in ``hparams``: ``descriptions_folder``, ``save_folder``, ``policy_source``,
    ``expert_source``, split names, the stage settings (see ``hparams/alld.yaml``).
    """
    save = Path(hparams["save_folder"])
    progress = not run_opts.get("noprogressbar", False)
    debug = bool(run_opts.get("debug", False))
    if debug and not run_opts.get("debug_persistently", False):
        import tempfile

        # Like SpeechBrain's own debug mode: nothing a debug run makes is kept or reused.
        save = Path(run_on_main(tempfile.mkdtemp, kwargs={"prefix": "alld-debug-"}))
        logger.info("Debug mode: the chain writes to the temporary folder %s", save)
    paths = run_on_main(prepare_examples, args=[hparams["descriptions_folder"], save / "data"],
                        kwargs=dict(train_split=hparams["train_split"],
                                    valid_split=hparams["valid_split"],
                                    test_split=hparams["test_split"],
                                    tasks=hparams.get("tasks", ("mos", "ab")),
                                    warmup_fraction=hparams.get("warmup_fraction", 0.5),
                                    alld_items=hparams.get("alld_items", "rest"),
                                    ab_share=hparams.get("ab_share"),
                                    valid_max_items=hparams.get("valid_max_items"),
                                    seed=hparams.get("seed", 0)))
    results: dict[str, Any] = {}

    # 1. SFT warm-up (skipped when an SFT model is given or already trained).
    sft_dir = save / "sft"
    sft_model = Path(hparams.get("sft_model") or sft_dir / "model")
    if hparams.get("sft_model") is None and _done(sft_dir) is None:
        policy = build_policy(hparams["policy_source"], hparams)
        brain = run_brain_stage("sft", policy, hparams, run_opts, paths["sft_train"],
                                paths["sft_valid"], paths["test"] if hparams.get(
                                    "test_after_sft", True) else None, sft_dir,
                                epochs=hparams["sft_epochs"], lr=hparams["sft_lr"],
                                batch_size=hparams["batch_size"])
        if if_main_process():
            policy.save_pretrained(sft_model, merge=hparams.get("save_merged", True))
        results["sft_test"] = getattr(brain, "test_stats", None)
        _mark_done(sft_dir, {"model": str(sft_model), "test": results["sft_test"]})
        sb.utils.distributed.ddp_barrier()
    else:
        results["sft_test"] = (_done(sft_dir) or {}).get("test")

    if hparams.get("stop_after_sft", False):
        return results

    # 2. Rejected responses y_a from the SFT model, on the ALLD items.
    alld_dir = save / "alld"
    items = json.loads(Path(paths["alld_items"]).read_text())
    if debug:
        n_debug = int(run_opts.get("debug_batches", 2)) * int(hparams["alld_batch_size"])
        items = dict(list(items.items())[:n_debug])
    if not items:
        raise ValueError("no items left for ALLD: warmup_fraction=1 with alld_items='rest' "
                         "uses every item for the warm-up; set alld_items: all")
    if _done(alld_dir) is None:
        sft_policy = build_policy(sft_model, {**hparams, "policy_kwargs": {
            **dict(hparams.get("policy_kwargs", {})), "finetune": "frozen",
            "train_projector": False}})
        sft_policy.to(_device(run_opts)).eval()
        rejected = run_on_main(sample_rejected, args=[sft_policy, items,
                                                      alld_dir / "rejected.jsonl"],
                               kwargs=dict(n_samples=hparams.get("n_rejected", 1),
                                           temperature=hparams.get("rejected_temperature", 1.0),
                                           top_p=hparams.get("rejected_top_p", 0.95),
                                           max_new_tokens=hparams["max_new_tokens"],
                                           batch_size=hparams.get("eval_batch_size", 8),
                                           seed=hparams.get("seed", 0), progress=progress))
        del sft_policy
        examples = alld_examples(items, rejected, hparams.get("alld_chosen", "cycle"))

        # 3. Reference log-probs, once, before ALLD (unless computed live).
        live = bool(hparams.get("live_reference", False))
        reference = ExpertReference.from_pretrained(
            hparams["expert_source"], dtype=hparams.get("expert_dtype", "auto"),
            device=_device(run_opts))
        policy = build_policy(sft_model, hparams)
        check_same_tokenizer(policy.tokenizer, reference.tokenizer)
        if not live:
            scores = run_on_main(score_reference, args=[reference, examples,
                                                        alld_dir / "reference.jsonl"],
                                 kwargs=dict(batch_size=hparams.get("eval_batch_size", 8),
                                             progress=progress))
            for key, ex in examples.items():
                ex["ref_chosen"] = scores[key]["ref_chosen"]
                ex["ref_rejected"] = scores[key]["ref_rejected"]
            reference = None  # training holds only the policy
        train_manifest = write_examples(alld_dir / "alld_train.json", examples)

        # 4. ALLD, then test.
        extra = ("chosen", "rejected") + (() if live else ("ref_chosen", "ref_rejected"))
        brain = run_brain_stage("alld", policy, hparams, run_opts, train_manifest,
                                paths["valid"], paths["test"], alld_dir,
                                epochs=hparams["alld_epochs"], lr=hparams["alld_lr"],
                                batch_size=hparams["alld_batch_size"], extra_keys=extra,
                                reference=reference)
        if if_main_process():
            policy.save_pretrained(alld_dir / "model", merge=hparams.get("save_merged", True))
        results["alld_test"] = getattr(brain, "test_stats", None)
        _mark_done(alld_dir, {"model": str(alld_dir / "model"), "test": results["alld_test"]})
    else:
        results["alld_test"] = _done(alld_dir).get("test")
    return results
