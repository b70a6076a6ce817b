"""Training and evaluation examples built from the descriptive corpus, and their data pipeline.

From the description manifests (``<split>_mos.json``, ``<split>_ab.json``) this module builds:

* **SFT examples**: one per (item, variant): the audio, the instruction x_a and an expert text.
* **evaluation items**: one per clip / pair, with the human MOS or the true winner and the
  default-variant expert text as the BLEU reference.
* the **warm-up / ALLD split** of the training items (the paper warms up on half of the data).

Every example is a flat JSON object; lists of wav paths stay lists (one for the MOS task, two for
A/B). :func:`make_dataset` turns such a manifest into a SpeechBrain ``DynamicItemDataset`` whose
``audio`` item reads, mono-mixes and resamples the waveforms; :func:`collate_examples` batches
examples without padding (the audio LLM's processor pads).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from speechbrain_alld.durable import write_json_atomic
from speechbrain_alld.ratings import DIMENSIONS

TASKS = ("mos", "ab")


def load_descriptions(folder: str | Path, split: str, tasks: Sequence[str] = TASKS
                      ) -> dict[str, dict[str, Any]]:
    """Items of the description manifests of ``split``, keyed ``<task>:<item id>``."""
    items: dict[str, dict[str, Any]] = {}
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        path = Path(folder) / f"{split}_{task}.json"
        if not path.is_file():
            raise FileNotFoundError(f"description manifest not found: {path} (run the "
                                    "describe step first)")
        for item_id, entry in json.loads(path.read_text(encoding="utf-8")).items():
            wavs = [entry["wav"]] if task == "mos" else [entry["wav_a"], entry["wav_b"]]
            if not entry.get("responses"):
                raise ValueError(f"{path}: item {item_id!r} has no responses")
            items[f"{task}:{item_id}"] = {
                "task": task, "item_id": item_id, "wavs": wavs,
                "duration": float(entry.get("duration") or 0.0),
                "instruction": entry["instruction"], "prompt": entry["prompt"],
                "responses": entry["responses"],
                "mos": entry.get("mos"), "winner": entry.get("winner"),
                "gap": entry.get("gap"),
                "dims": {d: float(entry[d]) for d in DIMENSIONS if entry.get(d) is not None},
            }
    return items


def split_items(keys: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministically split item keys into (first ``fraction``, rest)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    cut = round(len(order) * fraction)
    return sorted(order[:cut]), sorted(order[cut:])


def mix_tasks(keys: Sequence[str], ab_share: float | None, seed: int) -> list[str]:
    """Resample A/B keys so they make up ``ab_share`` of the result (``None``: keep all)."""
    if ab_share is None:
        return list(keys)
    if not 0.0 <= ab_share < 1.0:
        raise ValueError(f"ab_share must be in [0, 1), got {ab_share}")
    mos = [k for k in keys if k.startswith("mos:")]
    ab = [k for k in keys if k.startswith("ab:")]
    if not mos:
        return ab
    want = round(len(mos) * ab_share / (1.0 - ab_share))
    if want == 0 or not ab:
        return mos
    rng = random.Random(seed)
    picked = []
    while len(picked) < want:  # without replacement first, cycling if more are needed
        pool = list(ab)
        rng.shuffle(pool)
        picked += pool[: want - len(picked)]
    return mos + picked


def sft_examples(items: Mapping[str, Mapping[str, Any]], keys: Sequence[str],
                 variants: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """One example per (item, variant); repeated keys (from :func:`mix_tasks`) get ``#r<k>``."""
    out: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for key in keys:
        item = items[key]
        rep = seen.get(key, 0)
        seen[key] = rep + 1
        for variant, text in sorted(item["responses"].items()):
            if variants is not None and variant not in variants:
                continue
            ex_id = f"{key}#{variant}" + (f"#r{rep}" if rep else "")
            out[ex_id] = {**_common(item), "variant": variant, "response": text}
    return out


def eval_items(items: Mapping[str, Mapping[str, Any]], reference_variant: str = "default"
               ) -> dict[str, dict[str, Any]]:
    """One evaluation item per clip / pair; ``response`` is the reference expert text."""
    out = {}
    for key, item in sorted(items.items()):
        responses = item["responses"]
        ref = responses.get(reference_variant) or responses[sorted(responses)[0]]
        out[key] = {**_common(item), "response": ref}
    return out


