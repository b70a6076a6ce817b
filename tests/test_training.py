"""ALLD training chain on tiny models: every stage, resume, LoRA checkpoints, overfitting, DDP."""

import json
import subprocess
import sys

import pytest
import speechbrain as sb
import torch
from recipe_run import ENV, HPARAMS, RECIPE, REPO, TINY, _block, _run, recipe_args  # noqa: F401
from safetensors.torch import load_file

from speechbrain_alld.dataset import load_descriptions, sft_examples, write_examples
from speechbrain_alld.models.audio_llm import AudioLLM
from speechbrain_alld.models.expert_reference import ExpertReference
from speechbrain_alld.parsing import parse_mos
from speechbrain_alld.training import fit_policy


def test_every_stage_writes_its_outputs(full_run):
    out, _, proc = full_run
    save = out / "save"
    for stage in ("data", "tiny", "sft", "sample", "reference", "alld", "test/sft",
                  "test/alld"):
        assert (save / stage / "done.json").is_file(), stage
    assert "sft_test:" in proc.stdout and "alld_test:" in proc.stdout
    items = json.loads((save / "data" / "alld_items.json").read_text())
    rejected = [json.loads(x) for x in (save / "sample" / "rejected.jsonl").read_text()
                .splitlines()]
    assert len(rejected) == len(items) > 0
    finished = sum(sum(r["finished"]) for r in rejected)
    examples = json.loads((save / "reference" / "alld_train.json").read_text())
    # One example per finished y_a (cut-off samples are left out), chosen cycling variants.
    assert len(examples) == finished > 0
    assert len((save / "reference" / "reference.jsonl").read_text().splitlines()) == len(
        examples)
    # ALLD logs what DPO tools log.
    log = (save / "alld" / "log.txt").read_text()
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margin", "rewards/accuracy",
                "logps/chosen", "logps/rejected"):
        assert f"train {key}:" in log, key
    n_pairs = len(json.loads((out / "descriptions" / "NISQA_TEST_SIM_ab.json").read_text()))
    assert n_pairs >= 3
    for tag in ("sft", "alld"):
        summary = json.loads((save / "test" / tag / f"test_{tag}_summary.json").read_text())
        assert summary["mos_n"] == 6 and summary["ab_n"] == n_pairs
        assert summary["bleu_signature"].startswith("nrefs:1")
        lines = (save / "test" / tag / f"test_{tag}_items.jsonl").read_text().splitlines()
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
    examples = json.loads((save / "reference" / "alld_train.json").read_text())
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
    rejected = (out / "save" / "sample" / "rejected.jsonl").read_bytes()
    proc = _run({"output_folder": out, "corpus_folder": root / "corpus"}, root)
    assert model.stat().st_mtime_ns == before
    assert (out / "save" / "sample" / "rejected.jsonl").read_bytes() == rejected
    assert "Going into epoch" not in proc.stdout + proc.stderr
    for stage in ("tiny", "examples", "sft", "sample", "reference", "alld", "testing/sft",
                  "testing/alld"):
        assert f"Stage '{stage}' already finished" in proc.stdout + proc.stderr, stage


def _tiny_stage_inputs(full_run, tmp_path, n_items=6):
    out, _, _ = full_run
    items = load_descriptions(out / "descriptions", "NISQA_TRAIN_SIM", ["mos"])
    keys = sorted(items)[:n_items]
    train = write_examples(tmp_path / "train.json",
                           sft_examples(items, keys, variants=["default"]))
    return out, train


def _policy(source, **kwargs):
    return AudioLLM.from_pretrained(source, **kwargs)


class Interrupt(Exception):
    pass


def test_sft_resumes_mid_epoch_and_matches_an_uninterrupted_run(full_run, tmp_path):
    out, train = _tiny_stage_inputs(full_run, tmp_path, n_items=6)
    source = out / "save" / "tiny" / "policy_init"
    settings = {"finetune": "full", "train_encoder": True}

    def stage(folder, policy, run_opts):
        folder.mkdir(exist_ok=True)
        return fit_policy("sft", policy, _block(folder, 1, 1e-3, 1), run_opts, train, train)

    torch.manual_seed(0)
    reference = _policy(source, **settings)
    stage(tmp_path / "straight", reference, {"noprogressbar": True})

    policy = _policy(source, **settings)
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
    resumed = _policy(source, **settings)
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


def test_a_declared_optimiser_and_schedule_replace_the_defaults(full_run, tmp_path):
    import functools

    out, train = _tiny_stage_inputs(full_run, tmp_path, n_items=3)
    policy = _policy(out / "save" / "tiny" / "policy_init", finetune="full", train_encoder=True)
    (tmp_path / "swap").mkdir()
    block = _block(tmp_path / "swap", 1, 1e-3, 1,
                   opt_class=functools.partial(torch.optim.SGD, lr=0.01, momentum=0.9),
                   lr_scheduler=functools.partial(torch.optim.lr_scheduler.OneCycleLR,
                                                  max_lr=0.05))
    brain = fit_policy("sft", policy, block, {"noprogressbar": True}, train, train)
    assert isinstance(brain.optimizer, torch.optim.SGD)
    assert isinstance(brain.lr_scheduler, torch.optim.lr_scheduler.OneCycleLR)
    assert brain.lr_scheduler.total_steps == 3  # 3 examples, batch 1, one epoch
    assert brain.lr_scheduler.last_epoch == 3  # stepped once per optimiser step


