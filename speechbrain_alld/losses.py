"""SFT and ALLD losses as small pure functions over tensors (ALLD-SPEC §5).

    log pi(y|x) = sum_i log pi(y_i | x, y_<i)        (response tokens only)
    h = beta * [(log pi_theta(y_t|x_a) - log pi_ref(y_t|x_t))
              - (log pi_theta(y_a|x_a) - log pi_ref(y_a|x_t))]
    L_ALLD = -mean(log sigmoid(h))

y_t is the expert's text (chosen), y_a the audio LLM's own sample (rejected); pi_ref is the frozen
text-only expert reading the ratings, so its log-probs can be precomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def sequence_logprobs(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example summed log-probs of the labelled tokens and their counts.

    Position t predicts token t+1, as in transformers' own loss. Half-precision logits are
    upcast to float32 for the log-softmax.

    Arguments
    ---------
    logits : torch.Tensor
        ``[B, T, V]`` from a causal LM over the full sequence.
    labels : torch.Tensor
        ``[B, T]``: the token ids at the response positions, ``ignore_index`` elsewhere
        (prompt, padding, audio).
    ignore_index : int
        The label of positions that do not count.

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
        ``[B]`` summed log-probs of the labelled tokens and ``[B]`` how many there are.

    Example
    -------
    >>> logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens: log(1/4) per token
    >>> logp, n = sequence_logprobs(logits, torch.tensor([[IGNORE_INDEX, 2, 1]]))
    >>> round(float(logp), 4), n.tolist()
    (-2.7726, [2])
    """
    if logits.shape[:2] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} "
                         "disagree on batch/time")
    targets = labels[:, 1:]
    mask = targets != ignore_index
    # Only the response positions reach the (full-vocabulary) log-softmax: with audio tokens
    # and long prompts they are a small share of the sequence.
    rows, cols = mask.nonzero(as_tuple=True)
    picked = logits[:, :-1, :][rows, cols]
    if picked.dtype in (torch.float16, torch.bfloat16):
        picked = picked.float()  # log-softmax in half precision loses too much
    token_logp = torch.log_softmax(picked, dim=-1).gather(
        1, targets[rows, cols].unsqueeze(-1)).squeeze(-1)
    sums = torch.zeros(labels.shape[0], dtype=token_logp.dtype, device=token_logp.device)
    sums = sums.index_add(0, rows, token_logp)
    return sums, mask.sum(-1)


