"""Learning-rate schedules declared in the recipe's YAML (``lr_scheduler: !name:...``).

A schedule is a factory ``(optimizer, total_steps) -> torch LR scheduler``: the YAML fixes its
shape (warm-up share, floor), the stage supplies the number of optimiser steps it will take, and
the Brain steps it once per optimiser step and checkpoints it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def warmup_cosine(warmup_steps: int, total_steps: int, floor: float = 0.0
                  ) -> Callable[[int], float]:
    """LR multiplier: linear warm-up to 1 over ``warmup_steps``, then cosine to ``floor``.

    Arguments
    ---------
    warmup_steps : int
        Optimiser steps of linear warm-up (step ``s`` gets ``(s + 1) / warmup_steps``).
    total_steps : int
        Optimiser steps in all; the cosine reaches ``floor`` there.
    floor : float
        The final multiplier.

    Returns
    -------
    A function of the step index (0-based) giving the multiplier.

    Example
    -------
    >>> f = warmup_cosine(2, 6)
    >>> [round(f(s), 3) for s in range(7)]
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146, 0.0]
    """

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if total_steps <= warmup_steps:
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_ratio: float = 0.05,
    warmup_steps: int | None = None,
    floor: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` with :func:`warmup_cosine`: the stages' default schedule.

    Arguments
    ---------
    optimizer : torch.optim.Optimizer
        The optimiser whose learning rate is scheduled.
    total_steps : int
        Optimiser steps the stage will take (given by the stage, not the YAML).
    warmup_ratio : float
        Warm-up length as a share of ``total_steps`` (rounded), unless ``warmup_steps``.
    warmup_steps : int, optional
        Warm-up length in steps; overrides ``warmup_ratio``.
    floor : float
        Final multiplier of the cosine.

    Returns
    -------
    The scheduler; step it once per optimiser step.

    Example
    -------
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = warmup_cosine_scheduler(opt, total_steps=20, warmup_ratio=0.1)
    >>> lrs = []
    >>> for _ in range(3):
    ...     lrs.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
    >>> lrs
    [0.5, 1.0, 1.0]
    """
    if warmup_steps is None:
        warmup_steps = round(total_steps * warmup_ratio)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(int(warmup_steps), int(total_steps), floor))
