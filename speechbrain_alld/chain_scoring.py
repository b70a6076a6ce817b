"""The chain's last stage: testing the trained models (generation, parsing, scores), and the A/B
pairs asked again with the clips swapped. Re-exported by :mod:`speechbrain_alld.chain`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from speechbrain.utils.distributed import run_on_main

from speechbrain_alld.brain import ALLDBrain
from speechbrain_alld.dataset import make_dataset
from speechbrain_alld.durable import write_json_atomic
from speechbrain_alld.evaluation import swap_test
from speechbrain_alld.resume import StageResult, StageRunner
from speechbrain_alld.stats import read_items
from speechbrain_alld.training import loader_options, release_memory


def _swap_test(policy: Any, manifest: str | Path, folder: Path, model_name: str,
               block: Mapping[str, Any], progress: bool) -> dict[str, Any]:
    """The A/B pairs asked again in swapped order; adds the swap scores to the test summary
    and writes the swapped texts to ``test_<model>_swapped.jsonl``."""
    summary_file = folder / f"test_{model_name}_summary.json"
    items = read_items(folder / f"test_{model_name}_items.jsonl")
    verdicts = {k: r.get("verdict_pred") for k, r in items.items() if k.startswith("ab:")}
    scores, records = swap_test(policy, manifest, verdicts,
                                batch_size=int(block["dataloader_opts"]["batch_size"]),
                                max_new_tokens=int(block["max_new_tokens"]), progress=progress)
    with open(folder / f"test_{model_name}_swapped.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    write_json_atomic(summary_file, {**summary, **scores})
    return scores


def test_stage(runner: StageRunner, name: str, block: Mapping[str, Any],
               models: Mapping[str, StageResult], data: StageResult) -> StageResult:
    """Test each model named in ``block["models"]`` on the ``test`` manifest (``split: valid``:
    the whole validation split, for choosing settings without the test split): generation,
    parsing and the ``mos_stats`` / ``ab_stats`` scores, written to
    ``<folder>/<model>/test_<model>_summary.json`` and ``..._items.jsonl``. Each model is its
    own resumable unit (a finished one is not tested again).

    Arguments
    ---------
    runner : StageRunner
        Decides whether the stage runs and records it.
    name : str
        The stage's YAML block name (its fingerprint hashes that block).
    block : mapping
        ``folder``, ``models``, ``policy`` (a frozen loader), ``dataloader_opts``,
        ``mos_stats``, ``ab_stats``, ``max_new_tokens``, ``train_logger``; optionally
        ``split`` (``test`` or ``valid``) and ``swap_ab`` (also ask every A/B pair with the
        clips swapped: ``ab_swap_consistency`` and ``ab_swapped_accuracy`` in the summary,
        the texts in ``test_<model>_swapped.jsonl``).
    models : mapping
        ``{model name: StageResult with a model}`` from the training stages.
    data : StageResult
        The examples stage (``test``).

    Returns
    -------
    StageResult
        ``<model>_test`` (its summary) and ``<model>_model`` for each tested model.
    """
    folder = Path(block["folder"])
    split = block.get("split", "test")
    if split not in ("test", "valid"):
        raise ValueError(f"{name}: split must be 'test' or 'valid', got {split!r}")
    manifest = "test" if split == "test" else "valid_full"
    results: dict[str, Any] = {}
    fps = []
    for model_name in block["models"]:
        if model_name not in models:
            raise KeyError(f"test: no model {model_name!r} (have: {', '.join(models)})")
        sub = folder / model_name
        fp, done = runner.lookup(name, block, sub, inputs=[data, models[model_name], model_name],
                                 run_options=("eval_precision",), label=f"{name}/{model_name}")
        fps.append(fp)
        if done is None:
            run_on_main(sub.mkdir, kwargs={"parents": True, "exist_ok": True})
            policy = block["policy"](models[model_name]["model"])
            brain = ALLDBrain(modules={"policy": policy},
                              hparams={**block, "stage": model_name, "output_folder": str(sub),
                                       "test_output_folder": str(sub)},
                              run_opts=runner.run_opts)
            brain.evaluate(make_dataset(data[manifest], policy.sampling_rate),
                           test_loader_kwargs=loader_options(block["dataloader_opts"]))
            stats = dict(brain.test_stats)
            if block.get("swap_ab") and stats.get("ab_n"):
                stats.update(run_on_main(_swap_test, args=[policy, data[manifest], sub,
                                                           model_name, block, runner.progress]))
            done = runner.finish(f"{name}/{model_name}", sub, fp,
                                 {"model": models[model_name]["model"], "test": stats})
            del policy, brain
            release_memory()
        results[f"{model_name}_test"] = done["test"]
        results[f"{model_name}_model"] = done["model"]
    return StageResult(name, folder, "+".join(fps), results)


test_stage.__test__ = False  # a stage, not a pytest test (for pytest given this file's path)
