"""ALLD training chain on tiny models: every stage, resume, LoRA checkpoints, overfitting, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import speechbrain as sb
import torch
from safetensors.torch import load_file

from speechbrain_alld.dataset import load_descriptions, sft_examples, write_examples
from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.models.expert_reference import ExpertReference
from speechbrain_alld.parsing import parse_mos
from speechbrain_alld.stages import build_policy, run_brain_stage

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes/Simulated/ALLD/train.py"
HPARAMS = REPO / "recipes/Simulated/ALLD/hparams/alld.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
TINY = ["--train_size=16", "--valid_size=6", "--test_size=6", "--num_workers=1",
        "--tiny_policy={audio_dim: 32, audio_layers: 1, text_dim: 32, text_layers: 1}",
        "--tiny_expert={hidden_size: 32, num_layers: 1}", "--expert_steps=5",
        "--sft_epochs=1", "--alld_epochs=1", "--batch_size=4", "--alld_batch_size=4",
        "--eval_batch_size=8", "--max_new_tokens=20", "--noprogressbar"]


def _run(args, cwd, launcher=(), timeout=900):
    merged = {a.split("=", 1)[0]: a for a in [*TINY, *args]}  # a later --key=value wins
    cmd = [*(launcher or [sys.executable]), str(RECIPE), str(HPARAMS), *merged.values()]
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (proc.stdout[-2000:] + proc.stderr[-4000:])
    return proc


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """The whole recipe once: simulate -> describe -> tiny models -> SFT -> y_a -> ref -> ALLD."""
    root = tmp_path_factory.mktemp("alld")
    out = root / "exp"
    proc = _run([f"--output_folder={out}", f"--corpus_folder={root / 'corpus'}"], root)
    return out, root, proc


def test_every_stage_writes_its_outputs(full_run):
    out, _, proc = full_run
    save = out / "save"
    for stage in ("data", "tiny", "sft", "alld"):
        assert (save / stage / "done.json").is_file(), stage
    assert "sft_test:" in proc.stdout and "alld_test:" in proc.stdout
    items = json.loads((save / "data" / "alld_items.json").read_text())
    rejected = [json.loads(x) for x in (save / "alld" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == len(items) > 0
    finished = sum(sum(r["finished"]) for r in rejected)
    examples = json.loads((save / "alld" / "alld_train.json").read_text())
    # One example per finished y_a (cut-off samples are left out), chosen cycling variants.
    assert len(examples) == finished > 0
    assert len((save / "alld" / "reference.jsonl").read_text().splitlines()) == len(examples)
    n_pairs = len(json.loads((out / "descriptions" / "NISQA_TEST_SIM_ab.json").read_text()))
    assert n_pairs >= 3
    for tag in ("sft", "alld"):
        summary = json.loads((save / tag / f"test_{tag}_summary.json").read_text())
        assert summary["mos_n"] == 6 and summary["ab_n"] == n_pairs
        assert summary["bleu_signature"].startswith("nrefs:1")
        lines = (save / tag / f"test_{tag}_items.jsonl").read_text().splitlines()
        assert len(lines) == 6 + n_pairs
    # Both final models reload in Hugging Face format and through the pretrained interface.
    from speechbrain_alld.inference import DescriptiveQualityEvaluator

    for tag in ("sft", "alld"):
        policy = AudioLLM.from_pretrained(save / tag / "model", finetune="frozen")
        assert policy.sampling_rate == 16000
        assert (save / tag / "model" / "hyperparams.yaml").is_file()
    evaluator = DescriptiveQualityEvaluator.from_hparams(source=str(save / "alld" / "model"),
                                                         savedir=str(out / "pretrained"))
    wav = json.loads((save / "data" / "test.json").read_text())
    first = next(v for v in wav.values() if v["task"] == "mos")["wavs"][0]
    assert evaluator.describe_file(first).source == first


def test_stored_reference_logprobs_equal_a_fresh_computation(full_run):
    out, _, _ = full_run
    save = out / "save"
    examples = json.loads((save / "alld" / "alld_train.json").read_text())
    reference = ExpertReference.from_pretrained(save / "tiny" / "expert", dtype="fp32")
    keys = sorted(examples)[:3]
    chosen, _ = reference.logprobs([examples[k]["prompt"] for k in keys],
                                   [examples[k]["chosen"] for k in keys])
    rejected, _ = reference.logprobs([examples[k]["prompt"] for k in keys],
                                     [examples[k]["rejected"] for k in keys])
    assert chosen.tolist() == pytest.approx([examples[k]["ref_chosen"] for k in keys], rel=1e-4)
    assert rejected.tolist() == pytest.approx([examples[k]["ref_rejected"] for k in keys],
                                              rel=1e-4)


def test_rerun_skips_every_finished_stage(full_run):
    out, root, _ = full_run
    model = out / "save" / "alld" / "model" / "model.safetensors"
    before = model.stat().st_mtime_ns
    rejected = (out / "save" / "alld" / "rejected.jsonl").read_bytes()
    proc = _run([f"--output_folder={out}", f"--corpus_folder={root / 'corpus'}"], root)
    assert model.stat().st_mtime_ns == before
    assert (out / "save" / "alld" / "rejected.jsonl").read_bytes() == rejected
    assert "Going into epoch" not in proc.stdout + proc.stderr


def _tiny_stage_inputs(full_run, tmp_path, n_items=6):
    out, _, _ = full_run
    items = load_descriptions(out / "descriptions", "NISQA_TRAIN_SIM", ["mos"])
    keys = sorted(items)[:n_items]
    train = write_examples(tmp_path / "train.json",
                           sft_examples(items, keys, variants=["default"]))
    return out, train


HP = {"max_new_tokens": 6, "mos_stats": None, "ab_stats": None, "generate_every": 0,
      "warmup_ratio": 0.0}


def _hparams():
    from speechbrain_alld.metrics import ABStats, MOSStats

    return {**HP, "mos_stats": MOSStats, "ab_stats": ABStats}


class Interrupt(Exception):
    pass


def test_sft_resumes_mid_epoch_and_matches_an_uninterrupted_run(full_run, tmp_path):
    out, train = _tiny_stage_inputs(full_run, tmp_path, n_items=6)
    source = out / "save" / "tiny" / "policy_init"
    settings = {"policy_kwargs": {"finetune": "full", "train_encoder": True}}

    def stage(folder, policy, run_opts):
        return run_brain_stage("sft", policy, _hparams(), run_opts, train, train, None, folder,
                               epochs=1, lr=1e-3, batch_size=1)

    torch.manual_seed(0)
    reference = build_policy(source, settings)
    stage(tmp_path / "straight", reference, {"noprogressbar": True})

    policy = build_policy(source, settings)
    original_forward = policy.forward
    calls = {"n": 0}

    def dying_forward(batch):
        calls["n"] += 1
        if calls["n"] == 4:  # the 4th training batch: 3 done, checkpointed after each
            raise Interrupt()
        return original_forward(batch)

    policy.forward = dying_forward
    torch.manual_seed(0)
    with pytest.raises(Interrupt):
        stage(tmp_path / "resumed", policy, {"noprogressbar": True, "ckpt_interval_steps": 1})
    resumed = build_policy(source, settings)
    forward = resumed.forward
    seen = {"n": 0}

    def counting_forward(batch):
        seen["n"] += 1
        return forward(batch)

    resumed.forward = counting_forward
    stage(tmp_path / "resumed", resumed, {"noprogressbar": True, "ckpt_interval_steps": 1})
    assert seen["n"] == (6 - 3) + 6  # the 3 remaining training batches, then 6 valid batches
    for (name, a), (_, b) in zip(reference.named_parameters(), resumed.named_parameters()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_lora_checkpoints_hold_only_trainable_parameters(full_run, tmp_path):
    out, train = _tiny_stage_inputs(full_run, tmp_path, n_items=2)
    policy = build_policy(out / "save" / "tiny" / "policy_init",
                          {"policy_kwargs": {"finetune": "lora", "lora_r": 2,
                                             "train_projector": False}})
    run_brain_stage("sft", policy, _hparams(), {"noprogressbar": True}, train, train, None,
                    tmp_path / "lora", epochs=1, lr=1e-3, batch_size=2)
    ckpts = sorted((tmp_path / "lora" / "checkpoints").glob("CKPT*"))
    saved = load_file(str(ckpts[-1] / "policy.ckpt"))
    assert saved and all("lora_" in k for k in saved)
    n_all = sum(p.numel() for p in policy.parameters())
    assert sum(v.numel() for v in saved.values()) < 0.1 * n_all


def test_tiny_sft_model_overfits_a_handful_of_clips(full_run, tmp_path):
    """Trained through ALLDBrain on 4 clips, the model's generated text states their MOS."""
    from transformers import AutoTokenizer

    from speechbrain_alld.dataset import load_waveform
    from speechbrain_alld.models.tiny import build_tiny_qwen2_audio

    out, train = _tiny_stage_inputs(full_run, tmp_path, n_items=4)
    examples = list(json.loads(train.read_text()).values())
    assert len({round(e["mos"], 1) for e in examples}) > 1  # the clips differ
    tokenizer = AutoTokenizer.from_pretrained(out / "save" / "tiny" / "policy_init")
    model, processor = build_tiny_qwen2_audio(tokenizer, audio_dim=64, text_dim=64, seed=1)
    policy = AudioLLM(model, processor, finetune="full", train_encoder=True)
    run_brain_stage("sft", policy, _hparams(), {"noprogressbar": True}, train, train, None,
                    tmp_path / "overfit", epochs=150, lr=3e-3, batch_size=4)
    policy.eval()
    texts = policy.generate([[load_waveform(w, 16000) for w in e["wavs"]] for e in examples],
                            [e["instruction"] for e in examples], max_new_tokens=200)
    predicted = [parse_mos(t) for t in texts]
    assert predicted == [pytest.approx(round(e["mos"], 1), abs=1e-9) for e in examples], texts


