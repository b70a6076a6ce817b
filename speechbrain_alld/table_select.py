"""Pick one setting from a validation table by a rule written in its YAML before it runs.

A grid such as ``recipes/Simulated/ALLD/hparams/ablation_alld_seeds.yaml`` runs one baseline and
several candidate settings per seed, with a paired comparison "candidate minus baseline" for
each. Its ``selection:`` block says which candidates are acceptable and which of those wins;
:func:`select_setting` applies it to the table :func:`speechbrain_alld.table.collect_table`
wrote, so the choice is a command's output rather than a reading of the numbers.

``selection`` keys:

- ``metric_intervals``: comparison metrics (e.g. ``lcc``, ``ab_accuracy``) whose mean-of-seeds
  paired 95% interval must not lie wholly below 0;
- ``max_unparsed``: the largest share of a candidate's MOS texts without a MOS, on every seed;
- ``max_swap_drop``: the largest fall of swap consistency against the baseline, on every seed;
- ``max_dimension_drop`` and ``dimensions``: the largest fall of the mean of these per-dimension
  LCCs against the baseline, on every seed.

Among the candidates that pass, the lowest mean-of-seeds MOS MSE wins; when none passes, the
highest mean-of-seeds MOS LCC is taken and the result says that no candidate qualified.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _row(config: Mapping[str, Any], run: str, rel: str) -> str:
    rows = config["runs"][run]["rows"]
    matches = [row for row, path in rows.items() if path == rel]
    if not matches:
        raise ValueError(f"table run {run!r} has no row read from {rel}")
    return matches[0]


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def _num(value: Any) -> str:
    return f"{float(value):.3f}" if _finite(value) else "n/a"


def _mean_dimensions(values: Mapping[str, Any], keys: list[str]) -> float | None:
    dims = [values.get(k) for k in keys]
    return None if not all(_finite(d) for d in dims) else sum(map(float, dims)) / len(dims)


def check_candidate(table: Mapping[str, Any], rule: Mapping[str, Any], comparison: str,
                    baseline: str, candidate: str) -> list[str]:
    """Why a candidate row fails the rule against its baseline row (empty: it qualifies).

    Arguments
    ---------
    table : mapping
        ``table.json`` content (``per_seed``, ``comparisons``, ``seeds``).
    rule : mapping
        The ``selection`` block.
    comparison : str
        The name of the comparison "candidate minus baseline".
    baseline, candidate : str
        The two rows.

    Returns
    -------
    list of str
        One reason per failed condition, naming the seed and the numbers.
    """
    reasons = []
    mean = table["comparisons"][comparison]["mean"]
    for metric in rule.get("metric_intervals") or []:
        rec = mean.get(metric)
        if not rec or not _finite(rec.get("ci_high")):
            reasons.append(f"no mean-of-seeds interval of {metric}")
        elif float(rec["ci_high"]) < 0:
            reasons.append(f"{metric} interval wholly below 0 ({rec['difference']:+.3f} "
                           f"[{rec['ci_low']:+.3f}, {rec['ci_high']:+.3f}])")
    dims = list(rule.get("dimensions") or [])
    for seed in table["seeds"]:
        base = table["per_seed"][baseline][str(seed)]
        cand = table["per_seed"][candidate][str(seed)]
        unparsed = cand.get("mos_unparsed_share")
        if "max_unparsed" in rule and not (_finite(unparsed)
                                           and unparsed <= rule["max_unparsed"] + 1e-12):
            reasons.append(f"seed {seed}: MOS unparsed {_num(unparsed)} > {rule['max_unparsed']}")
        if "max_swap_drop" in rule:
            b, c = base.get("ab_swap_consistency"), cand.get("ab_swap_consistency")
            if not (_finite(b) and _finite(c)) or b - c > rule["max_swap_drop"] + 1e-12:
                reasons.append(f"seed {seed}: swap consistency {_num(c)} against {_num(b)} "
                               f"(largest fall {rule['max_swap_drop']})")
        if "max_dimension_drop" in rule:
            b, c = _mean_dimensions(base, dims), _mean_dimensions(cand, dims)
            if b is None or c is None or b - c > rule["max_dimension_drop"] + 1e-12:
                reasons.append(f"seed {seed}: mean dimension LCC {_num(c)} against {_num(b)} "
                               f"(largest fall {rule['max_dimension_drop']})")
    return reasons


def select_setting(table: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``config["selection"]`` to every comparison of the table config.

    Arguments
    ---------
    table : mapping
        ``table.json`` content.
    config : mapping
        The table config (``runs``, ``comparisons``, ``selection``).

    Returns
    -------
    dict
        ``candidates`` (per comparison: ``run``, ``row``, ``mse``, ``lcc``, ``reasons``),
        ``chosen`` (the winning candidate) and ``qualified`` (whether any candidate passed).

    Example
    -------
    >>> agg = lambda v: {"mean": v}
    >>> per = {"base": {"0": {"mos_unparsed_share": 0.0}},
    ...        "x": {"0": {"mos_unparsed_share": 0.0}}, "y": {"0": {"mos_unparsed_share": 0.1}}}
    >>> table = {"seeds": [0], "per_seed": per,
    ...          "results": {"x": {"mos_mse": agg(0.5), "mos_lcc": agg(0.8)},
    ...                      "y": {"mos_mse": agg(0.4), "mos_lcc": agg(0.9)}},
    ...          "comparisons": {"x-b": {"mean": {}}, "y-b": {"mean": {}}}}
    >>> config = {"selection": {"max_unparsed": 0.02},
    ...           "runs": {"b": {"rows": {"base": "s.json"}}, "rx": {"rows": {"x": "s.json"}},
    ...                    "ry": {"rows": {"y": "s.json"}}},
    ...           "comparisons": [{"name": "x-b", "a": ["b", "s.json"], "b": ["rx", "s.json"]},
    ...                           {"name": "y-b", "a": ["b", "s.json"], "b": ["ry", "s.json"]}]}
    >>> out = select_setting(table, config)
    >>> out["chosen"]["run"], out["qualified"], out["candidates"][1]["reasons"]
    ('rx', True, ['seed 0: MOS unparsed 0.100 > 0.02'])
    """
    if table.get("missing"):
        raise ValueError("the grid is not finished, so no setting can be chosen yet: "
                         + ", ".join(table["missing"]) + " not run")
    rule = config["selection"]
    candidates = []
    for spec in config["comparisons"]:
        baseline, row = _row(config, *spec["a"]), _row(config, *spec["b"])
        results = table["results"][row]
        candidates.append({
            "comparison": spec["name"], "run": spec["b"][0], "row": row,
            "mse": (results.get("mos_mse") or {}).get("mean"),
            "lcc": (results.get("mos_lcc") or {}).get("mean"),
            "reasons": check_candidate(table, rule, spec["name"], baseline, row)})
    passed = [c for c in candidates if not c["reasons"] and _finite(c["mse"])]
    if passed:
        chosen = min(passed, key=lambda c: float(c["mse"]))
    else:
        chosen = max(candidates, key=lambda c: float(c["lcc"]) if _finite(c["lcc"]) else -2.0)
    return {"candidates": candidates, "chosen": chosen, "qualified": bool(passed)}


