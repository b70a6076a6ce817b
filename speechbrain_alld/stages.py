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


class StageMismatchError(RuntimeError):
    """A finished stage's output was made with other settings than the ones asked for now."""


def _opts_hash(opts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(opts, sort_keys=True, default=str).encode()).hexdigest()


def _file_hash(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def _done(folder: Path, opts_hash: str | None = None) -> dict[str, Any] | None:
    """The stage's marker, or ``None``; a marker made with other settings is an error."""
    path = folder / DONE
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    if opts_hash is not None and info.get("opts_hash") != opts_hash:
        raise StageMismatchError(
            f"{folder} was made with other settings or inputs than this run's. Reusing it "
            "would mix experiments: use another output_folder, or delete that folder to "
            "redo the stage (and the stages after it).")
    return info


def _mark_done(folder: Path, info: Mapping[str, Any]) -> None:
    if if_main_process():
        write_json_atomic(folder / DONE, dict(info))


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _shard_path(path: Path, rank: int, world: int) -> Path:
    return path if world == 1 else path.with_name(f"{path.stem}.rank{rank}of{world}.jsonl")


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
    described = sorted(Path(descriptions_folder).glob("*_mos.json")) + sorted(
        Path(descriptions_folder).glob("*_ab.json"))
    opts = dict(descriptions=_file_hash(*described) if described else str(descriptions_folder),
                train=train_split, valid=valid_split,
                test=test_split, tasks=list(tasks), warmup_fraction=warmup_fraction,
                alld_items=alld_items, ab_share=ab_share, valid_max_items=valid_max_items,
                seed=seed)
    paths = {name: out / f"{name}.json" for name in ("sft_train", "sft_valid", "alld_items",
                                                     "valid", "test")}
    done = _done(out)
    if done and done.get("opts_hash") == _opts_hash(opts) and all(
            p.is_file() for p in paths.values()):
        return paths
    # Other settings: the examples are rebuilt, and the later stages' hashes will differ.
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
    opts_hash = _opts_hash(dict(
        descriptions=_file_hash(*(Path(descriptions_folder) / f"{train_split}_{t}.json"
                                  for t in tasks)),
        vocab_size=vocab_size, window_seconds=window_seconds, policy_config=policy_config,
        expert_config=expert_config, expert_steps=expert_steps, expert_batch_size=expert_batch_size,
        expert_lr=expert_lr, seed=seed))
    if _done(out, opts_hash) is not None:
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
    _mark_done(out, {"opts_hash": opts_hash, "expert_loss_first": losses[0],
                     "expert_loss_last": losses[-1], "vocab_size": len(tokenizer)})
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
) -> dict[str, dict[str, Any]]:
    """Sample ``n_samples`` responses y_a per item from the (SFT) policy; resumable.

    Under DDP each process samples its share of the items into its own store; the returned
    mapping (``{key: {"samples": [...], "finished": [...]}}``) holds every item once all are
    done. ``finished`` is False for a sample cut off by ``max_new_tokens``.
    """
    from speechbrain_alld.dataset import load_waveform

    rank, world = _rank_world()
    store = JsonlStore(_shard_path(Path(store_path), rank, world))
    mine = [k for i, k in enumerate(sorted(items)) if i % world == rank]
    todo = [k for k in mine if k not in store]
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="sample y_a",
               disable=not progress or rank != 0)
    with torch.random.fork_rng(devices=[]):  # leave the training RNG streams untouched
        for start in range(0, len(todo), batch_size):
            keys = todo[start:start + batch_size]
            # The seed depends on the batch's items, so a resumed run samples them alike.
            torch.manual_seed(int(_opts_hash({"seed": seed, "keys": keys})[:8], 16))
            audios = [[load_waveform(w, sample_rate) for w in items[k]["wavs"]] for k in keys]
            texts, finished = policy.generate(
                audios, [items[k]["instruction"] for k in keys], max_new_tokens=max_new_tokens,
                do_sample=True, temperature=temperature, top_p=top_p,
                num_return_sequences=n_samples, return_finished=True)
            store.add({"key": k, "samples": texts[i * n_samples:(i + 1) * n_samples],
                       "finished": finished[i * n_samples:(i + 1) * n_samples]}
                      for i, k in enumerate(keys))
            bar.update(len(keys))
    bar.close()
    return _gather_stores(Path(store_path), items)