def _common(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"task": item["task"], "item_id": item["item_id"], "wavs": list(item["wavs"]),
            "duration": item["duration"], "instruction": item["instruction"],
            "prompt": item["prompt"],
            "mos": item["mos"] if item["mos"] is not None else -1.0,
            "winner": item["winner"] or "", "dims": dict(item.get("dims") or {}),
            "gap": item.get("gap") if item.get("gap") is not None else -1.0}


def write_examples(path: str | Path, examples: Mapping[str, Any]) -> Path:
    """Write an example manifest atomically (SpeechBrain JSON layout)."""
    path = Path(path)
    write_json_atomic(path, dict(examples))
    return path


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
) -> dict[str, Any]:
    """Write the example manifests of every stage; returns their paths and counts.

    ``sft_train.json``: (item, variant) examples of the warm-up share of the training items
    (MOS/A-B mixed to ``ab_share``); ``alld_items.json``: the items ALLD trains on (``"rest"``:
    those not used for the warm-up; ``"all"``: every training item); ``valid.json`` (at most
    ``valid_max_items``: the per-epoch valid loss), ``valid_full.json`` (the whole validation
    split: choosing settings) and ``test.json``: one evaluation item per clip / pair.
    """
    out = Path(out_folder)
    paths = {name: out / f"{name}.json" for name in ("sft_train", "sft_valid", "alld_items",
                                                     "valid", "valid_full", "test")}
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
    write_examples(paths["valid_full"], valid)
    if valid_max_items is not None and len(valid) > valid_max_items:
        keep = sorted(split_items(list(valid), valid_max_items / len(valid), seed)[0])
        valid = {k: valid[k] for k in keep}
    write_examples(paths["valid"], valid)
    write_examples(paths["sft_valid"], valid)
    write_examples(paths["test"], eval_items(load_descriptions(descriptions_folder, test_split,
                                                               tasks)))
    return {**paths, "n_sft": len(warm), "n_alld_items": len(alld_keys)}


def load_waveform(path: str, sample_rate: int) -> torch.Tensor:
    """A mono float waveform at ``sample_rate`` (soundfile reads; torchaudio resamples)."""
    import soundfile as sf
    import torchaudio

    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for unreadable files
        raise ValueError(f"cannot read audio {path}: {err}") from None
    wav = torch.from_numpy(data.T.copy()).mean(0)
    if wav.numel() == 0:
        raise ValueError(f"empty audio file: {path}")
    if not torch.isfinite(wav).all():
        raise ValueError(f"audio contains non-finite samples: {path}")
    if sr != sample_rate:
        wav = torchaudio.functional.resample(wav, sr, sample_rate)
    return wav


def make_dataset(manifest: str | Path, sample_rate: int = 16000,
                 extra_keys: Sequence[str] = ()) -> Any:
    """A ``DynamicItemDataset`` over an example manifest providing ``audio`` and the fields."""
    import speechbrain as sb

    with open(manifest, encoding="utf-8") as f:
        entries = json.load(f)
    # Not DynamicItemDataset.from_json: it str.format()s every value, and texts may hold braces.
    data = sb.dataio.dataset.DynamicItemDataset(entries)

    @sb.utils.data_pipeline.takes("wavs")
    @sb.utils.data_pipeline.provides("audio")
    def audio_pipeline(wavs: list[str]) -> list[torch.Tensor]:
        return [load_waveform(w, sample_rate) for w in wavs]

    data.add_dynamic_item(audio_pipeline)
    keys = ["id", "task", "audio", "instruction", "prompt", "response", "mos", "winner", "dims",
            *extra_keys]
    first = next(iter(entries.values()), {})
    data.set_output_keys([k for k in keys if k in ("id", "audio") or k in first])
    return data


class TaskBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches that each hold the examples of one task, so a batch is padded to its
    own task's length (an A/B example carries two clips: about 1.5x a MOS example's tokens).

    Like transformers' ``group_by_length``: the order is random, and a new one every epoch
    (SpeechBrain calls :meth:`set_epoch`); the same ``seed`` and epoch give the same batches,
    so a run resumed mid-epoch sees the rest of the same epoch.

    Under DDP / FSDP every process draws the same batches and keeps every ``num_replicas``-th
    from ``rank`` on, the list first padded with its own first batches to a multiple of
    ``num_replicas`` (as ``DistributedSampler`` pads), so each process steps as often.

    Arguments
    ---------
    tasks: the task of each example, in the dataset's order.
    batch_size: examples per batch (each task's last batch may be smaller).
    seed: the shuffling seed.
    num_replicas, rank: the processes sharing the epoch, and this one.

    Example
    -------
    >>> sampler = TaskBatchSampler(["mos", "ab", "mos", "mos", "ab"], batch_size=2, seed=0)
    >>> batches = list(sampler)
    >>> len(sampler), sorted(i for b in batches for i in b)
    (3, [0, 1, 2, 3, 4])
    >>> all(len({["mos", "ab", "mos", "mos", "ab"][i] for i in b}) == 1 for b in batches)
    True
    """

    def __init__(self, tasks: Sequence[str], batch_size: int, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not one of {num_replicas} processes")
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.groups: dict[str, list[int]] = {}
        for index, task in enumerate(tasks):
            self.groups.setdefault(task, []).append(index)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        total = sum(-(-len(g) // self.batch_size) for g in self.groups.values())
        return -(-total // self.num_replicas)

    def __iter__(self) -> Any:
        rng = random.Random(f"{self.seed}:{self.epoch}")
        batches = []
        for task in sorted(self.groups):
            order = list(self.groups[task])
            rng.shuffle(order)
            batches += [order[k:k + self.batch_size]
                        for k in range(0, len(order), self.batch_size)]
        rng.shuffle(batches)
        if self.num_replicas > 1:
            total = -(-len(batches) // self.num_replicas) * self.num_replicas
            padded = [batches[k % len(batches)] for k in range(total)]
            batches = padded[self.rank::self.num_replicas]
        return iter(batches)


def task_batch_sampler(dataset: Any, batch_size: int, seed: int = 0, num_replicas: int = 1,
                       rank: int = 0) -> TaskBatchSampler:
    """A :class:`TaskBatchSampler` over a dataset from :func:`make_dataset`."""
    missing = [i for i in dataset.data_ids if "task" not in dataset.data[i]]
    if missing:
        raise ValueError(f"group_by_task needs a 'task' field in every example; {len(missing)} "
                         f"of {len(dataset.data_ids)} have none (first: {missing[0]!r})")
    return TaskBatchSampler([dataset.data[i]["task"] for i in dataset.data_ids], batch_size, seed,
                            num_replicas, rank)


class ExampleBatch:
    """A batch of examples kept as per-key lists (the processor pads the audio LLM's inputs)."""

    def __init__(self, examples: Sequence[Mapping[str, Any]]) -> None:
        if not examples:
            raise ValueError("empty batch")
        self._keys = list(examples[0].keys())
        for key in self._keys:
            setattr(self, key, [ex[key] for ex in examples])

    def __len__(self) -> int:
        return len(getattr(self, self._keys[0]))

    def to(self, device: Any) -> ExampleBatch:
        """Inputs move to the device in :meth:`AudioLLM.prepare_batch`; nothing to do here."""
        return self

    def keys(self) -> list[str]:
        return list(self._keys)


def collate_examples(examples: Sequence[Mapping[str, Any]]) -> ExampleBatch:
    """``collate_fn`` for the SpeechBrain dataloaders of this package."""
    return ExampleBatch(examples)


def generate_for_examples(policy: Any, examples: Mapping[str, Mapping[str, Any]],
                          keys: Sequence[str], *, max_new_tokens: int, batch_size: int = 32,
                          swap: bool = False, desc: str = "generate", progress: bool = True
                          ) -> dict[str, str]:
    """Greedy texts of ``policy`` (an :class:`~speechbrain_alld.models.audio_llm.AudioLLM`)
    for the examples ``keys`` of a manifest, in batches; ``swap`` reverses each example's clips
    (an A/B pair asked the other way round)."""
    from tqdm.auto import tqdm

    texts: dict[str, str] = {}
    for start in tqdm(range(0, len(keys), batch_size), desc=desc, disable=not progress):
        chunk = list(keys[start:start + batch_size])
        audios = [[load_waveform(w, policy.sampling_rate)
                   for w in (reversed(examples[k]["wavs"]) if swap else examples[k]["wavs"])]
                  for k in chunk]
        texts.update(zip(chunk, policy.generate(
            audios, [examples[k]["instruction"] for k in chunk], max_new_tokens=max_new_tokens)))
    return texts