def selection_markdown(selection: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """The rule's verdict per candidate and the choice, as the README shows it."""
    lines = ["| setting | mean MSE | mean LCC | qualifies |", "|---|---|---|---|"]
    for c in selection["candidates"]:
        verdict = "yes" if not c["reasons"] else "no: " + "; ".join(c["reasons"])
        mse = f"{c['mse']:.3f}" if _finite(c["mse"]) else "n/a"
        lcc = f"{c['lcc']:.3f}" if _finite(c["lcc"]) else "n/a"
        lines.append(f"| {c['row']} | {mse} | {lcc} | {verdict} |")
    chosen = selection["chosen"]
    overrides = config["runs"][chosen["run"]].get("overrides", {})
    lines += ["", ("Chosen by the rule" if selection["qualified"] else
                   "No setting qualifies; the highest mean LCC is taken") +
              f": **{chosen['row']}** (`{overrides}`)."]
    return "\n".join(lines)


def selection_record(selection: Mapping[str, Any], config: Mapping[str, Any],
                     command: str) -> dict[str, Any]:
    """What a table that uses the choice checks (``selection.json`` in the grid's archive)."""
    chosen = selection["chosen"]
    return {"run": chosen["run"], "row": chosen["row"], "qualified": selection["qualified"],
            "overrides": dict(config["runs"][chosen["run"]].get("overrides") or {}),
            "seeds": list(config["seeds"]), "command": command}


def check_selected(config: Mapping[str, Any], pending: list[tuple[str, Any]]) -> None:
    """Refuse to start runs that need a validated setting before it exists or when it differs.

    ``config["requires_selection"]``: ``{budget: <name of a budget block>, file: <a
    selection.json>}``; every pending run with that budget needs the file, made on the table's
    seeds, and each block of the budget (e.g. ``alld``) must equal the chosen run's block of the
    same name.
    """
    need = config.get("requires_selection")
    if not need:
        return
    users = sorted({name for name, _ in pending
                    if config["runs"][name].get("budget") == need["budget"]})
    if not users:
        return
    path = Path(need["file"])
    if not path.is_file():
        raise ValueError(f"runs {users} use {need['budget']}, which must be the setting chosen "
                         f"on validation, but {path} does not exist yet: run the grid and "
                         "select_setting.py first (or start the other runs with --only)")
    chosen = json.loads(path.read_text(encoding="utf-8"))
    if sorted(map(str, chosen.get("seeds") or [])) != sorted(map(str, config["seeds"])):
        raise ValueError(f"{path} was chosen on seeds {chosen.get('seeds')}, but the table "
                         f"runs seeds {list(config['seeds'])}: run the grid on those seeds")
    budget = config[need["budget"]]
    differ = [key for key in budget if budget[key] != chosen["overrides"].get(key)]
    if differ:
        raise ValueError(f"{need['budget']} {dict(budget)} is not the setting chosen in {path} "
                         f"({chosen['row']}: {chosen['overrides']}); differing: {differ}")
