"""Training examples from the descriptive corpus: splits, task mixing, examples, audio pipeline."""

import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_alld.dataset import (
    collate_examples,
    eval_items,
    load_descriptions,
    load_waveform,
    make_dataset,
    mix_tasks,
    sft_examples,
    split_items,
    write_examples,
)


@pytest.fixture()
def descriptions(tmp_path):
    sr = 8000
    wavs = []
    for i in range(6):
        path = tmp_path / f"c{i}.wav"
        stereo = np.stack([np.full(sr // 2, 0.1 * (i + 1)), np.full(sr // 2, -0.1)], axis=1)
        sf.write(str(path), stereo, sr)
        wavs.append(str(path))
    mos = {f"c{i}": {"wav": wavs[i], "duration": 0.5, "instruction": "Rate <audio>",
                     "prompt": f"ratings {i}", "mos": 1.0 + i * 0.5,
                     "responses": {"default": f"text {i} MOS: {1 + i * 0.5:.1f}.",
                                   "t0.9-p0.85": f"other {i}"}} for i in range(6)}
    ab = {f"c{i}__vs__c{i + 3}": {"wav_a": wavs[i], "wav_b": wavs[i + 3], "duration": 0.5,
                                  "instruction": "A/B <audio> <audio>", "prompt": "pair",
                                  "winner": "B", "responses": {"default": "I prefer Speech B."}}
          for i in range(3)}
    (tmp_path / "train_mos.json").write_text(json.dumps(mos))
    (tmp_path / "train_ab.json").write_text(json.dumps(ab))
    return tmp_path


def test_load_descriptions_keys_tasks_and_errors(descriptions):
    items = load_descriptions(descriptions, "train")
    assert len(items) == 9
    assert items["mos:c2"]["mos"] == 2.0 and items["mos:c2"]["wavs"][0].endswith("c2.wav")
    assert items["ab:c0__vs__c3"]["winner"] == "B" and len(items["ab:c0__vs__c3"]["wavs"]) == 2
    assert set(load_descriptions(descriptions, "train", ["ab"])) == {
        "ab:c0__vs__c3", "ab:c1__vs__c4", "ab:c2__vs__c5"}
    with pytest.raises(FileNotFoundError, match="describe step"):
        load_descriptions(descriptions, "valid")
    with pytest.raises(ValueError, match="unknown task"):
        load_descriptions(descriptions, "train", ["asr"])


def test_split_is_deterministic_disjoint_and_complete():
    keys = [f"k{i}" for i in range(101)]
    a, b = split_items(keys, 0.5, seed=1)
    assert len(a) == 50 and len(b) == 51 and not set(a) & set(b)
    assert sorted(a + b) == sorted(keys)
    assert split_items(keys, 0.5, seed=1) == (a, b)
    assert split_items(keys, 0.5, seed=2) != (a, b)
    with pytest.raises(ValueError, match="fraction"):
        split_items(keys, 0.0, 0)


def test_mix_tasks_reaches_the_requested_share():
    keys = [f"mos:{i}" for i in range(60)] + [f"ab:{i}" for i in range(10)]
    mixed = mix_tasks(keys, 0.5, seed=0)
    counts = Counter(k.split(":")[0] for k in mixed)
    assert counts == {"mos": 60, "ab": 60}  # 10 A/B keys cycled six times
    assert Counter(k for k in mixed if k.startswith("ab:")) == {f"ab:{i}": 6 for i in range(10)}
    fewer = Counter(k.split(":")[0] for k in mix_tasks(keys, 0.1, seed=0))
    assert fewer == {"mos": 60, "ab": round(60 * 0.1 / 0.9)}
    assert mix_tasks(keys, None, 0) == keys
    assert mix_tasks(keys, 0.0, 0) == keys[:60]
    with pytest.raises(ValueError, match="ab_share"):
        mix_tasks(keys, 1.0, 0)


def test_sft_and_eval_examples(descriptions):
    items = load_descriptions(descriptions, "train")
    examples = sft_examples(items, ["mos:c1", "ab:c0__vs__c3", "ab:c0__vs__c3"])
    assert set(examples) == {"mos:c1#default", "mos:c1#t0.9-p0.85", "ab:c0__vs__c3#default",
                             "ab:c0__vs__c3#default#r1"}
    assert examples["mos:c1#default"]["response"] == "text 1 MOS: 1.5."
    assert examples["ab:c0__vs__c3#default"]["mos"] == -1.0  # no MOS for a pair
    ev = eval_items(items)
    assert len(ev) == 9 and ev["mos:c4"]["response"] == "text 4 MOS: 3.0."


def test_dataset_reads_mono_resampled_audio_and_collates(descriptions, tmp_path):
    items = load_descriptions(descriptions, "train")
    path = write_examples(tmp_path / "ex.json", sft_examples(items, ["mos:c0", "ab:c1__vs__c4"]))
    data = make_dataset(path, sample_rate=16000)
    first = data[0]
    assert len(first["audio"]) == 1 and first["audio"][0].shape == (8000,)  # 0.5 s at 16 kHz
    assert torch.allclose(first["audio"][0][100:-100], torch.full((7800,), 0.0), atol=1e-3)
    batch = collate_examples([data[i] for i in range(len(data))])
    assert len(batch) == 3 and batch.task == ["mos", "mos", "ab"]
    assert [len(a) for a in batch.audio] == [1, 1, 2] and batch.to("cpu") is batch
    text = "Braces {like} these } must survive"
    ex = {"x": {**next(iter(sft_examples(items, ["mos:c0"]).values())), "response": text}}
    assert make_dataset(write_examples(tmp_path / "b.json", ex))[0]["response"] == text


def test_bad_audio_is_named(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    with pytest.raises(ValueError, match="cannot read audio .*bad.wav"):
        load_waveform(str(bad), 16000)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0), 16000)
    with pytest.raises(ValueError, match="empty audio file"):
        load_waveform(str(empty), 16000)


def test_task_batch_sampler_is_a_reproducible_permutation_per_epoch():
    from speechbrain_alld.dataset import TaskBatchSampler

    tasks = ["mos"] * 7 + ["ab"] * 5
    sampler = TaskBatchSampler(tasks, batch_size=3, seed=4)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 3 + 2
        assert sorted(i for b in batches for i in b) == list(range(12))
        assert all(len({tasks[i] for i in b}) == 1 and 1 <= len(b) <= 3 for b in batches)
        orders.append(batches)
    assert orders[0] != orders[1] != orders[2]
    again = TaskBatchSampler(tasks, batch_size=3, seed=4)
    again.set_epoch(1)
    assert list(again) == orders[1]
    with pytest.raises(ValueError, match="batch_size"):
        TaskBatchSampler(tasks, batch_size=0)


def test_task_grouping_names_an_example_without_a_task():
    import speechbrain as sb

    from speechbrain_alld.dataset import task_batch_sampler

    data = sb.dataio.dataset.DynamicItemDataset({"a": {"task": "mos"}, "b": {"wavs": []}})
    with pytest.raises(ValueError, match=r"1 of 2 have none \(first: 'b'\)"):
        task_batch_sampler(data, 2)
    data = sb.dataio.dataset.DynamicItemDataset({"a": {"task": "mos"}, "b": {"task": "ab"}})
    assert sorted(map(tuple, task_batch_sampler(data, 2))) == [(0,), (1,)]


def test_task_batch_sampler_shares_an_epoch_between_processes():
    from speechbrain_alld.dataset import TaskBatchSampler

    tasks = ["mos"] * 7 + ["ab"] * 3  # 3 + 1 batches of 3
    whole = TaskBatchSampler(tasks, batch_size=3, seed=1)
    for world in (2, 3, 5):
        shares = [list(TaskBatchSampler(tasks, 3, seed=1, num_replicas=world, rank=r))
                  for r in range(world)]
        n = -(-4 // world)
        assert [len(s) for s in shares] == [n] * world  # every process steps as often
        assert len(TaskBatchSampler(tasks, 3, seed=1, num_replicas=world)) == n
        interleaved = [b for k in range(n) for s in shares for b in s[k:k + 1]]
        batches = list(whole)
        assert interleaved == [batches[k % 4] for k in range(n * world)]  # padded by repeats
    with pytest.raises(ValueError, match="rank 2"):
        TaskBatchSampler(tasks, 3, num_replicas=2, rank=2)
