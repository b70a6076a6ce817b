"""The regression baseline: its loss, its pooling, its encoder, and errors on bad input."""

import math

import numpy as np
import pytest
import torch

from speechbrain_alld.losses import regression_loss
from speechbrain_alld.models.regression import TARGETS, RegressionBaseline, build_regression_model
from speechbrain_alld.models.tiny import (
    build_tiny_qwen2_audio,
    tiny_feature_extractor,
    train_tiny_tokenizer,
)


def test_regression_loss_matches_a_float64_hand_computation():
    pred = torch.tensor([[3.0, 2.0], [4.5, 1.0], [1.0, 5.0]])
    true = torch.tensor([[2.5, math.nan], [4.0, 2.0], [2.0, math.nan]])
    p, t = pred.double().numpy(), true.double().numpy()
    col0 = np.mean((p[:, 0] - t[:, 0]) ** 2)          # every item has MOS
    col1 = (p[1, 1] - t[1, 1]) ** 2                   # one item has the dimension
    assert float(regression_loss(pred, true)) == pytest.approx((col0 + col1) / 2, rel=1e-6)
    # A column no item has is left out of the mean instead of counting as zero error.
    only_mos = torch.tensor([[2.5, math.nan], [4.0, math.nan], [2.0, math.nan]])
    assert float(regression_loss(pred, only_mos)) == pytest.approx(col0, rel=1e-6)
    pred.requires_grad_(True)
    regression_loss(pred, true).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 1] == 0


def test_regression_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in shape"):
        regression_loss(torch.zeros(2, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="no known target"):
        regression_loss(torch.zeros(2, 1), torch.full((2, 1), math.nan))


def test_pooling_averages_only_the_frames_that_hold_audio():
    model = RegressionBaseline.from_config(window_seconds=1.0, audio_dim=32, audio_layers=1,
                                           hidden=16, seed=0).eval()
    torch.nn.init.normal_(model.head[-1].weight)  # a non-constant head
    short, n_short = model.features(torch.randn(4000))   # 0.25 s of a 1 s window
    full, n_full = model.features(torch.randn(20000))    # longer than the window: cut
    assert (n_short, n_full) == (25, 100) and short.shape == full.shape == (128, 100)
    feats = torch.stack([short, full])
    with torch.no_grad():
        out = model(feats, torch.tensor([n_short, n_full]))
        hidden = model.encoder(feats).last_hidden_state.double()
        # 25 mel frames -> 13 after the stride-2 conv -> 6 after the encoder's pooling.
        expected = [model.head(hidden[0, :6].mean(0).float()),
                    model.head(hidden[1].mean(0).float())]
    assert out.shape == (2, len(TARGETS))
    torch.testing.assert_close(out, torch.stack(expected), rtol=1e-5, atol=1e-5)


def test_the_head_starts_at_the_middle_of_the_scale():
    model = RegressionBaseline.from_config(window_seconds=1.0, audio_dim=32, audio_layers=1)
    feats, n = model.features(torch.randn(16000))
    out = model(feats[None], torch.tensor([n]))
    torch.testing.assert_close(out, torch.full((1, 5), 3.0))


def test_window_mismatch_is_an_error():
    model = RegressionBaseline.from_config(window_seconds=1.0, audio_dim=32, audio_layers=1)
    with pytest.raises(ValueError, match="window"):
        RegressionBaseline(model.encoder, tiny_feature_extractor(2.0))


def test_encoder_of_a_qwen2_audio_folder_is_loaded_with_its_weights(tmp_path):
    tok = train_tiny_tokenizer(["The speech is clean. MOS: 3.4"] * 4, vocab_size=300)
    policy, processor = build_tiny_qwen2_audio(tok, window_seconds=1.0, audio_dim=32,
                                               audio_layers=1, seed=3)
    policy.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    model = build_regression_model(tmp_path, hidden=8)
    tower = policy.model.audio_tower if hasattr(policy, "model") else policy.audio_tower
    for (name, a), (_, b) in zip(tower.state_dict().items(), model.encoder.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    assert model.feature_extractor.nb_max_frames == 100 and model.head[0].out_features == 8