def sft_loss(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Cross-entropy averaged over all response tokens of the batch (prompt/padding masked).

    Arguments
    ---------
    logits : torch.Tensor
        ``[B, T, V]`` from a causal LM over the full sequence.
    labels : torch.Tensor
        ``[B, T]`` response token ids, ``ignore_index`` elsewhere.
    ignore_index : int
        The label of positions that do not count.

    Returns
    -------
    torch.Tensor
        The scalar mean negative log-likelihood per response token.

    Raises
    ------
    ValueError
        When no position of the batch is labelled.

    Example
    -------
    >>> loss = sft_loss(torch.zeros(1, 3, 4), torch.tensor([[IGNORE_INDEX, 2, 1]]))
    >>> round(float(loss), 4)  # log(4)
    1.3863
    """
    logp_sum, n_tokens = sequence_logprobs(logits, labels, ignore_index)
    total = n_tokens.sum()
    if total == 0:
        raise ValueError("no response tokens in the batch: every label is ignore_index")
    return -logp_sum.sum() / total


@dataclass
class ALLDOutput:
    """The ALLD loss and what to log with it (returned by :func:`alld_loss`).

    Example
    -------
    >>> out = alld_loss(torch.tensor([-4.0]), torch.tensor([-5.0]), torch.tensor([-4.0]),
    ...                 torch.tensor([-4.0]), beta=0.5)
    >>> out.chosen_rewards.tolist(), out.rejected_rewards.tolist(), float(out.reward_margin)
    ([0.0], [-0.5], 0.5)
    """

    loss: torch.Tensor  # scalar to backpropagate
    chosen_rewards: torch.Tensor  # [B] beta * (pc - rc), detached
    rejected_rewards: torch.Tensor  # [B] beta * (pr - rr), detached
    reward_margin: torch.Tensor  # scalar, mean(chosen - rejected)
    reward_accuracy: torch.Tensor  # scalar, share of examples with chosen > rejected
    preference_loss: torch.Tensor  # scalar, the DPO-form term alone
    sft_term: torch.Tensor  # scalar, per-token NLL of the chosen response (0 if alpha == 0)


def alld_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float = 0.4,
    label_smoothing: float = 0.0,
    length_normalize: bool = False,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
    alpha: float = 0.0,
) -> ALLDOutput:
    """ALLD: DPO's loss with the expert text LLM as the reference policy.

    Arguments
    ---------
    policy_chosen : torch.Tensor
        ``[B]`` log pi_theta(y_t | x_a), summed over the response tokens.
    policy_rejected : torch.Tensor
        ``[B]`` log pi_theta(y_a | x_a).
    ref_chosen : torch.Tensor
        ``[B]`` log pi_ref(y_t | x_t).
    ref_rejected : torch.Tensor
        ``[B]`` log pi_ref(y_a | x_t).
    beta : float
        The scale of the log-ratio margin (> 0).
    label_smoothing : float
        In [0, 0.5); > 0 gives conservative DPO.
    length_normalize : bool
        Divide each log-prob by its response length (``chosen_lengths`` /
        ``rejected_lengths``, required then): TRL's ``loss_type="sigmoid_norm"``.
    chosen_lengths : torch.Tensor | None
        ``[B]`` token counts of the chosen responses.
    rejected_lengths : torch.Tensor | None
        ``[B]`` token counts of the rejected responses.
    alpha : float
        > 0 adds ``alpha * NLL_per_token(y_t)`` of the policy on the chosen response (needs
        ``chosen_lengths``): TRL's ``loss_type=["sigmoid", "sft"]`` with
        ``loss_weights=[1, alpha]`` (RPO-style).

    Returns
    -------
    ALLDOutput
        The loss to backpropagate and the detached rewards and terms to log.

    Example
    -------
    >>> out = alld_loss(torch.tensor([-4.0, -6.0]), torch.tensor([-5.0, -5.0]),
    ...                 torch.tensor([-4.0, -5.0]), torch.tensor([-4.0, -4.0]), beta=0.5)
    >>> round(float(out.loss), 4), float(out.reward_margin), float(out.reward_accuracy)
    (0.5836, 0.25, 0.5)
    >>> n = torch.tensor([2, 2])
    >>> out = alld_loss(torch.tensor([-4.0, -6.0]), torch.tensor([-5.0, -5.0]),
    ...                 torch.tensor([-4.0, -5.0]), torch.tensor([-4.0, -4.0]), alpha=1.0,
    ...                 chosen_lengths=n)
    >>> float(out.sft_term)  # mean of 4/2 and 6/2
    2.5
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    shapes = {t.shape for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"log-prob tensors must all be [B], got {sorted(map(tuple, shapes))}")
    if (length_normalize or alpha > 0) and chosen_lengths is None:
        raise ValueError("chosen_lengths is required for length_normalize or alpha > 0")
    if length_normalize and rejected_lengths is None:
        raise ValueError("rejected_lengths is required for length_normalize")
    ref_chosen = ref_chosen.to(policy_chosen)
    ref_rejected = ref_rejected.to(policy_rejected)
    pc, pr, rc, rr = policy_chosen, policy_rejected, ref_chosen, ref_rejected
    if length_normalize:
        nc = chosen_lengths.to(pc).clamp(min=1)
        nr = rejected_lengths.to(pr).clamp(min=1)
        pc, rc, pr, rr = pc / nc, rc / nc, pr / nr, rr / nr
    chosen_logratio = pc - rc
    rejected_logratio = pr - rr
    h = beta * (chosen_logratio - rejected_logratio)
    preference = (-(1 - label_smoothing) * F.logsigmoid(h)
                  - label_smoothing * F.logsigmoid(-h)).mean()
    sft_term = torch.zeros((), dtype=preference.dtype, device=preference.device)
    if alpha > 0:
        sft_term = (-policy_chosen / chosen_lengths.to(policy_chosen).clamp(min=1)).mean()
    chosen_rewards = (beta * chosen_logratio).detach()
    rejected_rewards = (beta * rejected_logratio).detach()
    return ALLDOutput(
        loss=preference + alpha * sft_term,
        chosen_rewards=chosen_rewards,
        rejected_rewards=rejected_rewards,
        reward_margin=(chosen_rewards - rejected_rewards).mean(),
        reward_accuracy=(chosen_rewards > rejected_rewards).float().mean(),
        preference_loss=preference.detach(),
        sft_term=sft_term.detach(),
    )


def regression_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the known targets (``nan`` marks a missing rating).

    Each column is averaged over the items that have it, then the columns that have any are
    averaged, so a dimension rated for few clips weighs as much as MOS.

    Arguments
    ---------
    predictions : torch.Tensor
        ``[B, K]`` predicted ratings (MOS and the dimensions).
    targets : torch.Tensor
        ``[B, K]`` human ratings, ``nan`` where not rated.

    Returns
    -------
    torch.Tensor
        The scalar loss.

    Example
    -------
    >>> pred = torch.tensor([[3.0, 2.0], [4.0, 5.0]])
    >>> true = torch.tensor([[2.0, float("nan")], [4.0, 3.0]])
    >>> float(regression_loss(pred, true))  # (mean(1, 0) + mean(4)) / 2
    2.25
    """
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets "
                         f"{tuple(targets.shape)} differ in shape")
    known = ~torch.isnan(targets)
    if not known.any():
        raise ValueError("no known target in the batch")
    err = torch.where(known, predictions - torch.nan_to_num(targets), 0.0) ** 2
    per_column = err.sum(0) / known.sum(0).clamp(min=1)
    return per_column[known.any(0)].mean()
