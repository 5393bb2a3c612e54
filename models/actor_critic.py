"""Actor-critic networks (separate actor and critic MLPs) and their exportable policies."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from models.mlp import mlp
from models.normalizer import RunningNorm


class ActorCritic(nn.Module):
    """pi(a|s) and V(s) on normalized observations, for discrete or continuous actions.

    Continuous actions use a diagonal Gaussian with a state-independent log-std, as in PPO's
    reference implementation; the mean is unbounded and the env clips to [-1, 1].
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        *,
        discrete: bool,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        init_log_std: float = 0.0,
    ) -> None:
        super().__init__()
        self.discrete = discrete
        self.obs_norm = RunningNorm((obs_dim,))
        self.actor = mlp(obs_dim, hidden, act_dim, activation=activation, out_gain=0.01)
        self.critic = mlp(obs_dim, hidden, 1, activation=activation, out_gain=1.0)
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


class GaussianPolicy(nn.Module):
    """obs (robot units) -> deterministic action (robot units): normalize, mean, clip, scale.

    `actor` maps (normalized) observations to the action in [-1, 1] before clipping: a Gaussian
    mean, a tanh-squashed mean (SAC) or a deterministic actor (TD3). `obs_norm` None: no
    normalizer in the graph.
    """

    def __init__(
        self, obs_norm: RunningNorm | None, actor: nn.Module, low: Tensor, high: Tensor
    ) -> None:
        super().__init__()
        self.obs_norm, self.actor = _copy_norm(obs_norm), copy.deepcopy(actor)
        self.register_buffer("low", low.float())
        self.register_buffer("high", high.float())

    def forward(self, obs: Tensor) -> Tensor:
        a = self.actor(self.obs_norm(obs)).clamp(-1.0, 1.0)
        return self.low + (a + 1.0) * 0.5 * (self.high - self.low)


class CategoricalPolicy(nn.Module):
    """obs -> index of the largest output (logit or Q-value) as float [B, 1] (bundle contract)."""

    def __init__(self, obs_norm: RunningNorm | None, actor: nn.Module) -> None:
        super().__init__()
        self.obs_norm, self.actor = _copy_norm(obs_norm), copy.deepcopy(actor)

    def forward(self, obs: Tensor) -> Tensor:
        return self.actor(self.obs_norm(obs)).argmax(-1, keepdim=True).float()


def _copy_norm(obs_norm: RunningNorm | None) -> nn.Module:
    return nn.Identity() if obs_norm is None else copy.deepcopy(obs_norm)
