"""The memory plan against real counts, measured GPU peaks and measured tiny activations."""

import functools
import sys
from pathlib import Path

import pytest
import torch

from speechbrain_alld.losses import sft_loss
from speechbrain_alld.memory_plan import (
    RUNTIME_RESERVE,
    MemoryPlanError,
    PolicyShape,
    Workload,
    alternatives,
    check_fit,
    memory_plan,
    qwen2_audio_7b_config,
)
from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.models.tiny import build_tiny_qwen2_audio, train_tiny_tokenizer
from speechbrain_alld.training import plan_memory

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


@pytest.fixture(scope="module")
def tokenizer():
    return train_tiny_tokenizer(["the speech is clean MOS: 3.4 A/B test Speech B"] * 4, 300)


def _tiny(tokenizer, **kwargs):
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=2.0, audio_dim=64,
                                              text_dim=64, seed=0)
    return model, AudioLLM(model, processor, **kwargs)


@pytest.mark.parametrize("settings", [
    {"finetune": "full", "train_encoder": True}, {"finetune": "full", "train_encoder": False},
    {"finetune": "lora", "lora_r": 4}, {"finetune": "lora", "lora_r": 4, "train_encoder": True},
    {"finetune": "frozen", "train_projector": True}])
def test_parameter_counts_match_the_built_policy(tokenizer, settings):
    model, policy = _tiny(tokenizer, **settings)
    shape = PolicyShape.from_config(model.config, **settings)
    assert shape.n_params == sum(p.numel() for p in policy.parameters())
    assert shape.n_trainable == sum(p.numel() for p in policy.trainable_parameters().values())
    core = policy.core_model.model
    units = [*core.language_model.layers, *core.audio_tower.layers]
    assert shape.n_largest_unit == max(sum(p.numel() for p in u.parameters()) for u in units)


def test_plan_is_within_25_percent_of_measured_7b_gpu_peaks():
    """Peaks measured by benchmarks/train_step.py on an H200 (7B shapes, LoRA r=8, bf16),
    compared by benchmarks/plan_vs_measured.py."""
    sys.path.insert(0, str(BENCH.parent))
    from plan_vs_measured import comparisons

    records = comparisons()
    assert len(records) == 4
    for c in records:
        assert c["parameters"][0] == c["parameters"][1]
        assert c["trainable"][0] == c["trainable"][1]
        assert abs(c["tokens"] - c["measured_tokens"]) <= 8
        assert c["plan"] == pytest.approx(c["peak"], rel=0.25), (c["run"], c["step"])


@pytest.mark.parametrize("gc", [False, True])
def test_activation_estimate_against_saved_tensors_on_tiny_shapes(tokenizer, gc):
    """What autograd keeps for backward, summed over the distinct storages of one SFT forward."""
    model, policy = _tiny(tokenizer, finetune="full", train_encoder=True,
                          gradient_checkpointing=gc)
    policy.train()
    batch = policy.prepare_batch([[torch.randn(32000)] for _ in range(4)], ["Rate <audio>"] * 4,
                                 ["the speech is clean MOS: 3.4 " * 3] * 4)
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sft_loss(policy(batch), batch["labels"])
    weights = {p.untyped_storage().data_ptr() for p in policy.parameters()}
    measured = sum(n for ptr, n in storages.items() if ptr not in weights)
    tokens = int(batch["attention_mask"].numel())
    shape = PolicyShape.from_config(model.config, finetune="full", train_encoder=True,
                                    load_bytes=4)
    plan = memory_plan(shape, Workload(batch_size=4, audio_seconds=2.0,
                                       text_tokens=tokens // 4 - 50, gradient_checkpointing=gc),
                       compute_bytes=4, runtime=0)
    estimate = plan["activations"] + plan["logits"]
    if gc:  # the forward keeps only layer inputs; the plan adds one layer's recompute
        assert measured <= estimate
    else:
        assert estimate == pytest.approx(measured, rel=0.3)


def test_7b_full_finetuning_fits_80gb_only_when_sharded():
    config = qwen2_audio_7b_config()
    work = Workload(batch_size=2, audio_seconds=10, clips=2, text_tokens=400,
                    gradient_checkpointing=True)

    def shape_for(finetune):
        return PolicyShape.from_config(config, finetune=finetune, lora_r=16, train_encoder=True)

    ddp = memory_plan(shape_for("full"), work, world=8)
    assert ddp["total"] > 160e9  # ~20 bytes per parameter for 8.4B before activations
    fsdp8 = memory_plan(shape_for("full"), work, world=8, distributed="fsdp")
    assert fsdp8["total"] < 60e9
    with pytest.raises(MemoryPlanError) as err:
        check_fit(ddp, 80e9, alternatives(shape_for, work, {"distributed": "ddp",
                                                            "finetune": "full"}, 8), "sft")
    message = str(err.value)
    assert "sft needs" in message and "distributed: fsdp (" in message
    assert "finetune: lora (" in message and "batch_size: 1 (" not in message


def test_plan_memory_reads_the_stage_block_without_loading_weights(tokenizer, tmp_path):
    model, processor = build_tiny_qwen2_audio(tokenizer, window_seconds=2.0, seed=0)
    model.config.save_pretrained(tmp_path)  # a config and no weights: nothing else is read
    loader = functools.partial(AudioLLM.from_pretrained, dtype="float32", finetune="full",
                               train_encoder=True)
    block = {"policy": loader, "train_dataloader_opts": {"batch_size": 2},
             "distributed": "ddp", "memory_plan": {"audio_seconds": 2.0, "text_tokens": 50}}
    plan = plan_memory("alld", block, tmp_path, {"device": "cpu"})
    shape = PolicyShape.from_config(model.config, finetune="full", train_encoder=True,
                                    load_bytes=4)
    expected = memory_plan(shape, Workload(batch_size=2, sequences=2, audio_seconds=2.0,
                                           text_tokens=50), compute_bytes=4, runtime=0)
    assert plan == expected
    assert RUNTIME_RESERVE > 0 and plan["runtime"] == 0  # no reserve counted on the CPU
    with pytest.raises(ValueError, match="distributed must be one of"):
        plan_memory("sft", {**block, "distributed": "zero3"}, tmp_path, {"device": "cpu"})
