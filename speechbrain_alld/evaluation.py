"""Evaluate a trained model on a test manifest: per-item results, summary, table and plot.

The manifest is either a prepared rated-corpus manifest (``prepare_nisqa`` output: wav, MOS,
dimensions, condition; MOS task only, no BLEU) or an evaluation-items manifest from the training
chain (``save/data/test.json``: MOS and A/B items with the expert reference text). Every item is
generated once (batched, resumable through a JSON-lines store), unusable audio is skipped and
counted, and the outputs are ``items.jsonl``, ``summary.json``, ``summary.md`` and ``scatter.png``
(predicted vs human MOS with the identity line, LCC and MSE in the title).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from speechbrain_alld.corpora.prepare import read_json
from speechbrain_alld.durable import write_json_atomic
from speechbrain_alld.inference import AudioInputError, DescriptiveQualityEvaluator
from speechbrain_alld.jsonl_store import JsonlStore
from speechbrain_alld.metrics import bootstrap_ci
from speechbrain_alld.ratings import DIMENSIONS
from speechbrain_alld.stats import ABStats, MOSStats


def load_test_items(path: str | Path) -> dict[str, dict[str, Any]]:
    """Test items by id: task, wavs, MOS or winner, dimensions, condition, reference text."""
    path = Path(path)
    entries = read_json(path, "test manifest")
    items = {}
    for key, e in entries.items():
        if "task" in e:  # evaluation items of the training chain
            task, wavs = e["task"], list(e["wavs"])
        elif "wav" in e:  # a prepared rated-corpus manifest
            task, wavs = "mos", [e["wav"]]
        else:
            raise ValueError(f"{path}: entry {key!r} has neither 'task' nor 'wav'")
        if task == "mos" and (e.get("mos") is None or e["mos"] < 0):
            raise ValueError(f"{path}: entry {key!r} has no MOS to score against")
        items[key] = {"task": task, "wavs": wavs, "mos": e.get("mos"),
                      "winner": e.get("winner") or None, "reference": e.get("response"),
                      "condition": e.get("condition"),
                      "dims": {d: e[d] for d in DIMENSIONS if e.get(d) is not None}}
    return items


def evaluate(
    evaluator: DescriptiveQualityEvaluator,
    test_manifest: str | Path,
    output_folder: str | Path,
    *,
    batch_size: int = 8,
    debias: bool = True,
    bootstrap: int = 1000,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate for every test item (resumable), then write the reports; returns the summary."""
    out = Path(output_folder)
    out.mkdir(parents=True, exist_ok=True)
    items = load_test_items(test_manifest)
    store = JsonlStore(out / "items.jsonl")
    todo = [k for k in items if k not in store]
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="evaluate",
               disable=not progress)
    mos_keys = [k for k in todo if items[k]["task"] == "mos"]
    for start in range(0, len(mos_keys), batch_size):
        keys = mos_keys[start:start + batch_size]
        usable, rows = [], []
        for k in keys:  # check each file first, so one bad clip does not sink its batch
            try:
                evaluator.load_waveform(items[k]["wavs"][0])
                usable.append(k)
            except AudioInputError as err:
                rows.append(_row(k, items[k], skipped=str(err)))
        if usable:
            results = evaluator.describe_batch([items[k]["wavs"][0] for k in usable])
            rows += [_row(k, items[k], text=r.text, mos_pred=r.mos, dims_pred=r.dimensions)
                     for k, r in zip(usable, results)]
        store.add(rows)
        bar.update(len(keys))
    for k in (k for k in todo if items[k]["task"] == "ab"):
        try:
            cmp = evaluator.compare_files(*items[k]["wavs"], debias=debias)
            store.add([_row(k, items[k], text=cmp.text, verdict_pred=cmp.verdict,
                            agreement=cmp.agreement, note=cmp.note)])
        except AudioInputError as err:
            store.add([_row(k, items[k], skipped=str(err))])
        bar.update(1)
    bar.close()
    rows = [store.get(k) for k in items]
    summary = summarize_rows(rows, bootstrap=bootstrap)
    summary["test_manifest"] = str(test_manifest)
    write_json_atomic(out / "summary.json", summary)
    (out / "summary.md").write_text(markdown_table(summary), encoding="utf-8")
    if summary.get("mos"):
        scatter_plot(rows, summary["mos"], out / "scatter.png")
    return summary


