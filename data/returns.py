"""Returns and advantage estimators as pure functions."""

from __future__ import annotations

import torch
from torch import Tensor


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    ended: Tensor,
    *,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016, arXiv:1506.02438).

    All inputs are [T, N] (time, env). `next_values[t]` is V(s_{t+1}) of the observation that
    step t led to: for a step that ended by truncation it is the value of the final observation,
    so time limits bootstrap instead of looking like failures. `terminated` cuts the bootstrap,
    `ended` (terminated or truncated) cuts the recursion across episodes:

        delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - ended_t) * A_{t+1}

    Returns (advantages, returns = advantages + values).
    """
    not_term = 1.0 - terminated.to(values.dtype)
    not_end = 1.0 - ended.to(values.dtype)
    deltas = rewards + gamma * not_term * next_values - values
    adv = torch.zeros_like(values)
    last = torch.zeros_like(values[0])
    for t in range(values.shape[0] - 1, -1, -1):
        last = deltas[t] + gamma * lam * not_end[t] * last
        adv[t] = last
    return adv, adv + values
