"""SFT and ALLD losses against float64 hand computations, gradients, limits and masking."""

import math

import pytest
import torch

from speechbrain_alld.losses import IGNORE_INDEX, alld_loss, sequence_logprobs, sft_loss


def _hand_logprobs(logits, labels):
    """Pure-Python float64 reference: sum over t of log softmax(logits[t])[labels[t+1]]."""
    sums, counts = [], []
    for b in range(logits.shape[0]):
        total, n = 0.0, 0
        for t in range(logits.shape[1] - 1):
            target = int(labels[b, t + 1])
            if target == IGNORE_INDEX:
                continue
            row = [float(x) for x in logits[b, t]]
            m = max(row)
            lse = m + math.log(sum(math.exp(x - m) for x in row))
            total += row[target] - lse
            n += 1
        sums.append(total)
        counts.append(n)
    return sums, counts


def _batch(seed=0, b=3, t=7, v=11):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, v, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, v, (b, t), generator=g)
    labels[0, :3] = IGNORE_INDEX  # prompt
    labels[1, -2:] = IGNORE_INDEX  # padding
    labels[2, :] = IGNORE_INDEX
    labels[2, 4] = 5
    return logits, labels


def test_sequence_logprobs_match_a_float64_hand_computation():
    logits, labels = _batch()
    got, n = sequence_logprobs(logits, labels)
    want, want_n = _hand_logprobs(logits, labels)
    assert n.tolist() == want_n == [4, 4, 1]
    assert got.tolist() == pytest.approx(want, abs=1e-9)


def test_masked_positions_do_not_matter():
    logits, labels = _batch()
    changed = logits.clone()
    changed[0, :2] += 100.0  # positions predicting prompt tokens (ignored)
    changed[1, -2:] -= 50.0  # positions over padding
    assert torch.allclose(sequence_logprobs(logits, labels)[0],
                          sequence_logprobs(changed, labels)[0])


def test_sft_loss_is_token_mean_cross_entropy_and_matches_torch():
    logits, labels = _batch()
    want_sums, want_n = _hand_logprobs(logits, labels)
    loss = sft_loss(logits, labels)
    assert float(loss) == pytest.approx(-sum(want_sums) / sum(want_n), abs=1e-9)
    ref = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX)
    assert float(loss) == pytest.approx(float(ref), abs=1e-9)
    with pytest.raises(ValueError, match="no response tokens"):
        sft_loss(logits, torch.full_like(labels, IGNORE_INDEX))
    with pytest.raises(ValueError, match="disagree"):
        sft_loss(logits, labels[:, 1:])


def _logps(seed=1, b=6):
    g = torch.Generator().manual_seed(seed)
    return [-(torch.rand(b, generator=g, dtype=torch.float64) * 40 + 1) for _ in range(4)]


def _hand_alld(pc, pr, rc, rr, beta, ls=0.0):
    vals = []
    for a, b, c, d in zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist()):
        h = beta * ((a - c) - (b - d))
        vals.append(-(1 - ls) * math.log(1 / (1 + math.exp(-h)))
                    - ls * math.log(1 / (1 + math.exp(h))))
    return sum(vals) / len(vals)


@pytest.mark.parametrize("beta", [0.1, 0.4, 2.0])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_alld_loss_matches_hand_computation(beta, ls):
    pc, pr, rc, rr = _logps()
    out = alld_loss(pc, pr, rc, rr, beta=beta, label_smoothing=ls)
    assert float(out.loss) == pytest.approx(_hand_alld(pc, pr, rc, rr, beta, ls), abs=1e-10)
    assert out.chosen_rewards.tolist() == pytest.approx((beta * (pc - rc)).tolist())
    margin = beta * ((pc - rc) - (pr - rr))
    assert float(out.reward_margin) == pytest.approx(float(margin.mean()))
    assert float(out.reward_accuracy) == pytest.approx(float((margin > 0).double().mean()))