def _row(key: str, item: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    return {"key": key, "task": item["task"], "wavs": item["wavs"], "mos": item["mos"],
            "winner": item["winner"], "dims": item["dims"], "condition": item["condition"],
            "reference": item["reference"], **values}


def summarize_rows(rows: list[Mapping[str, Any]], bootstrap: int = 0) -> dict[str, Any]:
    """Metrics of the stored rows; skipped items are counted, never dropped silently."""
    summary: dict[str, Any] = {"n_items": len(rows),
                               "skipped": [{"key": r["key"], "reason": r["skipped"]}
                                           for r in rows if r.get("skipped")]}
    summary["n_skipped"] = len(summary["skipped"])
    done = [r for r in rows if not r.get("skipped")]
    mos_rows = [r for r in done if r["task"] == "mos"]
    if mos_rows:
        stats = MOSStats(bootstrap=bootstrap)
        with_ref = all(r["reference"] for r in mos_rows)
        stats.append([r["key"] for r in mos_rows], [r["text"] for r in mos_rows],
                     [r["mos"] for r in mos_rows],
                     [r["reference"] if with_ref else r["text"] for r in mos_rows],
                     conditions=[r["condition"] for r in mos_rows],
                     dimensions=[r["dims"] for r in mos_rows])
        mos = stats.summarize()
        if not with_ref:  # no expert texts in this manifest: BLEU is not defined
            mos.pop("bleu", None)
            mos.pop("signature", None)
        summary["mos"] = mos
    ab_rows = [r for r in done if r["task"] == "ab"]
    if ab_rows:
        stats_ab = ABStats(bootstrap=bootstrap)
        stats_ab.append([r["key"] for r in ab_rows], [r["text"] for r in ab_rows],
                        [r["winner"] for r in ab_rows],
                        [r["reference"] or r["text"] for r in ab_rows])
        first = stats_ab.summarize()
        # The debiased verdict (both orders agreeing) is what counts; the single-order
        # numbers stay, prefixed, for comparison with papers that report one order.
        verdicts = [r["verdict_pred"] for r in ab_rows]
        correct = np.array([v == r["winner"] for v, r in zip(verdicts, ab_rows)], dtype=float)
        ab = {"n": len(ab_rows), "accuracy": float(correct.mean()),
              "n_no_verdict": sum(v is None for v in verdicts),
              "n_orders_disagree": sum(r.get("agreement") is False for r in ab_rows),
              "bleu": first.get("bleu"), "signature": first.get("signature"),
              **{f"first_order_{k}": v for k, v in first.items()
                 if k.startswith(("accuracy", "n_unparsed", "unparsed_share"))}}
        if bootstrap:
            ab["accuracy_ci_low"], ab["accuracy_ci_high"] = bootstrap_ci(
                np.mean, correct, n_resamples=bootstrap)
        summary["ab"] = ab
    return summary


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def markdown_table(summary: Mapping[str, Any]) -> str:
    """The main numbers as a markdown table."""
    lines = ["| task | metric | value |", "|---|---|---|"]
    keys = {"mos": ("n", "n_unparsed", "mse", "lcc", "lcc_ci_low", "lcc_ci_high", "srcc",
                    "ktau", "bleu", "cond_lcc", "noi_lcc", "col_lcc", "dis_lcc", "loud_lcc"),
            "ab": ("n", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "n_no_verdict",
                   "n_orders_disagree", "bleu")}
    for task, names in keys.items():
        for name in names:
            if name in summary.get(task, {}):
                lines.append(f"| {task} | {name} | {_fmt(summary[task][name])} |")
    lines.append(f"| all | skipped | {summary['n_skipped']} |")
    return "\n".join(lines) + "\n"


def scatter_plot(rows: list[Mapping[str, Any]], mos: Mapping[str, Any], path: Path) -> None:
    """Predicted vs human MOS with the identity line; LCC and MSE in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [(r["mos"], r["mos_pred"]) for r in rows
           if r["task"] == "mos" and not r.get("skipped") and r.get("mos_pred") is not None]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, alpha=0.7)
    ax.plot([1, 5], [1, 5], color="grey", linewidth=1)
    ax.set_xlim(1, 5)
    ax.set_ylim(1, 5)
    ax.set_xlabel("human MOS")
    ax.set_ylabel("predicted MOS (parsed from the text)")
    ax.set_title(f"LCC {_fmt(mos.get('lcc'))}, MSE {_fmt(mos.get('mse'))} "
                 f"({mos.get('n_parsed', 0)}/{mos.get('n', 0)} parsed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_evaluation(hparams: Mapping[str, Any], run_opts: Mapping[str, Any]) -> dict[str, Any]:
    """Load the model named in ``hparams`` and evaluate it (the recipes' evaluate.py)."""
    overrides = {"long_audio": hparams["long_audio"], "max_new_tokens": hparams["max_new_tokens"]}
    device = run_opts.get("device")
    evaluator = DescriptiveQualityEvaluator.from_hparams(
        source=str(hparams["model"]), savedir=str(hparams["savedir"]), overrides=overrides,
        run_opts={"device": device} if device else None)
    summary = evaluate(evaluator, hparams["test_manifest"], hparams["output_folder"],
                       batch_size=hparams["batch_size"], debias=hparams["debias"],
                       bootstrap=hparams["bootstrap"],
                       progress=not run_opts.get("noprogressbar", False))
    print(markdown_table(summary))
    return summary


def export_trained_models(results: Mapping[str, Any], max_new_tokens: int) -> None:
    """After training: make the saved models loadable by the interface, print the test scores.

    Writes ``hyperparams.yaml`` + ``custom_interface.py`` into each model folder of the chain's
    ``results`` (main process only), so ``DescriptiveQualityEvaluator.from_hparams(source=...)``
    loads them.
    """
    from speechbrain.utils.distributed import run_on_main

    from speechbrain_alld.inference import write_interface_files

    for key in ("sft_model", "alld_model"):
        if key in results and Path(results[key]).is_dir():
            run_on_main(write_interface_files, args=[results[key]],
                        kwargs={"max_new_tokens": max_new_tokens})
    for name, stats in results.items():
        if isinstance(stats, dict):
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()}
            print(f"{name}: {shown}")


def swap_test(policy: Any, manifest: str | Path, verdicts: Mapping[str, str | None], *,
              batch_size: int = 32, max_new_tokens: int = 160, progress: bool = True
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ask ``policy`` every A/B pair of ``manifest`` again with the two clips swapped.

    Arguments
    ---------
    policy : AudioLLM
        The model tested (greedy decoding, as in the test stage).
    manifest : str or Path
        The evaluation-items manifest of the test (``save/data/test.json``).
    verdicts : mapping
        The verdict parsed from each pair's test text in the original order, by item id.

    Returns
    -------
    summary : dict
        ``ab_swap_consistency`` (share of pairs whose two verdicts name the same clip; an
        unparsed verdict in either order counts as inconsistent), ``ab_swapped_accuracy``
        (accuracy in the swapped order, unparsed wrong) and ``ab_swap_n``.
    records : list of dict
        Per pair: id, the swapped text, its verdict, the swapped order's winner.
    """
    from speechbrain_alld.comparison import swap_consistency
    from speechbrain_alld.dataset import generate_for_examples
    from speechbrain_alld.parsing import parse_verdict

    entries = read_json(Path(manifest), "test manifest")
    keys = sorted(k for k, e in entries.items() if e.get("task") == "ab")
    missing = [k for k in keys if k not in verdicts]
    if missing:
        raise ValueError(f"{len(missing)} A/B pair(s) of {manifest} have no test verdict, "
                         f"e.g. {missing[0]!r}")
    flip = {"A": "B", "B": "A", "tie": "tie"}
    texts = generate_for_examples(policy, entries, keys, max_new_tokens=max_new_tokens,
                                  batch_size=batch_size, swap=True, desc="A/B swapped",
                                  progress=progress)
    records = [{"id": k, "text": texts[k], "verdict_pred": parse_verdict(texts[k]),
                "winner": flip[entries[k]["winner"]]} for k in keys]
    swapped = [r["verdict_pred"] for r in records]
    summary = {"ab_swap_n": len(records),
               "ab_swap_consistency": (swap_consistency([verdicts[k] for k in keys], swapped)
                                       if records else None),
               "ab_swapped_accuracy": (float(np.mean([r["verdict_pred"] == r["winner"]
                                                      for r in records])) if records else None)}
    return summary, records
