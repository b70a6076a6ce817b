#!/usr/bin/env bash
# Does commit B compute what commit A computes? Runs the Simulated recipe on a small configuration
# (48 / 12 / 12 clips, 2 SFT epochs, 1 ALLD epoch, 32-d tiny models, seed 0) at each commit, in
# its own worktree, then compares training losses, SFT weights, y_a and generated test texts.
#   bash benchmarks/same_computation.sh a8af2db HEAD
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
for commit in "$1" "$2"; do
    git -C "$repo" worktree add -q --detach "$work/$commit" "$commit"
    (cd "$work/$commit" && HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 PYTHONPATH="$work/$commit" \
        python recipes/Simulated/ALLD/train.py recipes/Simulated/ALLD/hparams/alld.yaml \
        --output_folder="$work/out_$commit" --corpus_folder="$work/corpus_$commit" \
        --train_size=48 --valid_size=12 --test_size=12 --num_workers=1 \
        '--tiny={policy_config: {audio_dim: 32, audio_layers: 1, text_dim: 32, text_layers: 1}, expert_config: {hidden_size: 32, num_layers: 1}, expert_steps: 20}' \
        '--sft={number_of_epochs: 2, batch_size: 4}' '--alld={batch_size: 4}' \
        --eval_batch_size=8 --max_new_tokens=40 --noprogressbar > "$work/log_$commit.txt" 2>&1)
done
a="$work/out_$1/save" b="$work/out_$2/save"
python - "$a" "$b" <<'PY'
import json, re, sys
from pathlib import Path
a, b = map(Path, sys.argv[1:])
def train_losses(p):
    return [re.findall(r"train loss: ([^ ]+)", line) for line in (p / "sft/log.txt").read_text().splitlines()]
print("SFT train losses equal:", train_losses(a) == train_losses(b))
print("SFT weights byte-identical:", (a / "sft/model/model.safetensors").read_bytes() == (b / "sft/model/model.safetensors").read_bytes())
print("y_a byte-identical:", (a / "sample/rejected.json").read_bytes() == (b / "sample/rejected.json").read_bytes())
for m in ("sft", "alld"):
    ta = [json.loads(x)["text"] for x in (a / f"test/{m}/test_{m}_items.jsonl").read_text().splitlines()]
    tb = [json.loads(x)["text"] for x in (b / f"test/{m}/test_{m}_items.jsonl").read_text().splitlines()]
    print(f"{m} test texts identical: {sum(x == y for x, y in zip(ta, tb))} of {len(ta)}")
PY
git -C "$repo" worktree remove --force "$work/$1"; git -C "$repo" worktree remove --force "$work/$2"