def test_gradient_raises_chosen_and_lowers_rejected():
    pc, pr, rc, rr = (x.clone() for x in _logps())
    pc.requires_grad_(True)
    pr.requires_grad_(True)
    alld_loss(pc, pr, rc, rr, beta=0.4).loss.backward()
    assert (pc.grad < 0).all()  # descending the loss increases log pi(y_t)
    assert (pr.grad > 0).all()  # ... and decreases log pi(y_a)
    assert torch.allclose(pc.grad, -pr.grad)


def test_beta_limits():
    pc, pr, rc, rr = _logps()
    tiny = alld_loss(pc, pr, rc, rr, beta=1e-8)
    assert float(tiny.loss) == pytest.approx(math.log(2), abs=1e-6)
    # Large beta: the loss tends to beta * relu(-margin) averaged (hinge-like).
    beta = 1e4
    big = alld_loss(pc, pr, rc, rr, beta=beta)
    raw = (pc - rc) - (pr - rr)
    assert float(big.loss) == pytest.approx(float((beta * torch.relu(-raw)).mean()), rel=1e-6)
    with pytest.raises(ValueError, match="beta"):
        alld_loss(pc, pr, rc, rr, beta=0.0)


def test_length_normalisation_and_sft_term():
    pc, pr, rc, rr = _logps()
    nc = torch.tensor([5, 8, 13, 2, 9, 4])
    nr = torch.tensor([7, 3, 6, 10, 1, 12])
    out = alld_loss(pc, pr, rc, rr, beta=0.4, length_normalize=True, chosen_lengths=nc,
                    rejected_lengths=nr)
    want = _hand_alld(pc / nc, pr / nr, rc / nc, rr / nr, 0.4)
    assert float(out.loss) == pytest.approx(want, abs=1e-10)
    with_sft = alld_loss(pc, pr, rc, rr, beta=0.4, alpha=0.5, chosen_lengths=nc)
    nll = float((-pc / nc).mean())
    assert float(with_sft.sft_term) == pytest.approx(nll)
    assert float(with_sft.loss) == pytest.approx(_hand_alld(pc, pr, rc, rr, 0.4) + 0.5 * nll)
    with pytest.raises(ValueError, match="chosen_lengths"):
        alld_loss(pc, pr, rc, rr, length_normalize=True)
    with pytest.raises(ValueError, match="rejected_lengths"):
        alld_loss(pc, pr, rc, rr, length_normalize=True, chosen_lengths=nc)


def test_bad_shapes_and_smoothing():
    pc, pr, rc, rr = _logps()
    with pytest.raises(ValueError, match=r"\[B\]"):
        alld_loss(pc, pr[:3], rc, rr)
    with pytest.raises(ValueError, match="label_smoothing"):
        alld_loss(pc, pr, rc, rr, label_smoothing=0.5)


def test_loss_through_a_real_lm_pass_moves_logprobs_the_right_way():
    """One optimiser step on the ALLD loss raises log pi(y_t) relative to log pi(y_a)."""
    torch.manual_seed(0)
    vocab, t = 13, 9
    model = torch.nn.Sequential(torch.nn.Embedding(vocab, 16), torch.nn.Linear(16, vocab))
    prompt = torch.randint(0, vocab, (4, 4))
    chosen = torch.cat([prompt, torch.randint(0, vocab, (4, t - 4))], 1)
    rejected = torch.cat([prompt, torch.randint(0, vocab, (4, t - 4))], 1)

    def logp(seq):
        labels = seq.clone()
        labels[:, :4] = IGNORE_INDEX
        return sequence_logprobs(model(seq), labels)[0]

    ref_c, ref_r = logp(chosen).detach(), logp(rejected).detach()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = (logp(chosen) - logp(rejected)).detach()
    for _ in range(5):
        opt.zero_grad()
        alld_loss(logp(chosen), logp(rejected), ref_c, ref_r, beta=0.4).loss.backward()
        opt.step()
    after = (logp(chosen) - logp(rejected)).detach()
    assert (after > before).all()