def test_a_finished_stage_leaves_no_model_in_memory(full_run, tmp_path):
    """The stage's checkpointer lives on in the hparams; once the stage is over neither it nor
    a reference cycle keeps the policy (16.8 GB on a GPU at 7B) alive."""
    import gc
    import weakref

    from speechbrain_alld.training import release_memory

    out, train = _tiny_stage_inputs(full_run, tmp_path, n_items=2)
    (tmp_path / "gone").mkdir()
    block = _block(tmp_path / "gone", 1, 1e-3, 2)
    policy = _policy(out / "save" / "tiny" / "policy_init", finetune="full")
    brain = fit_policy("sft", policy, block, {"noprogressbar": True}, train, train)
    ref = weakref.ref(policy)
    assert set(block["checkpointer"].recoverables) == {"counter"}
    del policy, brain
    release_memory()
    assert ref() is None
    assert not [o for o in gc.get_objects() if isinstance(o, AudioLLM)]


def test_lora_checkpoints_hold_only_trainable_parameters(full_run, tmp_path):
    out, train = _tiny_stage_inputs(full_run, tmp_path, n_items=2)
    policy = _policy(out / "save" / "tiny" / "policy_init", finetune="lora", lora_r=2,
                     train_projector=False)
    (tmp_path / "lora").mkdir()
    fit_policy("sft", policy, _block(tmp_path / "lora", 1, 1e-3, 2), {"noprogressbar": True},
               train, train)
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
    (tmp_path / "overfit").mkdir()
    fit_policy("sft", policy, _block(tmp_path / "overfit", 150, 3e-3, 4),
               {"noprogressbar": True}, train, train)
    policy.eval()
    texts = policy.generate([[load_waveform(w, 16000) for w in e["wavs"]] for e in examples],
                            [e["instruction"] for e in examples], max_new_tokens=200)
    predicted = [parse_mos(t) for t in texts]
    assert predicted == [pytest.approx(round(e["mos"], 1), abs=1e-9) for e in examples], texts


def test_ddp_two_processes_gloo(full_run, tmp_path):
    out, root, _ = full_run
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                "--master_port=29531"]
    proc = _run({"output_folder": tmp_path / "ddp", "corpus_folder": root / "corpus",
                 "max_new_tokens": 40}, tmp_path, launcher=launcher,
                flags=("--distributed_backend=gloo",))
    save = tmp_path / "ddp" / "save"
    for stage in ("sft", "alld"):
        assert (save / stage / "done.json").is_file()
        assert (save / stage / "model" / "model.safetensors").is_file()
        assert "epoch: 1" in (save / stage / "log.txt").read_text()
    # Each process sampled and scored its own share; together they cover every item once.
    shards = sorted((save / "sample").glob("rejected.rank*of2.jsonl"))
    keys = [json.loads(x)["key"] for p in shards for x in p.read_text().splitlines()]
    items = json.loads((save / "data" / "alld_items.json").read_text())
    assert len(shards) == 2 and sorted(keys) == sorted(items)
    assert "alld_test:" in proc.stdout


def test_bf16_precision_on_cpu(full_run, tmp_path):
    out, root, _ = full_run
    proc = _run({"output_folder": tmp_path / "bf16", "corpus_folder": root / "corpus",
                 "run_alld": False, "testing": {"models": ["sft"]}}, tmp_path,
                flags=("--precision=bf16",))
    assert (tmp_path / "bf16" / "save" / "sft" / "done.json").is_file()
    assert not (tmp_path / "bf16" / "save" / "alld" / "done.json").exists()
    assert not (tmp_path / "bf16" / "save" / "sample").exists()
    assert "sft_test:" in proc.stdout and "alld_test:" not in proc.stdout
    assert "Using training precision: `--precision=bf16`" in proc.stdout + proc.stderr


def test_debug_mode_runs_every_stage_and_keeps_nothing(full_run, tmp_path):
    out, root, _ = full_run
    proc = _run({"output_folder": tmp_path / "dbg", "corpus_folder": root / "corpus"},
                tmp_path, flags=("--debug",))
    assert "alld_test:" in proc.stdout
    assert not (tmp_path / "dbg").exists()


