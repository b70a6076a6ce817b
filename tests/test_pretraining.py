"""Pretraining helpers: random rating tuples, tokenizer texts, and the shipped-model record."""

import csv
import hashlib
import json

import pytest
import scipy.stats

from speechbrain_alld.describe.prompts import DEFAULT_INSTRUCTIONS
from speechbrain_alld.parsing import parse_mos, parse_verdict
from speechbrain_alld.pretraining import (
    RECORD_FILE,
    ShippedModelError,
    check_shipped,
    file_hashes,
    random_ratings,
    ship_pretrained,
    shipped_model,
    tokenizer_texts,
    write_pretraining_examples,
)
from speechbrain_alld.ratings import RATING_KEYS
from speechbrain_alld.simulation.generic_tasks import GENERIC_INSTRUCTIONS, generic_examples


def write_corpus(path, n_per_subset=5):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["db", "file", "filepath_deg", "sim_text", "con_description"])
        for db in ("TRAIN", "VAL"):
            for k in range(n_per_subset):
                w.writerow([db, f"{db}_c{k}", f"{db}/c{k}.wav", f"Sentence number {k} of {db}.",
                            f"pink noise {10 + k}.0 dB" if k % 2 else "clean"])
    return path


# --- random_ratings -------------------------------------------------------------------------

def test_random_ratings_deterministic_and_in_range():
    a, b = random_ratings(500, seed=3), random_ratings(500, seed=3)
    assert a == b
    assert random_ratings(500, seed=4) != a
    assert random_ratings(10, seed=3) == a[:10]  # a prefix of the same stream
    assert len(a) == 500 and random_ratings(0, seed=1) == []
    for key in RATING_KEYS:
        values = [getattr(r, key) for r in a]
        assert all(1.0 <= v <= 5.0 for v in values)
        # Uniform on [1, 5]: Kolmogorov-Smirnov against scipy's uniform(loc=1, scale=4).
        assert scipy.stats.kstest(values, scipy.stats.uniform(loc=1, scale=4).cdf).pvalue > 1e-3
    # The five values of a record are not one number repeated.
    assert all(len({r.mos, r.noi, r.col, r.dis, r.loud}) == 5 for r in a)


# --- tokenizer_texts ------------------------------------------------------------------------

def test_tokenizer_texts_content(tmp_path):
    examples, _ = generic_examples(write_corpus(tmp_path / "c.csv"))
    n_quality = 60
    texts = tokenizer_texts(examples, n_quality=n_quality, seed=5)
    for instruction in [*GENERIC_INSTRUCTIONS.values(), *DEFAULT_INSTRUCTIONS.values()]:
        assert instruction in texts
    for ex in examples.values():
        assert ex["response"] in texts
    assert "Sentence number 3 of VAL." in texts and "pink noise 11.0 dB" in texts
    n_fixed = len(GENERIC_INSTRUCTIONS) + len(DEFAULT_INSTRUCTIONS) + 2 * len(examples)
    # A MOS and an A/B text per quality tuple, two prompts for the first 50.
    assert len(texts) == n_fixed + 2 * n_quality + 2 * 50
    assert all(isinstance(t, str) and t for t in texts)
    assert tokenizer_texts(examples, n_quality=n_quality, seed=5) == texts
    assert tokenizer_texts(examples, n_quality=n_quality, seed=6) != texts


def test_tokenizer_quality_texts_state_the_random_ratings():
    """The MOS and A/B texts are written for random_ratings(2n, seed): the k-th MOS text states
    record 2k's MOS and the k-th A/B text prefers the record with the higher MOS."""
    n_quality, seed = 40, 11
    texts = tokenizer_texts({}, n_quality=n_quality, seed=seed)
    records = random_ratings(2 * n_quality, seed)
    head = len(GENERIC_INSTRUCTIONS) + len(DEFAULT_INSTRUCTIONS)
    k_text = head
    for k in range(n_quality):
        a, b = records[2 * k], records[2 * k + 1]
        mos_text, ab_text = texts[k_text], texts[k_text + 1]
        k_text += 2 + 2 * (k < 50)  # the two prompts follow the first 50 pairs of texts
        assert parse_mos(mos_text) == round(a.mos, 1), mos_text
        assert parse_verdict(ab_text) == ("A" if a.mos > b.mos else "B"), ab_text
    assert k_text == len(texts)


# --- write_pretraining_examples -------------------------------------------------------------

def test_write_pretraining_examples(tmp_path):
    corpus = write_corpus(tmp_path / "c.csv", n_per_subset=6)
    out = write_pretraining_examples(corpus, tmp_path / "ex", train_subset="TRAIN",
                                     valid_subset="VAL", valid_max_items=4, seed=1)
    train = json.loads((tmp_path / "ex" / "train.json").read_text())
    heldout = json.loads((tmp_path / "ex" / "heldout.json").read_text())
    valid = json.loads((tmp_path / "ex" / "valid.json").read_text())
    assert out["n_train"] == len(train) == 12 and out["n_heldout"] == len(heldout) == 12
    assert out["n_valid"] == len(valid) == 4 and set(valid) <= set(heldout)
    assert all(k.split(":")[1].startswith("TRAIN_") for k in train)
    assert all(k.split(":")[1].startswith("VAL_") for k in heldout)
    assert out["skipped"] == {"transcribe": 0, "condition": 0}
    assert out["sft_train"] == str(tmp_path / "ex" / "train.json")
    with pytest.raises(ValueError, match="no examples"):
        write_pretraining_examples(corpus, tmp_path / "ex2", train_subset="TRAIN",
                                   valid_subset="TEST")


