"""The NISQA ALLD recipe (real-scale YAML) runs end to end with tiny stand-in models."""

import json
import os
import subprocess
import sys
from pathlib import Path

from nisqa_fixture import build_corpus, make_row

from speechbrain_alld.corpora import prepare_corpus
from speechbrain_alld.describe import DescribeConfig, TemplateExpert, describe_manifests
from speechbrain_alld.describe.experts import PAPER_VARIANTS
from speechbrain_alld.models.tiny import init_tiny_models

REPO = Path(__file__).resolve().parents[1]


def test_nisqa_alld_recipe_with_tiny_stand_ins(tmp_path):
    rows = {s: [make_row(s, i, mos=f"{1.2 + 0.4 * i:.2f}") for i in range(n)]
            for s, n in (("NISQA_TRAIN_SIM", 10), ("NISQA_VAL_LIVE", 3), ("NISQA_VAL_SIM", 4))}
    root = build_corpus(tmp_path / "NISQA_Corpus", rows)
    manifests = prepare_corpus("nisqa", root, tmp_path / "m", list(rows))
    descriptions = tmp_path / "descriptions"
    describe_manifests(manifests, TemplateExpert(), descriptions,
                       DescribeConfig(variants=PAPER_VARIANTS[:2], min_gap=0.4), progress=False)
    tiny = init_tiny_models(descriptions, "NISQA_TRAIN_SIM", tmp_path / "tiny",
                            vocab_size=400, window_seconds=1.0,
                            policy_config={"audio_dim": 32, "audio_layers": 1, "text_dim": 32,
                                           "text_layers": 1},
                            expert_config={"hidden_size": 32, "num_layers": 1},
                            expert_steps=3, progress=False)
    out = tmp_path / "exp"
    # The recipe makes its own descriptive corpus (run_describe) with the template expert.
    cmd = [sys.executable, str(REPO / "recipes/NISQA/ALLD/train.py"),
           str(REPO / "recipes/NISQA/ALLD/hparams/alld.yaml"), f"--data_folder={root}",
           f"--output_folder={out}", f"--descriptions_folder={out / 'descriptions'}",
           "--run_describe=True",
           "--expert_writer=!name:speechbrain_alld.describe.template_expert.TemplateExpert",
           f"--policy_source={tiny['policy']}", f"--expert_source={tiny['expert']}",
           "--policy_dtype=fp32", "--expert={dtype: fp32}", "--eval_batch_size=4",
           "--max_new_tokens=4", "--loader_workers=0",
           "--sft={batch_size: 4, lr: 0.001, number_of_epochs: 1}",
           "--alld={batch_size: 2, lr: 0.002}", "--examples={valid_max_items: 4}",
           # A 1-epoch tiny model rarely stops within 4 tokens: keep its cut-off samples.
           "--reference={keep_truncated: True}",
           "--test_split=NISQA_VAL_SIM", "--noprogressbar"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    save = out / "save"
    assert (out / "descriptions" / "NISQA_TRAIN_SIM_mos.json").is_file()
    assert json.loads((save / "test" / "sft" / "done.json").read_text())["test"]["mos_n"] == 4
    # The nested overrides reached the optimisers the YAML declares.
    import torch

    for stage, lr in (("sft", 1e-3), ("alld", 2e-3)):
        ckpt = sorted((save / stage / "checkpoints").glob("CKPT*"))[-1] / "optimizer.ckpt"
        assert torch.load(ckpt)["param_groups"][0]["initial_lr"] == lr
    assert (save / "alld" / "model" / "adapter_config.json").exists() is False  # merged
    assert (save / "alld" / "model" / "model.safetensors").is_file()
    # LoRA (the recipe default): checkpoints hold only trainable parameters.
    from safetensors.torch import load_file

    ckpt = sorted((save / "alld" / "checkpoints").glob("CKPT*"))[-1] / "policy.ckpt"
    keys = list(load_file(str(ckpt)))
    assert keys and all("lora_" in k or "multi_modal_projector" in k for k in keys)


def test_nisqa_recipe_refuses_missing_descriptions(tmp_path):
    root = build_corpus(tmp_path / "NISQA_Corpus", {
        s: [make_row(s, i) for i in range(3)]
        for s in ("NISQA_TRAIN_SIM", "NISQA_VAL_LIVE", "NISQA_VAL_SIM")})
    cmd = [sys.executable, str(REPO / "recipes/NISQA/ALLD/train.py"),
           str(REPO / "recipes/NISQA/ALLD/hparams/alld.yaml"), f"--data_folder={root}",
           f"--output_folder={tmp_path / 'exp'}", f"--descriptions_folder={tmp_path / 'none'}"]
    proc = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "describe.py" in proc.stderr


def test_nisqa_recipe_refuses_to_describe_under_torchrun(tmp_path):
    """Describing on rank 0 while the other ranks wait would outlast the process-group timeout
    with a 70B describer: the recipe stops at once with what to do instead."""
    root = build_corpus(tmp_path / "NISQA_Corpus", {
        s: [make_row(s, i) for i in range(3)]
        for s in ("NISQA_TRAIN_SIM", "NISQA_VAL_LIVE", "NISQA_VAL_SIM")})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_port=29547", str(REPO / "recipes/NISQA/ALLD/train.py"),
           str(REPO / "recipes/NISQA/ALLD/hparams/alld.yaml"), f"--data_folder={root}",
           f"--output_folder={tmp_path / 'exp'}", "--run_describe=True",
           "--distributed_backend=gloo"]
    proc = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "run_describe: True is for a single process" in proc.stderr
    assert "recipes/NISQA/describe.py" in proc.stderr