def test_ddp_two_processes_gloo(full_run, tmp_path):
    out, root, _ = full_run
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                "--master_port=29531"]
    proc = _run([f"--output_folder={tmp_path / 'ddp'}", f"--corpus_folder={root / 'corpus'}",
                 "--distributed_backend=gloo", "--max_new_tokens=40"], tmp_path,
                launcher=launcher)
    save = tmp_path / "ddp" / "save"
    for stage in ("sft", "alld"):
        assert (save / stage / "done.json").is_file()
        assert (save / stage / "model" / "model.safetensors").is_file()
        assert "epoch: 1" in (save / stage / "log.txt").read_text()
    # Each process sampled and scored its own share; together they cover every item once.
    shards = sorted((save / "alld").glob("rejected.rank*of2.jsonl"))
    keys = [json.loads(x)["key"] for p in shards for x in p.read_text().splitlines()]
    items = json.loads((save / "data" / "alld_items.json").read_text())
    assert len(shards) == 2 and sorted(keys) == sorted(items)
    assert "alld_test:" in proc.stdout


def test_bf16_precision_on_cpu(full_run, tmp_path):
    out, root, _ = full_run
    proc = _run([f"--output_folder={tmp_path / 'bf16'}", f"--corpus_folder={root / 'corpus'}",
                 "--precision=bf16", "--stop_after_sft=True"], tmp_path)
    assert (tmp_path / "bf16" / "save" / "sft" / "done.json").is_file()
    assert "sft_test:" in proc.stdout


