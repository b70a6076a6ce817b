"""FSDP2 training on two CPU processes (gloo) against one process on the same global batches.

Two processes with batch b each see, per optimiser step, the same examples as one process with
batch b and gradient accumulation 2 reading the examples interleaved ([e0, e2], [e1, e3]): the
same mean of the two batch losses is differentiated, so losses and trained weights must agree.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from speechbrain_alld.dataset import make_dataset
from speechbrain_alld.memory_plan import PolicyShape, Workload, memory_plan
from speechbrain_alld.models.audio_llm import AudioLLM

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "fsdp_worker.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
INTERLEAVED = [0, 2, 1, 3, 4, 6, 5, 7]  # one process, accumulation 2 == rank 0 / rank 1 batches


def _worker(args, out, nproc=0, port=29641, check=True):
    launcher = [sys.executable] if not nproc else [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
        f"--master_port={port}"]
    proc = subprocess.run([*launcher, str(WORKER), *args, "--out", str(out)], env=ENV,
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _results(out, nproc):
    return [json.loads((out / f"losses.rank{r}.json").read_text()) for r in range(nproc)]


def _weights(out):
    return load_file(str(out / "model" / "model.safetensors"))


@pytest.fixture(scope="module")
def data(full_run, tmp_path_factory):
    """SFT and ALLD manifests of 8 examples (one file per order), a valid manifest, the source."""
    out, _, _ = full_run
    save = out / "save"
    root = tmp_path_factory.mktemp("fsdp")
    sft = json.loads((save / "data" / "sft_train.json").read_text())
    keys = sorted(sft)[:8]
    alld = {}
    for i, key in enumerate(keys):  # chosen: the expert text; rejected: another item's text
        example = dict(sft[key], chosen=sft[key]["response"],
                       rejected=sft[keys[(i + 3) % 8]]["response"])
        example["ref_chosen"] = -2.0 * len(example["chosen"].split())
        example["ref_rejected"] = -2.5 * len(example["rejected"].split())
        alld[key] = example
    for name, examples in (("sft", sft), ("alld", alld)):
        (root / f"{name}_ranks.json").write_text(json.dumps({k: examples[k] for k in keys}))
        (root / f"{name}_one.json").write_text(json.dumps(
            {keys[i]: examples[keys[i]] for i in INTERLEAVED}))
    valid = json.loads((save / "data" / "valid.json").read_text())
    (root / "valid.json").write_text(json.dumps({k: valid[k] for k in sorted(valid)[:5]}))
    return root, save / "tiny" / "policy_init"


def _args(data, stage, finetune, order, *extra):
    root, source = data
    return ["--stage", stage, "--finetune", finetune, "--source", str(source),
            "--train", str(root / f"{stage}_{order}.json"), "--valid", str(root / "valid.json"),
            *extra]


@pytest.fixture(scope="module")
def sft_runs(data, tmp_path_factory):
    """Full fine-tuning, 2 epochs: one process and FSDP on two processes."""
    root = tmp_path_factory.mktemp("sft")
    one, sharded = root / "one", root / "fsdp"
    _worker(_args(data, "sft", "full", "one", "--epochs", "2", "--grad_accumulation_factor", "2"),
            one)
    _worker(_args(data, "sft", "full", "ranks", "--epochs", "2", "--ckpt_interval_steps", "1"),
            sharded, nproc=2)
    return one, sharded


def test_fsdp_full_finetuning_matches_one_process(sft_runs):
    one, sharded = sft_runs
    (single,) = _results(one, 1)
    ranks = _results(sharded, 2)
    assert all(r["sharded"] for r in ranks) and not single["sharded"]
    # Step k of one process = microbatch 2k (rank 0's batch) and 2k+1 (rank 1's).
    interleaved = [loss for pair in zip(ranks[0]["losses"], ranks[1]["losses"]) for loss in pair]
    assert interleaved == pytest.approx(single["losses"], rel=1e-5, abs=1e-6)
    assert len(single["losses"]) == 8
    # Valid: items split over the processes, gathered, each once: the same loss and texts.
    assert ranks[0]["valid"]["loss"] == pytest.approx(single["valid"]["loss"], rel=1e-6)
    assert ranks[0]["valid"]["ab_n"] == ranks[1]["valid"]["ab_n"] == single["valid"]["ab_n"] == 5
    a, b = _weights(one), _weights(sharded)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


def test_fsdp_weights_moved_and_each_process_holds_half(sft_runs, data):
    one, sharded = sft_runs
    initial = load_file(str(data[1] / "model.safetensors"))
    trained = _weights(sharded)
    assert max((trained[k] - initial[k]).abs().max().item() for k in initial) > 1e-4
    (single,) = _results(one, 1)
    ranks = _results(sharded, 2)
    for part in ("weights", "optimizer"):
        full = single["local_bytes"][part]
        per_rank = [r["local_bytes"][part] for r in ranks]
        # Dim-0 shards: the halves add up to the whole and neither exceeds half plus a row.
        assert sum(per_rank) == pytest.approx(full, rel=0.02), part
        assert max(per_rank) <= 0.55 * full, part
    # The memory plan's per-process shares: bytes / processes (fp32 weights and Adam moments).
    from transformers import AutoConfig

    shape = PolicyShape.from_config(AutoConfig.from_pretrained(data[1]), finetune="full",
                                    train_encoder=True, load_bytes=4)
    work = Workload(batch_size=2)
    for world, held in ((1, [single]), (2, ranks)):
        plan = memory_plan(shape, work, world=world, distributed="fsdp" if world > 1 else "ddp")
        for part in ("weights", "optimizer"):
            assert max(r["local_bytes"][part] for r in held) == pytest.approx(plan[part],
                                                                             rel=0.05), part


def test_fsdp_saved_model_reloads_with_the_same_logprobs(sft_runs, data):
    _, sharded = sft_runs
    ranks = _results(sharded, 2)
    policy = AudioLLM.from_pretrained(sharded / "model", dtype="float32", finetune="frozen")
    policy.eval()
    dataset = make_dataset(data[0] / "valid.json", policy.sampling_rate)
    examples = [dataset[k] for k in range(2)]
    with torch.no_grad():
        logp, _ = policy.sequence_logprobs(policy.prepare_batch(
            [e["audio"] for e in examples], [e["instruction"] for e in examples],
            [e["response"] for e in examples]))
    assert ranks[0]["logprobs"] == ranks[1]["logprobs"]
    assert logp.tolist() == pytest.approx(ranks[0]["logprobs"], rel=1e-5)


def test_killed_fsdp_run_resumes_mid_epoch_to_the_same_weights(sft_runs, data, tmp_path):
    _, straight = sft_runs
    out = tmp_path / "killed"
    args = _args(data, "sft", "full", "ranks", "--epochs", "2", "--ckpt_interval_steps", "1")
    died = _worker([*args, "--die_before_step", "4"], out, nproc=2, check=False)
    assert died.returncode != 0 and not (out / "model").exists()
    _worker(args, out, nproc=2)
    ranks, reference = _results(out, 2), _results(straight, 2)
    for r in range(2):  # only the 4th batch of each process ran again, with the same loss
        assert ranks[r]["losses"] == pytest.approx(reference[r]["losses"][3:], rel=1e-6)
    a, b = _weights(straight), _weights(out)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-6, atol=1e-7, msg=key)


def test_sharded_checkpoints_load_on_another_number_of_processes(sft_runs, data, tmp_path):
    import shutil

    _, straight = sft_runs
    out = tmp_path / "one_rank"
    shutil.copytree(straight / "checkpoints", out / "checkpoints")
    args = _args(data, "sft", "full", "ranks", "--epochs", "2", "--ckpt_interval_steps", "1")
    _worker(args, out, nproc=1, port=29642)  # every epoch done: recover the best, save
    (result,) = _results(out, 1)
    assert result["losses"] == [] and result["sharded"]
    a, b = _weights(straight), _weights(out)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)

    # A mid-epoch checkpoint counts batches per process: refused on another count.
    killed = tmp_path / "killed"
    _worker([*args, "--die_before_step", "4"], killed, nproc=2, check=False)
    proc = _worker(args, killed, nproc=1, port=29642, check=False)
    assert proc.returncode != 0
    assert "mid-epoch checkpoint written by 2 process(es); resume it with 2" in proc.stderr


def test_fsdp_alld_with_lora_matches_one_process(data, tmp_path):
    """ALLD, LoRA, activation checkpointing in both runs, FSDP with its CPU offload policy."""
    one, sharded = tmp_path / "one", tmp_path / "fsdp"
    _worker(_args(data, "alld", "lora", "one", "--grad_accumulation_factor", "2",
                  "--gradient_checkpointing"), one)
    _worker(_args(data, "alld", "lora", "ranks", "--gradient_checkpointing", "--fsdp",
                  json.dumps({"cpu_offload": True})), sharded, nproc=2)
    (single,) = _results(one, 1)
    ranks = _results(sharded, 2)
    interleaved = [loss for pair in zip(ranks[0]["losses"], ranks[1]["losses"]) for loss in pair]
    assert interleaved == pytest.approx(single["losses"], rel=1e-5, abs=1e-6)
    assert ranks[0]["valid"]["loss"] == pytest.approx(single["valid"]["loss"], rel=1e-6)
    a, b = _weights(one), _weights(sharded)  # merged LoRA, gathered on rank 0
    initial = load_file(str(data[1] / "model.safetensors"))
    assert max((a[k] - initial[k]).abs().max().item() for k in a) > 1e-4
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


def test_recipe_trains_with_fsdp_on_two_processes(full_run, tmp_path):
    """The Simulated recipe end to end with distributed_mode: fsdp and full fine-tuning."""
    from recipe_run import _run

    _, root, _ = full_run
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                "--master_port=29643"]
    proc = _run({"output_folder": tmp_path / "fsdp", "corpus_folder": root / "corpus",
                 "max_new_tokens": 40, "distributed_mode": "fsdp",
                 "policy": {"finetune": "full", "train_encoder": True}}, tmp_path,
                launcher=launcher, flags=("--distributed_backend=gloo",))
    save = tmp_path / "fsdp" / "save"
    log = proc.stdout + proc.stderr
    assert "sft, 2 process(es), fsdp, full: memory plan sft (per GPU)" in log
    for stage in ("sft", "alld"):
        assert (save / stage / "done.json").is_file()
        (checkpoint,) = (save / stage / "checkpoints").glob("CKPT+*")
        shards = sorted(p.name for p in (checkpoint / "policy.ckpt").glob("*.distcp"))
        assert shards == ["__0_0.distcp", "__1_0.distcp"], stage  # one file per process
        saved = load_file(str(save / stage / "model" / "model.safetensors"))
        initial = load_file(str(save / "tiny" / "policy_init" / "model.safetensors"))
        assert saved.keys() == initial.keys()  # whole, gathered: no shard or DTensor left
        assert max((saved[k] - initial[k]).abs().max().item() for k in saved) > 0
    assert "alld_test:" in proc.stdout


def test_fsdp_gradient_accumulation_matches_one_process(data, tmp_path):
    """Batch 1, accumulation 2 on each of two processes = batch 1, accumulation 4 on one."""
    one, sharded = tmp_path / "one", tmp_path / "fsdp"
    _worker(_args(data, "sft", "full", "one", "--batch_size", "1",
                  "--grad_accumulation_factor", "4"), one)
    _worker(_args(data, "sft", "full", "ranks", "--batch_size", "1",
                  "--grad_accumulation_factor", "2"), sharded, nproc=2)
    a, b = _weights(one), _weights(sharded)
    initial = load_file(str(data[1] / "model.safetensors"))
    assert max((a[k] - initial[k]).abs().max().item() for k in a) > 1e-4
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
