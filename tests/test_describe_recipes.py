"""The describe recipes run end to end from their YAML (NISQA with an HF expert, Simulated)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from nisqa_fixture import build_corpus, make_row

from speechbrain_alld.describe.prompts import FACTOR_EXPLANATION
from speechbrain_alld.models.tiny import build_tiny_causal_lm, train_tiny_tokenizer

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_nisqa_describe_recipe_with_a_local_hf_expert(tmp_path):
    root = build_corpus(tmp_path / "nisqa", {
        "NISQA_TRAIN_SIM": [make_row("NISQA_TRAIN_SIM", i) for i in range(4)],
        "NISQA_VAL_SIM": [make_row("NISQA_VAL_SIM", i) for i in range(3)],
    })
    tokenizer = train_tiny_tokenizer([FACTOR_EXPLANATION, "MOS: 3.4. Speech A."] * 3, 360)
    build_tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1).save_pretrained(
        tmp_path / "expert")
    tokenizer.save_pretrained(tmp_path / "expert")
    out = tmp_path / "exp"
    cmd = [sys.executable, str(REPO / "recipes/NISQA/describe.py"),
           str(REPO / "recipes/NISQA/hparams/describe.yaml"), f"--data_folder={root}",
           f"--output_folder={out}", f"--expert_model={tmp_path / 'expert'}",
           "--expert_device=cpu", "--expert_dtype=fp32", "--max_new_tokens=4",
           "--max_retries=0", "--splits=[NISQA_TRAIN_SIM, NISQA_VAL_SIM]", "--noprogressbar"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NISQA_TRAIN_SIM: requested 40" in proc.stdout  # (4 clips + 4 pairs) x 5 variants
    for split, n in (("NISQA_TRAIN_SIM", 4), ("NISQA_VAL_SIM", 3)):
        assert len(json.loads((out / "manifests" / f"{split}.json").read_text())) == n
        summary = json.loads((out / "descriptions" / f"{split}_summary.json").read_text())
        assert summary["requested"] == summary["generated"] == 2 * n * 5
    assert (out / "hyperparams.yaml").is_file()


def test_simulated_describe_recipe_refuses_missing_manifests(tmp_path):
    cmd = [sys.executable, str(REPO / "recipes/Simulated/describe.py"),
           str(REPO / "recipes/Simulated/hparams/describe.yaml"),
           f"--manifest_folder={tmp_path / 'none'}", f"--output_folder={tmp_path / 'o'}"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "simulate_prepare.py" in proc.stderr and "not found" in proc.stderr


def test_simulated_prepare_then_describe_recipes(tmp_path):
    overrides = ["--seed=3", "--train_size=12", "--valid_size=4", "--test_size=4",
                 f"--output_folder={tmp_path / 'sim'}", f"--data_folder={tmp_path / 'corpus'}",
                 "--num_workers=1"]
    sim = subprocess.run([sys.executable, str(REPO / "recipes/Simulated/simulate_prepare.py"),
                          str(REPO / "recipes/Simulated/hparams/simulate.yaml"), *overrides],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert sim.returncode == 0, sim.stderr[-3000:]
    desc = subprocess.run([sys.executable, str(REPO / "recipes/Simulated/describe.py"),
                           str(REPO / "recipes/Simulated/hparams/describe.yaml"), "--seed=3",
                           f"--manifest_folder={tmp_path / 'sim' / 'save'}",
                           f"--output_folder={tmp_path / 'desc'}", "--noprogressbar"],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert desc.returncode == 0, desc.stderr[-3000:]
    folder = tmp_path / "desc" / "descriptions"
    mos = json.loads((folder / "NISQA_TRAIN_SIM_mos.json").read_text())
    assert len(mos) == 12 and all(len(e["responses"]) == 5 for e in mos.values())
    summary = json.loads((folder / "NISQA_TRAIN_SIM_summary.json").read_text())
    assert summary["n_rejected"] == 0 and summary["accepted"] == summary["requested"]
    assert (folder / "NISQA_TEST_SIM_released.jsonl").is_file()
