"""What the on-policy actor-critics share (PPO, A2C, TRPO, REINFORCE): acting through a
`models.actors.ActorCritic`, with running observation normalization and reward scaling, its
saved state and its export head.

The loop is `agents.loops.on_policy.train_on_policy`; an on-policy agent satisfies
`agents.protocol.OnPolicyAgent`. `ActorCriticActing` is all of that protocol but the learning
(the loss, `learn`, `set_lr_fraction`, each algorithm's own) for an agent that has `net` (an
ActorCritic), `cfg.norm_obs` / `cfg.norm_reward`, `reward_scaler`, `opt`, `info` and `device`;
an agent with more state (PPO's RND, REINFORCE without a reward scaler) overrides what differs.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from models.actors import ActorCritic
from models.export_heads import ArgmaxActionHead, ScaledActionHead
from models.normalizer import RewardScaler
from sim.registry import EnvInfo


class ActorCriticActing:
    """normalize, explore, value, act, scale_reward, state and export of a stochastic actor
    with a critic."""

    net: ActorCritic
    cfg: Any
    info: EnvInfo
    device: torch.device
    reward_scaler: RewardScaler
    opt: torch.optim.Optimizer

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

    def scale_reward(self, reward: Tensor, ended: Tensor) -> Tensor:
        return self.reward_scaler(reward, ended) if self.cfg.norm_reward else reward

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "reward_scaler": self.reward_scaler.state_dict(),
                "optim": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])
        self.opt.load_state_dict(state["optim"])

    def inference_module(self) -> nn.Module:
        """obs (robot units) -> deterministic action (robot units), on CPU, for export."""
        return export_module(self.net, self.info, self.cfg.norm_obs)


def export_module(net: ActorCritic, info: EnvInfo, norm_obs: bool) -> nn.Module:
    """The actor of an ActorCritic as an export head: argmax of the logits, or the clipped
    Gaussian mean scaled to the robot's bounds; the normalizer in the graph when used."""
    norm = net.obs_norm if norm_obs else None
    if info.discrete:
        return ArgmaxActionHead(norm, net.actor).cpu().eval()
    low, high = torch.tensor(info.action_low), torch.tensor(info.action_high)
    return ScaledActionHead(norm, net.actor, low, high).cpu().eval()