def _gather_stores(path: Path, keys: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Wait for every process, then read all shards of a store."""
    sb.utils.distributed.ddp_barrier()
    rank, world = _rank_world()
    merged: dict[str, Any] = {}
    for r in range(world):
        merged.update(JsonlStore(_shard_path(path, r, world)).entries)
    missing = [k for k in keys if k not in merged]
    if missing:
        raise RuntimeError(f"{len(missing)} item(s) missing from {path} after every process "
                           f"finished, e.g. {missing[:3]}")
    return {k: merged[k] for k in keys}


def alld_examples(
    items: Mapping[str, Mapping[str, Any]], rejected: Mapping[str, Mapping[str, Any]],
    chosen: str = "cycle",
    keep_truncated: bool = False,
) -> dict[str, dict[str, Any]]:
    """One ALLD example per (item, finished y_a); the chosen y_t cycles through the variants.

    Samples cut off by ``max_new_tokens`` are left out (their end-of-turn token, which the
    scores include, was never generated) and counted in the log, unless ``keep_truncated``
    (debug runs, and ALLD straight from a base model that never stops).
    """
    if chosen not in ("cycle", "all"):
        raise ValueError(f"chosen must be 'cycle' or 'all', got {chosen!r}")
    out = {}
    n_cut = 0
    for n_item, (key, item) in enumerate(sorted(items.items())):
        variants = sorted(item["responses"])
        entry = rejected[key]
        for j, (y_a, done) in enumerate(zip(entry["samples"], entry["finished"])):
            if not done:
                n_cut += 1
                if not keep_truncated:
                    continue
            picks = variants if chosen == "all" else [variants[(n_item + j) % len(variants)]]
            for variant in picks:
                out[f"{key}#{variant}#y{j}"] = {
                    "task": item["task"], "item_id": item["item_id"], "wavs": item["wavs"],
                    "duration": item["duration"], "instruction": item["instruction"],
                    "prompt": item["prompt"], "chosen": item["responses"][variant],
                    "rejected": y_a, "mos": item["mos"] if item["mos"] is not None else -1.0,
                    "winner": item["winner"] or "",
                }
    if n_cut:
        logger.warning("%d sampled y_a hit max_new_tokens%s.", n_cut,
                       "" if keep_truncated else " and are not used for ALLD")
    return out


def _example_hash(example: Mapping[str, Any]) -> str:
    return _opts_hash({k: example[k] for k in ("prompt", "chosen", "rejected")})[:16]


def score_reference(
    reference: ExpertReference,
    examples: Mapping[str, Mapping[str, Any]],
    store_path: str | Path,
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """log pi_ref(y_t|x_t) and log pi_ref(y_a|x_t) for every example; resumable.

    Each stored score carries a hash of (prompt, chosen, rejected): a stored score for other
    texts is recomputed. Under DDP the examples are shared out between the processes.
    """
    rank, world = _rank_world()
    store = JsonlStore(_shard_path(Path(store_path), rank, world))
    mine = [k for i, k in enumerate(sorted(examples)) if i % world == rank]
    todo = [k for k in mine
            if k not in store or store.get(k).get("texts") != _example_hash(examples[k])]
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="reference log-probs",
               disable=not progress or rank != 0)
    for start in range(0, len(todo), batch_size):
        keys = todo[start:start + batch_size]
        prompts = [examples[k]["prompt"] for k in keys]
        rc, nc = reference.logprobs(prompts, [examples[k]["chosen"] for k in keys])
        rr, nr = reference.logprobs(prompts, [examples[k]["rejected"] for k in keys])
        store.add({"key": k, "texts": _example_hash(examples[k]),
                   "ref_chosen": float(rc[i]), "ref_rejected": float(rr[i]),
                   "chosen_len": int(nc[i]), "rejected_len": int(nr[i])}
                  for i, k in enumerate(keys))
        bar.update(len(keys))
    bar.close()
    return _gather_stores(Path(store_path), examples)


# ---------------------------------------------------------------------------- Brain stages
def _brain_option(name: str, hparams: Mapping[str, Any], run_opts: Mapping[str, Any],
                  default: Any) -> Any:
    """The value SpeechBrain's Brain uses: command line, else hparams, else ``default``."""
    if name in getattr(run_opts, "overridden_args", ()) or (
            isinstance(run_opts, dict) and name in run_opts):
        return run_opts.get(name)
    return hparams.get(name, default)


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
    grad_accum = int(_brain_option("grad_accumulation_factor", hparams, run_opts, 1))
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


def _claim(folder: Path, name: str, opts_hash: str) -> None:
    """Tie a resumable store to the settings that fill it (an error if they changed)."""
    meta = folder / f"{name}.meta.json"
    if meta.is_file():
        if json.loads(meta.read_text()).get("opts_hash") != opts_hash:
            raise StageMismatchError(
                f"{folder / name} was started with other settings; use another output_folder "
                "or delete it to start again")
    elif if_main_process():
        write_json_atomic(meta, {"opts_hash": opts_hash})
    sb.utils.distributed.ddp_barrier()


def _source_fingerprint(source: str | Path) -> str:
    """A model folder's identity (config and weight files' sizes and times), or the hub id."""
    folder = Path(str(source))
    if not folder.is_dir():
        return str(source)
    parts = [str(folder.resolve())]
    for f in sorted(folder.iterdir()):
        if f.is_file():
            stat = f.stat()
            parts.append(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return _opts_hash({"files": parts})


def _keys(hparams: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {n: hparams.get(n) for n in names}


SFT_KEYS = ("policy_source", "policy_dtype", "policy_kwargs", "sft_epochs", "sft_lr",
            "batch_size", "weight_decay", "warmup_ratio", "sft_warmup_steps", "seed")
SAMPLE_KEYS = ("n_rejected", "rejected_temperature", "rejected_top_p", "max_new_tokens", "seed")
ALLD_KEYS = ("policy_kwargs", "expert_source", "expert_dtype", "alld_chosen", "live_reference",
             "alld_epochs", "alld_lr", "alld_batch_size", "beta", "label_smoothing",
             "length_normalize", "alpha", "weight_decay", "warmup_ratio", "alld_warmup_steps",
             "alld_keep_truncated")


def run_chain(hparams: Mapping[str, Any], run_opts: Mapping[str, Any]) -> dict[str, Any]:
    """SFT warm-up -> sample y_a -> reference log-probs -> ALLD -> test, skipping done stages.

    Expects in ``hparams``: ``descriptions_folder``, ``save_folder``, ``policy_source``,
    ``expert_source``, split names, the stage settings (see ``hparams/alld.yaml``). A stage
    whose output was made with other settings raises :class:`StageMismatchError`.
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
    data_hash = _done(save / "data")["opts_hash"]
    results: dict[str, Any] = {}

    # 1. SFT warm-up (skipped when an SFT model is given or already trained).
    sft_dir = save / "sft"
    if hparams.get("sft_model") is not None:
        sft_model = Path(hparams["sft_model"])
        sft_hash = _opts_hash({"sft_model": str(sft_model)})
    else:
        sft_model = sft_dir / "model"
        sft_hash = _opts_hash({"data": data_hash, **_keys(hparams, SFT_KEYS),
                               "policy_source": _source_fingerprint(hparams["policy_source"])})
        done = _done(sft_dir, sft_hash)
        if done is None:
            policy = build_policy(hparams["policy_source"], hparams)
            test = paths["test"] if hparams.get("test_after_sft", True) else None
            brain = run_brain_stage("sft", policy, hparams, run_opts, paths["sft_train"],
                                    paths["sft_valid"], test, sft_dir,
                                    epochs=hparams["sft_epochs"], lr=hparams["sft_lr"],
                                    batch_size=hparams["batch_size"])
            if if_main_process():
                policy.save_pretrained(sft_model, merge=hparams.get("save_merged", True))
            results["sft_test"] = getattr(brain, "test_stats", None)
            _mark_done(sft_dir, {"opts_hash": sft_hash, "model": str(sft_model),
                                 "test": results["sft_test"]})
            sb.utils.distributed.ddp_barrier()
            del policy, brain
        else:
            results["sft_test"] = done.get("test")
    results["sft_model"] = str(sft_model)
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
    sample_hash = _opts_hash({"sft": sft_hash, **_keys(hparams, SAMPLE_KEYS)})
    alld_hash = _opts_hash({"sample": sample_hash, **_keys(hparams, ALLD_KEYS),
                            "expert_source": _source_fingerprint(hparams["expert_source"])})
    done = _done(alld_dir, alld_hash)
    if done is not None:
        results["alld_test"] = done.get("test")
        results["alld_model"] = str(alld_dir / "model")
        return results
    run_on_main(alld_dir.mkdir, kwargs={"parents": True, "exist_ok": True})
    _claim(alld_dir, "rejected.jsonl", sample_hash)
    sft_policy = build_policy(sft_model, {**hparams, "policy_kwargs": {
        **dict(hparams.get("policy_kwargs", {})), "finetune": "frozen",
        "train_projector": False}})
    sft_policy.to(_device(run_opts)).eval()
    rejected = sample_rejected(sft_policy, items, alld_dir / "rejected.jsonl",
                               n_samples=hparams.get("n_rejected", 1),
                               temperature=hparams.get("rejected_temperature", 1.0),
                               top_p=hparams.get("rejected_top_p", 0.95),
                               max_new_tokens=hparams["max_new_tokens"],
                               batch_size=hparams.get("eval_batch_size", 8),
                               sample_rate=sft_policy.sampling_rate,
                               seed=hparams.get("seed", 0), progress=progress)
    del sft_policy
    examples = alld_examples(items, rejected, hparams.get("alld_chosen", "cycle"),
                             keep_truncated=debug or hparams.get("alld_keep_truncated", False))
    if not examples:
        raise ValueError("every sampled y_a hit max_new_tokens: raise max_new_tokens (or set "
                         "alld_keep_truncated: True, e.g. for ALLD without the SFT warm-up)")

    # 3. Reference log-probs, once, before ALLD (unless computed live).
    live = bool(hparams.get("live_reference", False))
    reference = ExpertReference.from_pretrained(
        hparams["expert_source"], dtype=hparams.get("expert_dtype", "auto"),
        device=_device(run_opts))
    policy = build_policy(sft_model, hparams)
    check_same_tokenizer(policy.tokenizer, reference.tokenizer)
    if not live:
        _claim(alld_dir, "reference.jsonl", _opts_hash({
            "expert_source": _source_fingerprint(hparams["expert_source"]),
            "expert_dtype": hparams.get("expert_dtype")}))
        scores = score_reference(reference, examples, alld_dir / "reference.jsonl",
                                 batch_size=hparams.get("eval_batch_size", 8),
                                 progress=progress)
        for key, ex in examples.items():
            ex["ref_chosen"] = scores[key]["ref_chosen"]
            ex["ref_rejected"] = scores[key]["ref_rejected"]
        reference = None  # training holds only the policy
    train_manifest = alld_dir / "alld_train.json"
    run_on_main(write_examples, args=[train_manifest, examples])

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
    results["alld_model"] = str(alld_dir / "model")
    _mark_done(alld_dir, {"opts_hash": alld_hash, "model": str(alld_dir / "model"),
                          "test": results["alld_test"]})
    sb.utils.distributed.ddp_barrier()
    return results
