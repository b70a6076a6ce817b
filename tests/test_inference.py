"""The pretrained interface: from_hparams / foreign_class offline, batching, inputs, debiasing."""

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_model import make_model_folder

from speechbrain_alld.inference import (
    AudioInputError,
    DescriptiveQualityEvaluator,
    combine_orders,
    interface_hparams_template,
    write_interface_files,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_folder(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def evaluator(model_dir, tmp_path_factory):
    return DescriptiveQualityEvaluator.from_hparams(
        source=str(model_dir), savedir=str(tmp_path_factory.mktemp("savedir")))


def _wav(path, seconds, sr=16000, seed=0, channels=1):
    rng = np.random.default_rng(seed)
    data = 0.2 * rng.standard_normal((int(seconds * sr), channels))
    sf.write(str(path), data if channels > 1 else data[:, 0], sr)
    return path


def test_loads_offline_and_describes_a_file(evaluator, tmp_path):
    assert evaluator.sample_rate == 16000 and evaluator.window == 2.0
    result = evaluator.describe_file(_wav(tmp_path / "a.wav", 1.2))
    assert isinstance(result.text, str) and result.source.endswith("a.wav")
    assert result.parsed == (result.mos is not None)


def test_batched_generation_equals_one_by_one(evaluator, tmp_path):
    paths = [_wav(tmp_path / f"c{i}.wav", 0.6 + 0.4 * i, seed=i) for i in range(3)]
    calls = {"n": 0}
    original = evaluator.policy.model.generate

    def counting(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    evaluator.policy.model.generate = counting
    try:
        batched = evaluator.describe_batch(paths)
        assert calls["n"] == 1  # genuinely batched: one generate call for the batch
        alone = [evaluator.describe_file(p) for p in paths]
    finally:
        evaluator.policy.model.generate = original
    assert [r.text for r in batched] == [r.text for r in alone]


def test_any_rate_and_stereo_inputs_are_converted(evaluator, tmp_path):
    stereo = _wav(tmp_path / "s.wav", 1.0, sr=44100, channels=2)
    wav = evaluator.load_waveform(stereo)
    assert wav.ndim == 1 and wav.numel() == 16000
    data, sr = sf.read(str(stereo))
    from_array = evaluator.load_waveform(data.T, sample_rate=sr)
    assert torch.allclose(from_array, wav, atol=1e-4)
    assert evaluator.describe_batch([data.T], sample_rate=sr)[0].source == "<waveform 0>"


@pytest.mark.parametrize("make,match", [
    (lambda p: p / "missing.wav", "file not found"),
    (lambda p: (p / "bad.wav").write_bytes(b"xx") and p / "bad.wav", "cannot read audio"),
    (lambda p: sf.write(str(p / "e.wav"), np.zeros(0), 16000) or p / "e.wav", "empty"),
    (lambda p: sf.write(str(p / "z.wav"), np.zeros(8000), 16000) or p / "z.wav", "silent"),
])
def test_unusable_files_are_named(evaluator, tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(AudioInputError, match=match) as info:
        evaluator.describe_file(path)
    assert str(path.name) in str(info.value)


def test_unusable_waveforms(evaluator):
    with pytest.raises(AudioInputError, match="sample_rate"):
        evaluator.describe_batch([np.ones(100, dtype=np.float32)])
    with pytest.raises(AudioInputError, match="NaN or infinite"):
        evaluator.describe_batch([np.array([0.1, np.nan] * 800)], sample_rate=16000)
    with pytest.raises(AudioInputError, match="shape"):
        evaluator.load_waveform(np.ones((2, 2, 2)), sample_rate=16000)


def test_long_clip_policies(model_dir, tmp_path):
    long_clip = _wav(tmp_path / "long.wav", 5.0)  # window is 2 s: chunks 2 + 2 (+1 s tail)
    chunked = DescriptiveQualityEvaluator.from_hparams(source=str(model_dir),
                                                       savedir=str(tmp_path / "s1"))
    result = chunked.describe_file(long_clip)
    assert len(result.chunks) == 3 and result.text.startswith("[0-2 s]")
    strict = DescriptiveQualityEvaluator.from_hparams(
        source=str(model_dir), savedir=str(tmp_path / "s2"), overrides={"long_audio": "error"})
    with pytest.raises(AudioInputError, match="longer than the model's 2 s window"):
        strict.describe_file(long_clip)
    cut = DescriptiveQualityEvaluator.from_hparams(
        source=str(model_dir), savedir=str(tmp_path / "s3"),
        overrides={"long_audio": "truncate"})
    assert cut.describe_file(long_clip).chunks == []


def test_compare_runs_both_orders_in_one_call(evaluator, tmp_path):
    a, b = _wav(tmp_path / "a.wav", 1.0, seed=1), _wav(tmp_path / "b.wav", 1.5, seed=2)
    result = evaluator.compare_files(a, b)
    assert len(result.texts) == 2 and len(result.verdicts) == 2
    single = evaluator.compare_files(a, b, debias=False)
    assert len(single.texts) == 1 and single.agreement is None


@pytest.mark.parametrize("texts,verdict,agreement,note", [
    (["I prefer Speech A.", "I prefer Speech B."], "A", True, ""),
    (["I prefer Speech B.", "I prefer Speech A."], "B", True, ""),
    (["I prefer Speech A.", "I prefer Speech A."], None, False, "orders disagree"),
    (["They are about the same.", "About the same."], "tie", True, ""),
    (["No idea.", "I prefer Speech A."], None, None, "one order"),
    (["No idea.", "Nothing."], None, None, "both orders"),
])
def test_debiasing_logic(texts, verdict, agreement, note):
    result = combine_orders(texts)
    assert (result.verdict, result.agreement) == (verdict, agreement)
    assert note in result.note


def test_foreign_class_loads_the_same_folder(model_dir, tmp_path):
    from speechbrain.inference.interfaces import foreign_class

    evaluator = foreign_class(source=str(model_dir), pymodule_file="custom_interface.py",
                              classname="CustomInterface", savedir=str(tmp_path / "fc"))
    assert isinstance(evaluator, DescriptiveQualityEvaluator)
    assert evaluator.describe_file(_wav(tmp_path / "x.wav", 1.0)).source.endswith("x.wav")


def test_interface_files_need_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        write_interface_files(tmp_path)


def test_packaged_hparams_template_matches_what_training_writes(model_dir, tmp_path):
    import shutil
    from pathlib import Path

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    written = write_interface_files(copy, max_new_tokens=256).read_text()
    template = (Path(__file__).resolve().parents[1]
                / "speechbrain_alld/hparams/DescriptiveQualityEvaluator.yaml")
    assert written == template.read_text() == interface_hparams_template()


def test_written_hparams_hold_any_instruction_text(model_dir, tmp_path):
    import shutil

    from hyperpyyaml import load_hyperpyyaml

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    odd = {"mos": 'Rate it: "#1" {x} <audio>\n- ok', "ab": "A: <audio>, B: <audio> # which?"}
    path = write_interface_files(copy, max_new_tokens=17, long_audio="truncate",
                                 instructions=odd)
    with open(path, encoding="utf-8") as f:
        hp = load_hyperpyyaml(f)
    assert (hp["max_new_tokens"], hp["long_audio"], hp["model_source"]) == (17, "truncate", None)
    assert hp["instructions"] == odd
    with pytest.raises(ValueError, match="long_audio"):
        write_interface_files(copy, long_audio="stretch")
