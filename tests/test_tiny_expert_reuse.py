"""The tiny expert of the embedded default is deterministic per seed, so a table's ALLD runs may
copy the one their warm-up trained (``tiny.expert_from``) instead of training it again."""

import pytest
from nisqa_fixture import build_corpus, make_row

from speechbrain_alld.corpora import prepare_corpus
from speechbrain_alld.describe import DescribeConfig, TemplateExpert, describe_manifests
from speechbrain_alld.describe.experts import PAPER_VARIANTS
from speechbrain_alld.models.expert_reference import TokenizerMismatchError
from speechbrain_alld.models.tiny import init_tiny_models

SMALL = {"window_seconds": 1.0, "expert_steps": 4, "progress": False,
         "policy_config": {"audio_dim": 32, "audio_layers": 1, "text_dim": 32, "text_layers": 1},
         "expert_config": {"hidden_size": 32, "num_layers": 1}}


@pytest.fixture(scope="module")
def descriptions(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    rows = {"NISQA_TRAIN_SIM": [make_row("NISQA_TRAIN_SIM", i, mos=f"{1.2 + 0.4 * i:.2f}")
                                for i in range(8)]}
    root = build_corpus(tmp / "NISQA_Corpus", rows)
    manifests = prepare_corpus("nisqa", root, tmp / "m", list(rows))
    folder = tmp / "descriptions"
    describe_manifests(manifests, TemplateExpert(), folder,
                       DescribeConfig(variants=PAPER_VARIANTS[:2], min_gap=0.4), progress=False)
    return folder


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_expert_is_the_same_trained_twice_and_copied(descriptions, tmp_path):
    first = init_tiny_models(descriptions, "NISQA_TRAIN_SIM", tmp_path / "a", vocab_size=400,
                             **SMALL)
    again = init_tiny_models(descriptions, "NISQA_TRAIN_SIM", tmp_path / "b", vocab_size=400,
                             **SMALL)
    assert first["expert_loss_last"] < first["expert_loss_first"]
    assert first["expert_loss_last"] == again["expert_loss_last"]
    trained = _files(first["expert"])
    assert "model.safetensors" in trained and trained == _files(again["expert"])
    copied = init_tiny_models(descriptions, "NISQA_TRAIN_SIM", tmp_path / "c", vocab_size=400,
                              expert_from=first["expert"], **SMALL)
    assert copied["expert_loss_last"] is None and copied["expert_from"] == str(first["expert"])
    assert _files(copied["expert"]) == trained
    assert _files(copied["policy"]) == _files(first["policy"])


def test_an_expert_of_another_tokenizer_or_folder_is_refused(descriptions, tmp_path):
    other = init_tiny_models(descriptions, "NISQA_TRAIN_SIM", tmp_path / "a", vocab_size=300,
                             **SMALL)
    with pytest.raises(TokenizerMismatchError):
        init_tiny_models(descriptions, "NISQA_TRAIN_SIM", tmp_path / "b", vocab_size=400,
                         expert_from=other["expert"], **SMALL)
    with pytest.raises(FileNotFoundError, match="tiny.expert_from: .*nowhere holds no expert"):
        init_tiny_models(descriptions, "NISQA_TRAIN_SIM", tmp_path / "c", vocab_size=400,
                         expert_from=tmp_path / "nowhere", **SMALL)