def test_live_reference_gives_the_same_alld_loss_as_precomputed(full_run, tmp_path):
    import functools

    from speechbrain_alld.brain import ALLDBrain
    from speechbrain_alld.dataset import collate_examples, make_dataset
    from speechbrain_alld.losses import alld_loss

    out, _, _ = full_run
    save = out / "save"
    data = make_dataset(save / "reference" / "alld_train.json", 16000,
                        ("chosen", "rejected", "ref_chosen", "ref_rejected"))
    batch = collate_examples([data[i] for i in range(min(3, len(data)))])
    policy = AudioLLM.from_pretrained(save / "sft" / "model", dtype="fp32", finetune="full")
    policy.eval()
    reference = ExpertReference.from_pretrained(save / "tiny" / "expert", dtype="fp32")
    losses = []
    for ref in (None, reference):
        brain = ALLDBrain(modules={"policy": policy},
                          hparams={**_block(tmp_path / "live", 1, 1e-3, 3), "stage": "alld",
                                   "loss": functools.partial(alld_loss, beta=0.4),
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
    args = recipe_args({"output_folder": out, "corpus_folder": root / "corpus",
                        "alld": {"lr": 0.5}})
    proc = subprocess.run([sys.executable, str(RECIPE), str(HPARAMS), *args],
                          cwd=root, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr  # SpeechBrain logs the exception to stdout
    assert "StageMismatchError" in text and "other settings" in text
    assert "stage 'alld'" in text


def test_a_changed_stage_invalidates_what_follows_and_nothing_before(full_run, tmp_path):
    """Change one setting of the sample stage on a finished run (copied elsewhere: fingerprints
    do not depend on where the experiment folder lies): the stages before it are skipped, the
    sample stage is refused; once its folder is removed it runs again, and then the reference
    stage (whose input changed) is refused in turn."""
    import shutil

    out, root, _ = full_run
    copy = tmp_path / "exp"
    shutil.copytree(out, copy)
    args = recipe_args({"output_folder": copy, "corpus_folder": root / "corpus",
                        "sample": {"temperature": 0.7}})

    def run():
        proc = subprocess.run([sys.executable, str(RECIPE), str(HPARAMS), *args], cwd=root,
                              env=ENV, capture_output=True, text=True, timeout=600)
        return proc.returncode, proc.stdout + proc.stderr

    before = {s: (copy / "save" / s / "done.json").read_bytes() for s in ("data", "sft")}
    code, text = run()
    assert code != 0 and "StageMismatchError" in text, text[-3000:]
    assert "stage 'sample'" in text, text[-3000:]
    for stage in ("tiny", "examples", "sft"):
        assert f"Stage '{stage}' already finished" in text, stage
    assert "Going into epoch" not in text
    shutil.rmtree(copy / "save" / "sample")
    code, text = run()
    assert code != 0 and "StageMismatchError" in text, text[-3000:]
    assert "stage 'reference'" in text, text[-3000:]
    assert (copy / "save" / "sample" / "done.json").is_file()  # the sample stage ran again
    assert {s: (copy / "save" / s / "done.json").read_bytes() for s in ("data", "sft")} == before


def test_sampling_resumes_with_the_same_samples(full_run, tmp_path):
    from speechbrain_alld.preference import sample_rejected

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


def test_task_grouped_batches_hold_one_task_each_and_set_the_schedule(full_run, tmp_path):
    out, _, _ = full_run
    items = load_descriptions(out / "descriptions", "NISQA_TRAIN_SIM", ["mos", "ab"])
    mos = sorted(k for k in items if k.startswith("mos:"))[:5]
    ab = sorted(k for k in items if k.startswith("ab:"))[:3]
    train = write_examples(tmp_path / "train.json",
                           sft_examples(items, mos + ab, variants=["default"]))
    policy = _policy(out / "save" / "tiny" / "policy_init", finetune="full")
    clips_per_batch = []
    prepare = policy.prepare_batch

    def recording_prepare(audios, *args, **kwargs):
        if policy.training:
            clips_per_batch.append(sorted({len(a) for a in audios}))
        return prepare(audios, *args, **kwargs)

    policy.prepare_batch = recording_prepare
    (tmp_path / "grouped").mkdir()
    block = _block(tmp_path / "grouped", 2, 1e-3, 2)
    block["train_dataloader_opts"] = {"batch_size": 2, "shuffle": True, "group_by_task": True}
    brain = fit_policy("sft", policy, block, {"noprogressbar": True}, train, train)
    per_epoch = 3 + 2  # ceil(5 MOS / 2) + ceil(3 A/B / 2)
    assert brain.hparams.total_steps == 2 * per_epoch  # not ceil(8 / 2) per epoch
    assert len(clips_per_batch) == 2 * per_epoch
    assert all(len(c) == 1 for c in clips_per_batch)  # never MOS and A/B in one batch
    assert sorted(map(tuple, clips_per_batch)) == [(1,)] * 6 + [(2,)] * 4
    sampler = brain.train_sampler
    assert sampler.epoch == 2  # SpeechBrain moved the sampler on to each epoch
    last = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != last  # each epoch its own order