def test_debug_mode_runs_every_stage_and_keeps_nothing(full_run, tmp_path):
    out, root, _ = full_run
    proc = _run([f"--output_folder={tmp_path / 'dbg'}", f"--corpus_folder={root / 'corpus'}",
                 "--debug"], tmp_path)
    assert "alld_test:" in proc.stdout
    assert not (tmp_path / "dbg" / "save" / "sft").exists()
    assert not (tmp_path / "dbg" / "save" / "alld").exists()


def test_live_reference_gives_the_same_alld_loss_as_precomputed(full_run):
    from speechbrain_alld.brain import ALLDBrain
    from speechbrain_alld.dataset import collate_examples, make_dataset

    out, _, _ = full_run
    save = out / "save"
    data = make_dataset(save / "alld" / "alld_train.json", 16000,
                        ("chosen", "rejected", "ref_chosen", "ref_rejected"))
    batch = collate_examples([data[i] for i in range(min(3, len(data)))])
    policy = AudioLLM.from_pretrained(save / "sft" / "model", dtype="fp32", finetune="full")
    policy.eval()
    reference = ExpertReference.from_pretrained(save / "tiny" / "expert", dtype="fp32")
    losses = []
    for ref in (None, reference):
        brain = ALLDBrain(modules={"policy": policy},
                          hparams={**_hparams(), "stage": "alld", "beta": 0.4,
                                   "reference": ref},
                          run_opts={"noprogressbar": True})
        brain.on_stage_start(sb.Stage.TRAIN, 1)
        with torch.no_grad():
            predictions = brain.compute_forward(batch, sb.Stage.TRAIN)
            losses.append(float(brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)))
        assert brain._reward["n"] == len(batch)
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_finished_stage_with_other_settings_is_refused(full_run):
    out, root, _ = full_run
    merged = {a.split("=", 1)[0]: a for a in [*TINY, f"--output_folder={out}",
                                                f"--corpus_folder={root / 'corpus'}",
                                                "--alld_lr=0.5"]}
    proc = subprocess.run([sys.executable, str(RECIPE), str(HPARAMS), *merged.values()],
                          cwd=root, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr  # SpeechBrain logs the exception to stdout
    assert "StageMismatchError" in text and "other settings" in text


def test_sampling_resumes_with_the_same_samples(full_run, tmp_path):
    from speechbrain_alld.stages import sample_rejected

    out, _, _ = full_run
    items = json.loads((out / "save" / "data" / "alld_items.json").read_text())
    items = dict(sorted(items.items())[:6])
    policy = AudioLLM.from_pretrained(out / "save" / "sft" / "model", finetune="frozen")
    settings = dict(n_samples=2, max_new_tokens=8, batch_size=2, seed=3, progress=False)
    straight = sample_rejected(policy, items, tmp_path / "a.jsonl", **settings)

    calls = {"n": 0}
    original = policy.generate

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Interrupt()
        return original(*args, **kwargs)

    policy.generate = dying
    with pytest.raises(Interrupt):
        sample_rejected(policy, items, tmp_path / "b.jsonl", **settings)
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 4
    policy.generate = original
    resumed = sample_rejected(policy, items, tmp_path / "b.jsonl", **settings)
    assert resumed == straight
    assert all(len(v["samples"]) == 2 for v in resumed.values())
