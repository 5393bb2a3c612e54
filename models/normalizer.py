"""Running statistics as modules, so they are saved with the weights and exported in the graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RunningNorm(nn.Module):
    """Normalizes by a running mean and variance: clamp((x - mean) / sqrt(var + eps), -clip, clip).

    Statistics are accumulated in float64 with the parallel update of Chan et al. (1979), the
    same estimator as SB3's VecNormalize and CleanRL's NormalizeObservation. `update` is
    explicit, so evaluation and export never move the statistics.
    """

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(self, shape: tuple[int, ...], *, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip, self.eps = clip, eps
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Fold a batch x [B, *shape] into the statistics."""
        x = x.to(torch.float64).reshape(-1, *self.mean.shape)
        b_mean, b_var, b_count = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        m2 = self.var * self.count + b_var * b_count + delta.square() * self.count * b_count / total
        self.mean.add_(delta * b_count / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: Tensor) -> Tensor:
        mean, std = self.mean.to(x.dtype), (self.var + self.eps).sqrt().to(x.dtype)
        return ((x - mean) / std).clamp(-self.clip, self.clip)


class RewardScaler(nn.Module):
    """Divides rewards by the running std of the discounted return (Engstrom et al. 2020).

    Keeps one discounted-return accumulator per env; an episode end resets its accumulator.
    Training-only: rewards are never part of an exported policy.
    """

    ret: Tensor

    def __init__(self, num_envs: int, gamma: float, *, clip: float = 10.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.stats = RunningNorm((), clip=clip)
        self.register_buffer("ret", torch.zeros(num_envs, dtype=torch.float64))

    @torch.no_grad()
    def forward(self, reward: Tensor, ended: Tensor) -> Tensor:
        self.ret.mul_(self.gamma).add_(reward.to(torch.float64))
        self.stats.update(self.ret)
        self.ret.masked_fill_(ended, 0.0)
        std = (self.stats.var + self.stats.eps).sqrt().to(reward.dtype)
        return (reward / std).clamp(-self.stats.clip, self.stats.clip)


MIN_STD = 1e-6
"""A column whose std is below this is only centred (std 1), as PETS does: a constant column
divided by a floored std would turn the smallest deviation at run time into a huge input."""


class FittedNorm(nn.Module):
    """(x - mean) / std with statistics fitted once on a data set (PETS refits on all data).

    Buffers (float32), so they are saved in the state_dict and go into an exported graph;
    `count` is the number of rows fitted (0: never fitted, an identity).
    """

    mean: Tensor
    std: Tensor
    count: Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        """Set the statistics to those of x [N, dim] (computed in float64)."""
        x = x.to(torch.float64)
        std = x.std(0, unbiased=False)
        self.mean.copy_(x.mean(0))
        self.std.copy_(torch.where(std < MIN_STD, torch.ones_like(std), std))
        self.count.fill_(x.shape[0])

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def inverse(self, z: Tensor) -> Tensor:
        return z * self.std + self.mean
