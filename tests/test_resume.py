"""One resume mechanism: every setting of a stage's YAML block is part of its fingerprint."""

import json
from pathlib import Path

import pytest
import ruamel.yaml
from speechbrain.utils.run_opts import RunOptions

from speechbrain_alld.resume import (
    TRAINING_RUN_OPTIONS,
    StageMismatchError,
    StageResult,
    StageRunner,
    source_fingerprint,
    yaml_blocks,
)

REPO = Path(__file__).resolve().parents[1]
RECIPES = {"Simulated": REPO / "recipes/Simulated/ALLD/hparams/alld.yaml",
           "NISQA": REPO / "recipes/NISQA/ALLD/hparams/alld.yaml"}
STAGES = {"Simulated": ("tiny", "examples", "sft", "sample", "reference", "alld", "testing"),
          "NISQA": ("examples", "sft", "sample", "reference", "alld", "testing")}
NISQA_REQUIRED = "data_folder: /nowhere"


def _leaves(node, path=()):
    """(path, value) of every setting written literally in a block (``!ref`` excluded: a
    reference is covered by the setting it points to); tags are not part of the path."""
    tag = getattr(getattr(node, "tag", None), "value", None) or ""
    if tag == "!ref":
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, str(key)))
    elif isinstance(node, list) and not tag:
        yield path, list(node)
    elif not isinstance(node, ruamel.yaml.comments.TaggedScalar):
        yield path, node


