"""One training run of a tiny policy with ``fit_policy``, for the FSDP tests.

Run with ``torch.distributed.run`` (``distributed: fsdp`` over the processes) or with plain
``python`` (one process, no process group). It writes ``<out>/losses.rank<r>.json`` (the loss of
every training batch of this process and the final valid stats) and the model saved by
``save_policy`` in ``<out>/model``. ``--die_before_step k`` ends every process abruptly
(``os._exit``) before its k-th training batch, after the checkpoints of the batches before.
"""

import argparse
import functools
import json
import os
import sys
from pathlib import Path

import speechbrain as sb
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe_run import _block  # noqa: E402

from speechbrain_alld.brain import ALLDBrain  # noqa: E402
from speechbrain_alld.dataset import make_dataset  # noqa: E402
from speechbrain_alld.losses import alld_loss  # noqa: E402
from speechbrain_alld.models.audio_llm import AudioLLM  # noqa: E402
from speechbrain_alld.resume import rank_world  # noqa: E402
from speechbrain_alld.sharding import local_bytes  # noqa: E402
from speechbrain_alld.training import fit_policy, save_policy  # noqa: E402


def valid_logprobs(policy: AudioLLM, manifest: str) -> list[float]:
    """log pi(response | audio, instruction) of the first two valid examples (every process
    computes them: a sharded policy needs all of them for each forward)."""
    data = make_dataset(manifest, policy.sampling_rate)
    examples = [data[k] for k in range(2)]
    policy.eval()
    with torch.no_grad():
        batch = policy.prepare_batch([e["audio"] for e in examples],
                                     [e["instruction"] for e in examples],
                                     [e["response"] for e in examples])
        return policy.sequence_logprobs(batch)[0].tolist()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", choices=("sft", "alld"), required=True)
    parser.add_argument("--finetune", choices=("full", "lora"), required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--grad_accumulation_factor", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--ckpt_interval_steps", type=int, default=0)
    parser.add_argument("--die_before_step", type=int, default=0)
    parser.add_argument("--fsdp", default="{}", help="FSDPConfig options as JSON")
    parser.add_argument("--gradient_checkpointing", action="store_true")
    args = parser.parse_args()

    run_opts = {"noprogressbar": True, "grad_accumulation_factor": args.grad_accumulation_factor,
                "ckpt_interval_steps": args.ckpt_interval_steps, "max_grad_norm": 1.0}
    launched = os.environ.get("RANK") is not None
    if launched:
        run_opts["distributed_backend"] = "gloo"
        sb.utils.distributed.ddp_init_group(run_opts)
    rank, _ = rank_world()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    policy = AudioLLM.from_pretrained(args.source, dtype=args.dtype, finetune=args.finetune,
                                      train_encoder=args.finetune == "full", lora_dropout=0.0,
                                      lora_r=4,
                                      gradient_checkpointing=args.gradient_checkpointing)
    extra = {"distributed": "fsdp", "fsdp": json.loads(args.fsdp)} if launched else {}
    block = _block(out, args.epochs, 1e-3, args.batch_size, **extra)
    block["train_dataloader_opts"]["shuffle"] = False
    block["sorting"] = "ascending"  # SpeechBrain: no shuffling in the DistributedSampler either
    block["loss"] = functools.partial(alld_loss, beta=0.5)
    block["generate_every"] = 1
    block["max_new_tokens"] = 4

    losses: list[float] = []
    ids: list[list[str]] = []
    seen = {"n": 0}
    fit_batch = ALLDBrain.fit_batch

    def recorded_fit_batch(self, batch):
        seen["n"] += 1
        if args.die_before_step and seen["n"] == args.die_before_step:
            os._exit(17)  # a crash: no clean-up, no final checkpoint
        loss = fit_batch(self, batch)
        losses.append(float(loss))
        ids.append(list(batch.id))
        return loss

    ALLDBrain.fit_batch = recorded_fit_batch
    extra_keys = ("chosen", "rejected", "ref_chosen", "ref_rejected") if args.stage == "alld" \
        else ()
    brain = fit_policy(args.stage, policy, block, run_opts, args.train, args.valid,
                       extra_keys=extra_keys)
    save_policy(policy, out / "model", merge=True)
    logprobs = valid_logprobs(policy, args.valid)
    held = local_bytes(policy, getattr(brain, "optimizer", None))
    valid = dict(getattr(brain, "valid_stats", {}))  # none when every epoch was done before
    (out / f"losses.rank{rank}.json").write_text(json.dumps(
        {"losses": losses, "ids": ids, "valid": valid, "sharded": policy.sharded,
         "logprobs": logprobs, "local_bytes": held}))
    if launched:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
