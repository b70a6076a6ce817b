"""Pretraining the tiny audio LLM on generic audio tasks, as Qwen2-Audio is before quality SFT.

The miniature's policy starts from a model that has already learnt to listen: a tiny
``Qwen2AudioForConditionalGeneration`` trained with the SFT objective on a separate pool of
simulated clips, on tasks that use no rating (:mod:`speechbrain_alld.simulation.generic_tasks`:
the spoken sentence and the recorded acoustic condition). Its tokenizer is trained before the
model on generic texts only: the pretraining targets, the task instructions, and template-expert
texts and prompts written for random rating tuples (like a real tokenizer, it has seen the
language of quality evaluation, never this corpus's ratings).

``recipes/Simulated/Pretrain/train.py`` runs the stages below and can ship the result with the
package (:data:`SHIPPED_FOLDER`, with a ``PRETRAINED.json`` record of its budget, data, result
and the SHA-256 of every file); :func:`shipped_model` returns the shipped folder after checking
those hashes, so the embedded default starts from exactly the recorded weights.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from speechbrain_alld.describe.experts import PAPER_VARIANTS, GenerationRequest
from speechbrain_alld.describe.prompts import DEFAULT_INSTRUCTIONS, build_prompt
from speechbrain_alld.describe.template_expert import TemplateExpert
from speechbrain_alld.durable import write_json_atomic
from speechbrain_alld.ratings import RatingRecord
from speechbrain_alld.simulation.generic_tasks import GENERIC_INSTRUCTIONS, generic_examples

#: Where the pretrained tiny policy ships inside the package.
SHIPPED_FOLDER = Path(__file__).parent / "assets" / "tiny_qwen2_audio_pretrained"
#: The record written beside the shipped weights.
RECORD_FILE = "PRETRAINED.json"


def random_ratings(n: int, seed: int) -> list[RatingRecord]:
    """``n`` rating tuples drawn uniformly on 1..5 (no corpus's ratings)."""
    rng = random.Random(seed)
    return [RatingRecord(mos=rng.uniform(1, 5), noi=rng.uniform(1, 5), col=rng.uniform(1, 5),
                         dis=rng.uniform(1, 5), loud=rng.uniform(1, 5)) for _ in range(n)]


def tokenizer_texts(examples: Mapping[str, Mapping[str, Any]], n_quality: int = 2000,
                    seed: int = 0) -> list[str]:
    """The generic texts the pretrained tokenizer is trained on.

    The instructions and targets of the pretraining ``examples``, every task instruction, and
    the template expert's MOS and A/B texts and prompts for ``n_quality`` random rating tuples.

    Example
    -------
    >>> texts = tokenizer_texts({}, n_quality=4)
    >>> any("MOS" in t for t in texts) and len(texts) > 8
    True
    """
    texts = [*GENERIC_INSTRUCTIONS.values(), *DEFAULT_INSTRUCTIONS.values()]
    texts += [t for ex in examples.values() for t in (ex["instruction"], ex["response"])]
    expert = TemplateExpert(include_numbers=True)
    records = random_ratings(2 * n_quality, seed)
    for k in range(n_quality):
        a, b = records[2 * k], records[2 * k + 1]
        variant = PAPER_VARIANTS[k % len(PAPER_VARIANTS)]
        texts.append(expert.generate_one(GenerationRequest(f"r{k}", "mos", "", (a,), variant, 0)))
        texts.append(expert.generate_one(GenerationRequest(f"r{k}", "ab", "", (a, b), variant,
                                                           0)))
        if k < 50:  # the prompts repeat their explanation: a few suffice
            texts += [build_prompt("mos", [a]), build_prompt("ab", [a, b])]
    return texts


def write_pretraining_examples(corpus_csv: str | Path, out_folder: str | Path, *,
                               train_subset: str, valid_subset: str,
                               tasks: Sequence[str] = ("transcribe", "condition"),
                               valid_max_items: int | None = None, seed: int = 0
                               ) -> dict[str, Any]:
    """Write the example manifests of the pretraining pool: ``train.json``, ``heldout.json``
    (every example of ``valid_subset``) and ``valid.json`` (at most ``valid_max_items`` of
    them, for the per-epoch valid loss).

    Returns their paths (``sft_train`` / ``sft_valid``: what the SFT stage reads), the example
    counts and the rows skipped for an empty target.
    """
    out = Path(out_folder)
    train, skipped = generic_examples(corpus_csv, tasks, [train_subset])
    valid, skipped_valid = generic_examples(corpus_csv, tasks, [valid_subset])
    if not train or not valid:
        raise ValueError(f"{corpus_csv}: no examples in subset {train_subset!r} or "
                         f"{valid_subset!r}")
    write_json_atomic(out / "heldout.json", valid)
    n_heldout = len(valid)
    if valid_max_items is not None and len(valid) > valid_max_items:
        keep = sorted(random.Random(seed).sample(sorted(valid), valid_max_items))
        valid = {k: valid[k] for k in keep}
    write_json_atomic(out / "train.json", train)
    write_json_atomic(out / "valid.json", valid)
    return {"sft_train": str(out / "train.json"), "sft_valid": str(out / "valid.json"),
            "heldout": str(out / "heldout.json"), "n_train": len(train),
            "n_valid": len(valid), "n_heldout": n_heldout,
            "skipped": {t: skipped[t] + skipped_valid[t] for t in tasks}}


def init_pretraining_policy(examples_manifest: str | Path, folder: str | Path, *,
                            vocab_size: int = 512, window_seconds: float = 4.0,
                            policy_config: Mapping[str, Any] | None = None,
                            n_quality_texts: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Train the tokenizer on generic texts and save a randomly initialised tiny Qwen2-Audio
    (Hugging Face folder, configured like the Instruct checkpoint) to ``folder``."""
    from speechbrain_alld.models.tiny import build_tiny_qwen2_audio, train_tiny_tokenizer

    examples = json.loads(Path(examples_manifest).read_text(encoding="utf-8"))
    tokenizer = train_tiny_tokenizer(tokenizer_texts(examples, n_quality_texts, seed),
                                     vocab_size=vocab_size)
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=window_seconds,
                                              seed=seed, **dict(policy_config or {}))
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    n_params = sum(p.numel() for p in model.parameters())
    return {"model": str(folder), "vocab_size": len(tokenizer), "parameters": n_params}


def generate_held_out(model_folder: str | Path, manifest: str | Path, *, max_new_tokens: int,
                      max_items: int | None = None, batch_size: int = 32,
                      progress: bool = True) -> dict[str, Any]:
    """Greedy texts of the pretrained model on held-out examples, scored per task
    (condition: :func:`~speechbrain_alld.simulation.generic_tasks.condition_scores`;
    transcribe: sacreBLEU chrF against the sentence)."""
    import sacrebleu

    from speechbrain_alld.dataset import generate_for_examples
    from speechbrain_alld.models.audio_llm import AudioLLM
    from speechbrain_alld.simulation.generic_tasks import condition_scores

    examples = json.loads(Path(manifest).read_text(encoding="utf-8"))
    policy = AudioLLM.from_pretrained(str(model_folder), finetune="frozen",
                                      train_projector=False)
    keys = sorted(examples, key=lambda k: (examples[k]["item_id"], k))[:max_items]
    texts = generate_for_examples(policy, examples, keys, max_new_tokens=max_new_tokens,
                                  batch_size=batch_size, desc="held-out generation",
                                  progress=progress)
    result: dict[str, Any] = {}
    for task in sorted({ex["task"] for ex in examples.values()}):
        ids = [k for k in keys if examples[k]["task"] == task]
        if task == "condition":
            result[task] = condition_scores({k: texts[k] for k in ids},
                                            {k: examples[k]["response"] for k in ids})
        else:
            chrf = sacrebleu.corpus_chrf([texts[k] for k in ids],
                                         [[examples[k]["response"] for k in ids]])
            result[task] = {"chrf": round(chrf.score, 2), "n": len(ids)}
    result["examples"] = [{"id": k, "target": examples[k]["response"], "text": texts[k]}
                          for k in keys[:6]]
    return result


# ------------------------------------------------------------------------------ shipping
def file_hashes(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every file of ``folder`` but the record, by relative path."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder) != Path(RECORD_FILE)}


def ship_pretrained(model_folder: str | Path, record: Mapping[str, Any],
                    target: str | Path = SHIPPED_FOLDER) -> Path:
    """Copy a pretrained model folder to ``target`` with its record and file hashes."""
    target = Path(target)
    if target.resolve() == Path(model_folder).resolve():
        raise ValueError(f"cannot ship {model_folder} onto itself")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(model_folder, target)
    write_json_atomic(target / RECORD_FILE, {**dict(record), "sha256": file_hashes(target)})
    return target


class ShippedModelError(RuntimeError):
    """The shipped pretrained weights are missing or differ from their record."""


def check_shipped(folder: str | Path = SHIPPED_FOLDER) -> dict[str, Any]:
    """The record of a shipped model folder after checking every file against its hash."""
    folder = Path(folder)
    path = folder / RECORD_FILE
    if not path.is_file():
        raise ShippedModelError(f"{path} not found: make it with recipes/Simulated/Pretrain/"
                                "train.py recipes/Simulated/Pretrain/hparams/pretrain.yaml "
                                "--ship=True")
    record = json.loads(path.read_text(encoding="utf-8"))
    found, expected = file_hashes(folder), record.get("sha256", {})
    if found != expected:
        bad = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
        raise ShippedModelError(f"{folder}: file(s) {bad} differ from {RECORD_FILE}")
    return record


def shipped_model(folder: str | Path = SHIPPED_FOLDER) -> str:
    """The shipped pretrained tiny policy's folder (checked against its record), for YAML:
    ``policy_source: !apply:speechbrain_alld.pretraining.shipped_model []``."""
    check_shipped(folder)
    return str(folder)


if __name__ == "__main__":  # python -m speechbrain_alld.pretraining: the shipped record
    print(json.dumps({k: v for k, v in check_shipped().items() if k != "sha256"}, indent=1))
    print(f"all {len(file_hashes(SHIPPED_FOLDER))} files of {SHIPPED_FOLDER} match their "
          "recorded SHA-256")