def _other(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 1
    if value is None:
        return 7
    if isinstance(value, list):
        return value[:-1] if len(value) > 1 else [*value, "extra"]
    return f"{value}_changed"


def _nested(path, value):
    out = value
    for key in reversed(path):
        out = {key: out}
    return out


def _dump(data) -> str:
    return json.dumps(data)  # JSON is YAML flow


def _fingerprints(hparams_file, overrides, run_opts=None):
    blocks = yaml_blocks(hparams_file, overrides)
    runner = StageRunner(blocks, run_opts or {})
    stages = [k for k in blocks if isinstance(blocks[k], dict) and "folder" in blocks[k]]
    return {name: runner.fingerprint(name, blocks[name], run_options=TRAINING_RUN_OPTIONS)
            for name in stages}, blocks


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_setting_of_a_block_changes_that_stage_and_no_other(recipe):
    hparams_file = RECIPES[recipe]
    base_overrides = NISQA_REQUIRED if recipe == "NISQA" else ""
    base, base_blocks = _fingerprints(hparams_file, base_overrides)
    assert tuple(base) == STAGES[recipe]
    raw = ruamel.yaml.YAML().load(hparams_file.read_text())
    n_checked = 0
    for stage in STAGES[recipe]:
        for path, value in _leaves(raw[stage]):
            override = {stage: _nested(path, _other(value))}
            if recipe == "NISQA":
                override["data_folder"] = "/nowhere"
            changed, blocks = _fingerprints(hparams_file, _dump(override))
            assert changed[stage] != base[stage], (stage, path)
            for other in STAGES[recipe]:
                if other != stage:
                    assert changed[other] == base[other], (stage, path, other)
                    assert blocks[other] == base_blocks[other]
            n_checked += 1
    # The objects' own arguments are settings too (optimiser, scheduler, loss, counter).
    assert n_checked >= 30


def test_a_shared_setting_changes_every_stage_that_uses_it():
    base, _ = _fingerprints(RECIPES["Simulated"], "")
    changed, _ = _fingerprints(RECIPES["Simulated"], "max_new_tokens: 99")
    assert {s for s in base if base[s] != changed[s]} == {"sft", "sample", "alld", "testing"}
    changed, _ = _fingerprints(RECIPES["Simulated"], "policy: {finetune: lora}")
    assert {s for s in base if base[s] != changed[s]} == {"sft", "alld"}


def test_run_options_that_change_a_result_are_part_of_the_fingerprint():
    blocks = yaml_blocks(RECIPES["Simulated"])
    runner = StageRunner(blocks, {})
    base = runner.fingerprint("sft", blocks["sft"], run_options=TRAINING_RUN_OPTIONS)
    for name, value in (("precision", "bf16"), ("grad_accumulation_factor", 4),
                        ("max_grad_norm", 1.0)):
        from_cli = RunOptions(**{name: value, "overridden_args": {name}})
        fp = StageRunner(blocks, from_cli).fingerprint("sft", blocks["sft"],
                                                       run_options=TRAINING_RUN_OPTIONS)
        assert fp != base, name
    # A run option given but equal to the block's value changes nothing.
    same = RunOptions(precision="fp32", overridden_args={"precision"})
    assert StageRunner(blocks, same).fingerprint(
        "sft", blocks["sft"], run_options=TRAINING_RUN_OPTIONS) == base
    # Not given on the command line: the Brain takes the block's value, and so does the hash.
    changed = yaml_blocks(RECIPES["Simulated"], "sft: {grad_accumulation_factor: 2}")
    assert StageRunner(changed, {}).fingerprint(
        "sft", changed["sft"], run_options=TRAINING_RUN_OPTIONS) != base


def test_inputs_chain_the_fingerprints(tmp_path):
    blocks = {"a": {"folder": str(tmp_path / "a"), "x": 1}, "b": {"folder": str(tmp_path / "b")}}
    runner = StageRunner(blocks, {})
    a1 = StageResult("a", tmp_path / "a", runner.fingerprint("a", blocks["a"]))
    a2 = StageResult("a", tmp_path / "a", "another")
    assert runner.fingerprint("b", blocks["b"], inputs=[a1]) != runner.fingerprint(
        "b", blocks["b"], inputs=[a2])
    with pytest.raises(KeyError, match="no YAML block 'c'"):
        runner.fingerprint("c", {})


def test_finished_stage_is_skipped_and_a_changed_one_refused(tmp_path):
    runner = StageRunner({"a": {"folder": str(tmp_path)}}, {})
    assert runner.finished("a", tmp_path, "fp1") is None
    runner.finish("a", tmp_path, "fp1", {"model": "m"})
    assert runner.finished("a", tmp_path, "fp1")["model"] == "m"
    with pytest.raises(StageMismatchError, match="stage 'a' .* other settings"):
        runner.finished("a", tmp_path, "fp2")
    store = tmp_path / "s.jsonl"
    runner.claim(store, "fp1")
    runner.claim(store, "fp1")
    with pytest.raises(StageMismatchError, match="started with other settings"):
        runner.claim(store, "fp2")


def test_yaml_blocks_reject_an_override_of_a_missing_key():
    with pytest.raises(Exception, match="not_a_key"):
        yaml_blocks(RECIPES["Simulated"], "not_a_key: 1")


def test_objects_of_a_block_are_changed_by_overrides_and_replaced_in_the_yaml(tmp_path):
    """The READMEs' two forms: a nested override changes a declared object's arguments; an
    edited YAML replaces the object. Both reach the loaded object and the fingerprint alike."""
    from hyperpyyaml import load_hyperpyyaml

    def load(path, override):
        with open(path, encoding="utf-8") as fin:
            hparams = load_hyperpyyaml(fin, override)
        blocks = yaml_blocks(path, override)
        return hparams, StageRunner(blocks, {}).fingerprint("sft", blocks["sft"])

    out = f"output_folder: {tmp_path}"
    plain, base = load(RECIPES["Simulated"], out)
    hparams, fp = load(RECIPES["Simulated"], out + "\nsft: {opt_class: {weight_decay: 0.1}}")
    lr = plain["sft"]["lr"]  # the block's own lr reaches the optimiser; only weight_decay moves
    assert plain["sft"]["opt_class"].keywords == {"lr": lr, "weight_decay": 0.0}
    assert hparams["sft"]["opt_class"].keywords == {"lr": lr, "weight_decay": 0.1}
    assert hparams["alld"]["opt_class"].keywords["weight_decay"] == 0.0
    assert fp != base
    text = RECIPES["Simulated"].read_text()
    old = "    opt_class: !name:torch.optim.AdamW\n        lr: !ref <sft[lr]>\n"
    assert text.count(old) == 1
    edited = tmp_path / "alld.yaml"
    edited.write_text(text.replace(old, "    opt_class: !name:torch.optim.SGD\n"
                                        "        lr: !ref <sft[lr]>\n        momentum: 0.9\n"))
    hparams, fp = load(edited, out)
    assert hparams["sft"]["opt_class"].func is __import__("torch").optim.SGD
    assert hparams["sft"]["opt_class"].keywords["momentum"] == 0.9
    assert fp != base


def test_use_model_hands_on_a_folder_or_hub_id_and_refuses_a_missing_folder(tmp_path):
    """The warm-up skipped for a given model (the table's ALLD runs start from an archived
    warm-up): a missing folder is named at once, not loaded as a hub id deep in transformers."""
    from speechbrain_alld.chain import sft_stage

    model = tmp_path / "archive/seed_0/warmup/save/sft/model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    result = sft_stage(None, "sft", {"folder": tmp_path / "sft", "use_model": str(model)}, None)
    assert result["model"] == str(model) and result.fingerprint == source_fingerprint(model)
    hub = sft_stage(None, "sft", {"folder": tmp_path / "sft", "use_model": "Org/Model"}, None)
    assert hub["model"] == "Org/Model"
    missing = tmp_path / "archive/seed_1/warmup/save/sft/model"
    with pytest.raises(FileNotFoundError, match=r"sft.use_model: .*seed_1/warmup/save/sft/mod"):
        sft_stage(None, "sft", {"folder": tmp_path / "sft", "use_model": str(missing)}, None)
