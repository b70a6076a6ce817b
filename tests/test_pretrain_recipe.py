"""The pretraining recipe and the pretrained tiny policy shipped with the package."""

import hashlib
import json
import subprocess
import sys

import torch
from recipe_run import ENV, REPO

from speechbrain_alld.pretraining import RECORD_FILE, SHIPPED_FOLDER, check_shipped

PRETRAIN = REPO / "recipes/Simulated/Pretrain"


def _pretrain(out, corpus, extra=()):
    cmd = [sys.executable, str(PRETRAIN / "train.py"), str(PRETRAIN / "hparams/pretrain.yaml"),
           f"--output_folder={out}", f"--corpus_folder={corpus}", "--pool_size=48",
           "--heldout_size=8", "--num_workers=1",
           "--init={policy_config: {audio_dim: 32, audio_layers: 1, text_dim: 32, "
           "text_layers: 1}, n_quality_texts: 50}",
           "--pretrain={number_of_epochs: 2, batch_size: 8}", "--heldout={max_new_tokens: 12}",
           "--noprogressbar", *extra]
    proc = subprocess.run(cmd, cwd=out.parent, env=ENV, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out


def _weights_hash(out):
    return hashlib.sha256((out / "save/pretrain/model/model.safetensors").read_bytes()
                          ).hexdigest()


def test_pretraining_is_reproducible_wherever_it_runs_and_learns(tmp_path):
    """Two runs in other folders (their own corpora) give byte-identical weights: folders do
    not enter the computation, so the shipped weights can be checked by a rerun; the loss
    falls and the record states the budget and the data."""
    first = _pretrain(tmp_path / "a", tmp_path / "corpus_a")
    second = _pretrain(tmp_path / "b", tmp_path / "corpus_b")
    assert _weights_hash(first) == _weights_hash(second)
    log = (first / "save/pretrain/log.txt").read_text().splitlines()
    losses = [float(line.split("train loss: ")[1].split(" ")[0]) for line in log]
    assert len(losses) == 2 and losses[1] < losses[0], log
    record = json.loads((first / "PRETRAINED.json").read_text())
    assert record["data"]["train_examples"] == 2 * 48  # two tasks per clip
    assert record["budget"]["optimizer_steps"] == 2 * 12
    assert set(record["heldout"]) >= {"condition", "transcribe"}


def test_shipped_model_matches_its_record_and_loads():
    record = check_shipped()  # raises when a file differs from its recorded SHA-256
    assert set(record["sha256"]) >= {"model.safetensors", "config.json", "tokenizer.json"}
    from speechbrain_alld.models.audio_llm import AudioLLM

    policy = AudioLLM.from_pretrained(str(SHIPPED_FOLDER), finetune="frozen",
                                      train_projector=False)
    n_params = sum(p.numel() for p in policy.core_model.parameters())
    assert n_params == record["model"]["parameters"]
    assert record["budget"]["optimizer_steps"] > 0 and record["data"]["pool_clips"] > 0
    # It has learnt its generic tasks: the recorded held-out condition result beats chance
    # (a family present or absent: 50%).
    assert record["heldout"]["condition"]["family_accuracy"] > 0.75
    # Greedy decoding of a clean tone does not crash and ends.
    text = policy.generate([[torch.zeros(16000)]], ["Describe the recording condition of "
                                                    "<audio>."], max_new_tokens=16)[0]
    assert isinstance(text, str)
    assert (SHIPPED_FOLDER / RECORD_FILE).is_file()
