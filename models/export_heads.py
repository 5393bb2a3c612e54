"""Export heads: obs (robot units) -> action (robot units), the module `kinema export` traces.

Each head wraps a trained actor with what the bundle contract needs in the graph: the observation
normalizer, clipping to [-1, 1] and scaling to the robot's bounds (continuous actions), or the
index of the best action as a float (discrete actions).
"""

from __future__ import annotations

import copy

from torch import Tensor, nn

from models.normalizer import RunningNorm


class ScaledActionHead(nn.Module):
    """obs (robot units) -> deterministic action (robot units): normalize, mean, clip, scale.

    `actor` maps (normalized) observations to the action in [-1, 1] before clipping: a Gaussian
    mean, a tanh-squashed mean (SAC) or a deterministic actor (TD3). `obs_norm` None: no
    normalizer in the graph.
    """

    low: Tensor
    high: Tensor

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


class ArgmaxActionHead(nn.Module):
    """obs -> index of the largest output (logit or Q-value) as float [B, 1] (bundle contract)."""

    def __init__(self, obs_norm: RunningNorm | None, actor: nn.Module) -> None:
        super().__init__()
        self.obs_norm, self.actor = _copy_norm(obs_norm), copy.deepcopy(actor)

    def forward(self, obs: Tensor) -> Tensor:
        return self.actor(self.obs_norm(obs)).argmax(-1, keepdim=True).float()


def _copy_norm(obs_norm: RunningNorm | None) -> nn.Module:
    return nn.Identity() if obs_norm is None else copy.deepcopy(obs_norm)


class EnsembleMean(nn.Module):
    """[B, obs] -> mean over E members of the first `out_dim` outputs of `net` ([E, B, *]).

    For a Gaussian head the first act_dim outputs are the mean (the log-std follows); for a
    categorical head they are the logits, whose member average ranks actions for the argmax.
    """

    def __init__(self, net: nn.Module, out_dim: int) -> None:
        super().__init__()
        self.net, self.out_dim = net, out_dim

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs)[..., : self.out_dim].mean(0)
