"""Networks of the off-policy agents: squashed-Gaussian and deterministic actors, Q-networks.

Initialization is PyTorch's default for `nn.Linear`, as in the reference implementations of
SAC, TD3 and DQN (and Stable-Baselines3), not the orthogonal init of the on-policy nets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.mlp import ACTIVATIONS, mlp

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Bounds of log sigma(s), as in the SAC authors' implementation (softlearning)."""
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _trunk(in_dim: int, hidden: Sequence[int], activation: str) -> nn.Sequential:
    """in_dim -> hidden..., with the activation after the last hidden layer too."""
    if not hidden:
        raise ValueError("an actor needs at least one hidden layer")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    body = mlp(in_dim, hidden[:-1], hidden[-1], activation=activation, orthogonal=False)
    return nn.Sequential(*body, ACTIVATIONS[activation]())


def tanh_gaussian_log_prob(u: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """log pi(a|s) of a = tanh(u), u ~ N(mean, exp(log_std)^2), summed over action dims [..., A].

    Change of variables (Haarnoja et al. 2018, Appendix C, eq. 21):
        log pi(a|s) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2)
    with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), which stays finite where tanh(u)
    rounds to +-1 (the naive form gives log 0 there).
    """
    z = (u - mean) * torch.exp(-log_std)
    log_normal = -0.5 * z.square() - log_std - _HALF_LOG_2PI
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (log_normal - log_det).sum(-1)


class SquashedGaussianActor(nn.Module):
    """pi(a|s): a = tanh(u), u ~ N(mu(s), sigma(s)^2), actions in [-1, 1] (SAC).

    forward(obs) is the deterministic action tanh(mu(s)) used for evaluation and export.
    """

    def __init__(
        self, obs_dim: int, act_dim: int, *, hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.trunk = _trunk(obs_dim, hidden, activation)
        self.head = nn.Linear(hidden[-1], 2 * act_dim)  # mu and log sigma from one matmul

    def mean_log_std(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.head(self.trunk(obs)).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, obs: Tensor) -> Tensor:
        return torch.tanh(self.mean_log_std(obs)[0])

    def sample(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Reparameterized a ~ pi(.|s) [B, A] and log pi(a|s) [B] (gradients flow through both).

        Same value as tanh_gaussian_log_prob(u, mean, log_std), with (u - mean) / sigma = eps
        known, which saves the ops that would recover it (this runs twice per SAC update).
        """
        mean, log_std = self.mean_log_std(obs)
        eps = torch.randn_like(mean)
        u = mean + log_std.exp() * eps
        log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        logp = (-0.5 * eps.square() - log_std - log_det).sum(-1) - _HALF_LOG_2PI * eps.shape[-1]
        return torch.tanh(u), logp


class DeterministicActor(nn.Module):
    """mu(s) = tanh(MLP(s)) in [-1, 1] (DDPG, TD3)."""

    def __init__(
        self, obs_dim: int, act_dim: int, *, hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, act_dim, activation=activation, orthogonal=False)

    def forward(self, obs: Tensor) -> Tensor:
        return torch.tanh(self.net(obs))


class QNetwork(nn.Module):
    """Q(s, .) for every discrete action: obs [B, obs_dim] -> [B, n_actions] (DQN).

    With `dueling`, Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a') from a shared trunk (Wang et
    al. 2016, eq. 9); subtracting the mean keeps V and A identifiable.
    """

    def __init__(
        self, obs_dim: int, n_actions: int, *, hidden: Sequence[int] = (256, 256),
        activation: str = "relu", dueling: bool = False,
    ) -> None:
        super().__init__()
        self.dueling = dueling
        if dueling:
            self.trunk = _trunk(obs_dim, hidden, activation)
            self.value = nn.Linear(hidden[-1], 1)
            self.advantage = nn.Linear(hidden[-1], n_actions)
        else:
            self.net = mlp(obs_dim, hidden, n_actions, activation=activation, orthogonal=False)

    def forward(self, obs: Tensor) -> Tensor:
        if not self.dueling:
            return self.net(obs)
        h = self.trunk(obs)
        adv = self.advantage(h)
        return self.value(h) + adv - adv.mean(-1, keepdim=True)
