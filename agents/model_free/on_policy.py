"""What the on-policy actor-critics share (PPO, A2C, TRPO, REINFORCE): acting through a
`models.actors.ActorCritic`, with running observation normalization, and its export head.

The loop is `agents.loops.on_policy.train_on_policy`; an on-policy agent satisfies
`agents.protocol.OnPolicyAgent`. `ActorCriticActing` is the acting half of that protocol for an
agent that has `net` (an ActorCritic), `cfg.norm_obs`, `info` and `device`; the learning half
(the loss, `learn`) is each algorithm's own.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from models.actors import ActorCritic
from models.export_heads import ArgmaxActionHead, ScaledActionHead
from sim.registry import EnvInfo


class ActorCriticActing:
    """normalize, explore, value and act of a stochastic actor with a critic."""

    net: ActorCritic
    cfg: Any
    info: EnvInfo
    device: torch.device

    def normalize(self, obs: Tensor, *, update: bool = False) -> Tensor:
        """Observation as the networks see it; `update` folds it into the running statistics."""
        if not self.cfg.norm_obs:
            return obs
        if update:
            self.net.obs_norm.update(obs)
        return self.net.obs_norm(obs)

    @torch.no_grad()
    def explore(self, obs_n: Tensor) -> tuple[Tensor, Tensor]:
        """Sample a ~ pi(.|s) for normalized obs; returns (action, log pi(a|s))."""
        d = self.net.dist(obs_n)
        a = d.sample()
        return a, d.log_prob(a)

    @torch.no_grad()
    def value(self, obs_n: Tensor) -> Tensor:
        return self.net.value(obs_n)

    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """Actions in the env's units ([-1, 1] for continuous) for raw observations [B, obs_dim]."""
        obs_n = self.normalize(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        d = self.net.dist(obs_n)
        if not deterministic:
            return d.sample()
        if self.info.discrete:
            return cast(Categorical, d).probs.argmax(-1)
        return d.mean.clamp(-1.0, 1.0)


def export_module(net: ActorCritic, info: EnvInfo, norm_obs: bool) -> nn.Module:
    """The actor of an ActorCritic as an export head: argmax of the logits, or the clipped
    Gaussian mean scaled to the robot's bounds; the normalizer in the graph when used."""
    norm = net.obs_norm if norm_obs else None
    if info.discrete:
        return ArgmaxActionHead(norm, net.actor).cpu().eval()
    low, high = torch.tensor(info.action_low), torch.tensor(info.action_high)
    return ScaledActionHead(norm, net.actor, low, high).cpu().eval()
