"""Preference data for ALLD (ALLD-SPEC §5): the rejected responses y_a and the expert's scores.

* :func:`sample_rejected`: y_a sampled from the (SFT) policy for each item;
* :func:`alld_examples`: one (x_a, x_t, y_t, y_a) example per finished y_a;
* :func:`score_reference`: log pi_ref(y_t|x_t) and log pi_ref(y_a|x_t) from the frozen expert,
  once, before training.

Both long steps append each finished batch to a :class:`~speechbrain_alld.jsonl_store.JsonlStore`
and resume mid-way without repeating work. Under DDP each process works on its share of the
items (``i % world == rank``) in a store of its own; all shards are read back once every process
is done.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import speechbrain as sb
import torch
from speechbrain.utils.logger import get_logger
from tqdm.auto import tqdm

from speechbrain_alld.dataset import load_waveform
from speechbrain_alld.durable import fingerprint, stable_seed
from speechbrain_alld.jsonl_store import JsonlStore
from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.models.expert_reference import ExpertReference
from speechbrain_alld.resume import rank_world

logger = get_logger(__name__)


def shard_path(path: Path, rank: int, world: int) -> Path:
    """The store of process ``rank`` of ``world`` (``path`` itself for one process)."""
    return path if world == 1 else path.with_name(f"{path.stem}.rank{rank}of{world}.jsonl")


def sample_rejected(
    policy: AudioLLM,
    items: Mapping[str, Mapping[str, Any]],
    store_path: str | Path,
    *,
    n_samples: int = 1,
    temperature: float = 1.0,
    top_p: float = 0.95,
    top_k: int = 0,
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
    rank, world = rank_world()
    store = JsonlStore(shard_path(Path(store_path), rank, world))
    mine = [k for i, k in enumerate(sorted(items)) if i % world == rank]
    todo = [k for k in mine if k not in store]
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="sample y_a",
               disable=not progress or rank != 0)
    with torch.random.fork_rng(devices=[]):  # leave the training RNG streams untouched
        for start in range(0, len(todo), batch_size):
            keys = todo[start:start + batch_size]
            # The seed depends on the batch's items, so a resumed run samples them alike.
            torch.manual_seed(stable_seed(json.dumps({"keys": keys, "seed": seed}, sort_keys=True)))
            audios = [[load_waveform(w, sample_rate) for w in items[k]["wavs"]] for k in keys]
            texts, finished = policy.generate(
                audios, [items[k]["instruction"] for k in keys], max_new_tokens=max_new_tokens,
                do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k,
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
    rank, world = rank_world()
    merged: dict[str, Any] = {}
    for r in range(world):
        merged.update(JsonlStore(shard_path(path, r, world)).entries)
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
    return fingerprint({k: example[k] for k in ("prompt", "chosen", "rejected")})[:16]


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
    rank, world = rank_world()
    store = JsonlStore(shard_path(Path(store_path), rank, world))
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