# --- shipping -------------------------------------------------------------------------------

@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 8}\n', encoding="utf-8")
    (folder / "tokenizer.json").write_text("vocab a b c\n", encoding="utf-8")
    (folder / "sub" / "weights.txt").write_bytes(bytes(range(256)) * 4)
    return folder


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_hashes_match_hashlib(model_folder):
    expected = {"config.json": sha256(model_folder / "config.json"),
                "tokenizer.json": sha256(model_folder / "tokenizer.json"),
                "sub/weights.txt": sha256(model_folder / "sub" / "weights.txt")}
    assert file_hashes(model_folder) == expected
    (model_folder / RECORD_FILE).write_text("{}", encoding="utf-8")
    assert file_hashes(model_folder) == expected  # the record is never hashed


def test_ship_and_check_round_trip(model_folder, tmp_path):
    target = tmp_path / "shipped" / "tiny"
    record = {"budget": {"epochs": 2}, "result": {"chrf": 12.5}}
    assert ship_pretrained(model_folder, record, target=target) == target
    for name in ("config.json", "tokenizer.json", "sub/weights.txt"):
        assert (target / name).read_bytes() == (model_folder / name).read_bytes()
    stored = json.loads((target / RECORD_FILE).read_text(encoding="utf-8"))
    assert stored["sha256"] == {"config.json": sha256(model_folder / "config.json"),
                                "tokenizer.json": sha256(model_folder / "tokenizer.json"),
                                "sub/weights.txt": sha256(model_folder / "sub" / "weights.txt")}
    checked = check_shipped(target)
    assert checked == stored and checked["budget"] == {"epochs": 2}
    assert checked["result"] == {"chrf": 12.5}
    assert shipped_model(target) == str(target)


def test_shipping_again_replaces_the_old_folder(model_folder, tmp_path):
    target = tmp_path / "shipped"
    ship_pretrained(model_folder, {"v": 1}, target=target)
    (target / "stale.bin").write_bytes(b"old")
    (model_folder / "tokenizer.json").write_text("vocab d e\n", encoding="utf-8")
    ship_pretrained(model_folder, {"v": 2}, target=target)
    assert not (target / "stale.bin").exists()
    assert check_shipped(target)["v"] == 2
    assert (target / "tokenizer.json").read_text(encoding="utf-8") == "vocab d e\n"


@pytest.mark.parametrize("name", ["config.json", "sub/weights.txt"])
def test_one_changed_byte_is_caught(model_folder, tmp_path, name):
    target = ship_pretrained(model_folder, {}, target=tmp_path / "shipped")
    data = bytearray((target / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (target / name).write_bytes(bytes(data))
    with pytest.raises(ShippedModelError) as err:
        check_shipped(target)
    assert repr(name) in str(err.value)
    others = {"config.json", "tokenizer.json", "sub/weights.txt"} - {name}
    assert not any(repr(o) in str(err.value) for o in others)
    with pytest.raises(ShippedModelError):
        shipped_model(target)


def test_added_or_removed_file_is_caught(model_folder, tmp_path):
    target = ship_pretrained(model_folder, {}, target=tmp_path / "shipped")
    (target / "extra.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ShippedModelError, match="extra.txt"):
        check_shipped(target)
    (target / "extra.txt").unlink()
    check_shipped(target)
    (target / "tokenizer.json").unlink()
    with pytest.raises(ShippedModelError, match="tokenizer.json"):
        check_shipped(target)


def test_missing_record_raises(model_folder, tmp_path):
    with pytest.raises(ShippedModelError, match=RECORD_FILE):
        check_shipped(model_folder)  # never shipped: no record
    target = ship_pretrained(model_folder, {}, target=tmp_path / "shipped")
    (target / RECORD_FILE).unlink()
    with pytest.raises(ShippedModelError, match="not found"):
        check_shipped(target)
    with pytest.raises(ShippedModelError):
        check_shipped(tmp_path / "does-not-exist")
    assert issubclass(ShippedModelError, RuntimeError)


def test_a_nested_file_named_like_the_record_is_checked(model_folder, tmp_path):
    (model_folder / "sub" / RECORD_FILE).write_text('{"w": 1}', encoding="utf-8")
    target = ship_pretrained(model_folder, {}, target=tmp_path / "shipped")
    (target / "sub" / RECORD_FILE).write_text('{"w": 2}', encoding="utf-8")
    with pytest.raises(ShippedModelError, match=f"sub/{RECORD_FILE}"):
        check_shipped(target)
