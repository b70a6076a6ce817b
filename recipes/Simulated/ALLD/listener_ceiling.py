#!/usr/bin/env python3
"""The listener-noise ceiling of the simulated corpus: what a perfect model would score.

    python recipes/Simulated/ALLD/listener_ceiling.py recipes/Simulated/ALLD/hparams/alld.yaml

The simulation records each clip's noise-free ratings (``sim_true_*``) beside the mean of its
simulated listeners' votes (the MOS the systems are scored against). Predicting the noise-free
ratings exactly is the best any system can do; its scores on the test split (MOS MSE / LCC /
SRCC, each dimension's LCC, A/B accuracy on the same test pairs as the other runs) are the
ceiling row of the reproduction table (``--testing="{split: valid}"``: of the validation split).
Reads the same YAML as ``train.py`` (same corpus, same pairs); writes
``test_ceiling_summary.json`` and ``test_ceiling_items.jsonl`` to output_folder. Cheap (no
model), so a table lists it first: it makes each seed's corpus before the other runs start.
"""

import csv
import json
import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_alld.corpora import prepare_corpus
from speechbrain_alld.describe.generate import describe_manifests
from speechbrain_alld.durable import write_json_atomic
from speechbrain_alld.metrics import dimension_metrics, mos_metrics
from speechbrain_alld.ratings import DIMENSIONS
from speechbrain_alld.simulation import simulate_corpus


def true_ratings(corpus_csv, split):
    """``{manifest id: (observed ratings, noise-free ratings)}`` of one split."""
    out = {}
    with open(corpus_csv, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            if row["db"] != split:
                continue
            try:
                observed = {k: float(row[k]) for k in ("mos", *DIMENSIONS)}
                true = {k: float(row[f"sim_true_{k}"]) for k in ("mos", *DIMENSIONS)}
            except (KeyError, ValueError) as err:
                raise ValueError(f"{corpus_csv}, line {line}: no simulated ratings ({err}); "
                                 "this works on a simulated corpus only") from None
            out[f"{split}/{Path(row['filename_deg']).stem}"] = (observed, true)
    if not out:
        raise ValueError(f"{corpus_csv}: no rows of split {split!r}")
    return out


def scored_split(hparams):
    """The split the test stage scores (``testing: {split: valid}``: the validation split)."""
    return hparams["valid_split" if hparams["testing"].get("split") == "valid" else "test_split"]


def ceiling(hparams):
    ratings = true_ratings(Path(hparams["corpus_folder"]) / "NISQA_corpus_file.csv",
                           scored_split(hparams))
    items = []
    for key, (observed, true) in sorted(ratings.items()):
        items.append({"id": f"mos:{key}", "mos_pred": true["mos"], "mos": observed["mos"],
                      "dims_pred": {d: true[d] for d in DIMENSIONS},
                      "dims": {d: observed[d] for d in DIMENSIONS}})
    summary = {f"mos_{k}": v for k, v in mos_metrics([r["mos_pred"] for r in items],
                                                    [r["mos"] for r in items]).items()}
    dims = dimension_metrics([r["dims_pred"] for r in items], [r["dims"] for r in items])
    summary.update({f"mos_{k}": v for k, v in dims.items()})
    pairs_file = Path(hparams["descriptions_folder"]) / f"{scored_split(hparams)}_ab.json"
    if pairs_file.is_file():
        pairs = json.loads(pairs_file.read_text(encoding="utf-8"))
        correct = 0
        for pair_id, entry in sorted(pairs.items()):
            a = ratings[entry["clip_a"]][1]["mos"]
            b = ratings[entry["clip_b"]][1]["mos"]
            verdict = "A" if a > b else "B" if b > a else "tie"
            correct += verdict == entry["winner"]
            items.append({"id": f"ab:{pair_id}", "verdict_pred": verdict,
                          "winner": entry["winner"], "gap": entry["gap"]})
        summary.update(ab_n=len(pairs), ab_accuracy=correct / len(pairs) if pairs else None)
    return summary, items


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    out = Path(hparams["output_folder"])
    progress = not run_opts.get("noprogressbar", False)
    splits = [hparams["train_split"], hparams["valid_split"], hparams["test_split"]]
    simulate_corpus(hparams["corpus_folder"], dict(hparams["sizes"]), seed=hparams["seed"],
                    config=hparams["simulation_config"], num_workers=hparams["num_workers"],
                    progress=progress)
    manifests = prepare_corpus("nisqa", hparams["corpus_folder"], hparams["manifest_folder"],
                               splits=splits)
    scored = {scored_split(hparams): manifests[scored_split(hparams)]}
    describe_manifests(scored, hparams["expert_writer"], hparams["descriptions_folder"],
                       hparams["describe_config"], progress=progress)
    summary, items = ceiling(hparams)
    write_json_atomic(out / "test_ceiling_summary.json", summary)
    with open(out / "test_ceiling_items.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in items)
    print(json.dumps(summary, indent=1))
