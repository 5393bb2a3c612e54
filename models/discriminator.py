"""Discriminators of adversarial imitation: GAIL's D(s, a) and AIRL's disentangled reward.

    Discriminator   logit(s, a), D(s, a) = sigmoid(logit): expert pairs -> 1, policy pairs -> 0
                    (Ho & Ermon 2016, "Generative Adversarial Imitation Learning")
    AIRLReward      the reward approximator g(s) and the shaping potential h(s) of
                    f(s, a, s') = g(s) + gamma h(s') - h(s) (Fu, Luo, Levine 2018, "Learning
                    Robust Rewards with Adversarial Inverse Reinforcement Learning")

Both normalize observations with statistics fitted once on the expert data (`obs_norm.fit`),
kept as buffers so a saved reward carries them. Discrete actions enter as one-hot vectors,
continuous ones clipped to the env's [-1, 1] (what the env executes: a Gaussian policy's sample
outside the box would otherwise tell policy from expert by itself).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.mlp import mlp
from models.normalizer import FittedNorm


def encode_action(action: Tensor, act_dim: int, discrete: bool) -> Tensor:
    """[B] indices -> one-hot [B, n]; [B, A] continuous -> clipped to [-1, 1]."""
    if discrete:
        return F.one_hot(action.long().reshape(-1), act_dim).float()
    return action.float().reshape(len(action), act_dim).clamp(-1.0, 1.0)


class Discriminator(nn.Module):
    """GAIL's classifier of (s, a) pairs: one logit per pair."""

    def __init__(self, obs_dim: int, act_dim: int, *, discrete: bool,
                 hidden: Sequence[int] = (64, 64), activation: str = "tanh") -> None:
        super().__init__()
        self.act_dim, self.discrete, self.in_dim = act_dim, discrete, obs_dim + act_dim + 1
        self.obs_norm = FittedNorm(obs_dim)
        # one more input: 1 marks the absorbing state after a termination (`gail --absorbing`)
        self.net = mlp(obs_dim + act_dim + 1, hidden, 1, activation=activation)

    def inputs(self, obs: Tensor, action: Tensor) -> Tensor:
        """The network's input x = [normalized s, encoded a, 0] [B, obs_dim + act_dim + 1]."""
        x = self.obs_norm(obs)
        return torch.cat([x, encode_action(action, self.act_dim, self.discrete),
                          torch.zeros_like(x[..., :1])], -1)

    def absorbing(self) -> Tensor:
        """The logit of the absorbing state (zero state and action, marker 1), a scalar."""
        x = torch.zeros(1, self.in_dim, device=next(self.net.parameters()).device)
        x[:, -1] = 1.0
        return self.logits_of(x).reshape(())

    def logits_of(self, x: Tensor) -> Tensor:
        """logit(x) [B] for inputs built by `inputs` (the gradient penalty differentiates this)."""
        return self.net(x).squeeze(-1)

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        return self.logits_of(self.inputs(obs, action))


class AIRLReward(nn.Module):
    """AIRL's state-only reward g(s) and shaping potential h(s), each an MLP to a scalar."""

    def __init__(self, obs_dim: int, *, hidden: Sequence[int] = (64, 64),
                 activation: str = "tanh") -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.obs_norm = FittedNorm(obs_dim)
        # one more input: 1 marks the absorbing state after a termination (Kostrikov et al.
        # 2019, as `airl --absorbing` learns it), 0 every real state
        self.g_net = mlp(obs_dim + 1, hidden, 1, activation=activation)
        self.h_net = mlp(obs_dim + 1, hidden, 1, activation=activation)

    def _inputs(self, obs: Tensor) -> Tensor:
        x = self.obs_norm(obs)
        return torch.cat([x, torch.zeros_like(x[..., :1])], -1)

    def g(self, obs: Tensor) -> Tensor:
        """The disentangled reward g(s) [B]: what transfers to new dynamics."""
        return self.g_net(self._inputs(obs)).squeeze(-1)

    def h(self, obs: Tensor) -> Tensor:
        """The shaping potential h(s) [B]."""
        return self.h_net(self._inputs(obs)).squeeze(-1)

    def absorbing(self) -> Tensor:
        """[g, h] of the absorbing state (zero observation, marker 1) [2]."""
        x = torch.zeros(1, self.obs_dim + 1, device=next(self.g_net.parameters()).device)
        x[:, -1] = 1.0
        return torch.cat([self.g_net(x), self.h_net(x)]).reshape(2)

    def forward(self, obs: Tensor) -> Tensor:
        return self.g(obs)
