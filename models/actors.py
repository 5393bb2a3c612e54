"""Actors: PPO's actor-critic, SAC's squashed Gaussian, the deterministic actor of DDPG/TD3.

The off-policy actors use PyTorch's default `nn.Linear` init, as the reference implementations
of SAC and TD3 (and Stable-Baselines3) do; the actor-critic uses the orthogonal init of PPO's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from models.mlp import mlp, trunk
from models.normalizer import RunningNorm

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Bounds of log sigma(s), as in the SAC authors' implementation (softlearning)."""
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


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
        self.trunk = trunk(obs_dim, hidden, activation)
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


class ActorCritic(nn.Module):
    """pi(a|s) and V(s) on normalized observations, for discrete or continuous actions.

    Continuous actions use a diagonal Gaussian with a state-independent log-std, as in PPO's
    reference implementation; the mean is unbounded and the env clips to [-1, 1]. With
    `orthogonal` False both networks keep PyTorch's default init (RL-Zoo's `ortho_init=False`).
    """

    obs_norm: RunningNorm

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        *,
        discrete: bool,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        init_log_std: float = 0.0,
        orthogonal: bool = True,
    ) -> None:
        super().__init__()
        self.discrete = discrete
        self.obs_norm = RunningNorm((obs_dim,))
        self.actor = mlp(obs_dim, hidden, act_dim, activation=activation, out_gain=0.01,
                         orthogonal=orthogonal)
        self.critic = mlp(obs_dim, hidden, 1, activation=activation, out_gain=1.0,
                          orthogonal=orthogonal)
        if not discrete:
            self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))

    def dist(self, obs_n: Tensor) -> Distribution:
        """pi(.|s) for normalized observations obs_n [B, obs_dim]."""
        out = self.actor(obs_n)
        # Argument validation costs more than the forward pass of a small MLP; inputs are ours.
        if self.discrete:
            return Categorical(logits=out, validate_args=False)
        std = self.log_std.exp().expand_as(out)
        return Independent(Normal(out, std, validate_args=False), 1, validate_args=False)

    def value(self, obs_n: Tensor) -> Tensor:
        """V(s) [B]."""
        return self.critic(obs_n).squeeze(-1)
