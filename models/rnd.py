"""Random network distillation: a fixed random target network f and the predictor f_hat.

Burda, Edwards, Storkey, Klimov (2019), "Exploration by Random Network Distillation",
arXiv:1810.12894, section 2.2: the prediction problem is given by a randomly initialized network
f: O -> R^k that stays fixed; a predictor f_hat: O -> R^k is trained by gradient descent to
match it on the observations the agent has collected, so its error ||f_hat(x) - f(x)||^2 is
high on observations unlike those seen so far (novel ones) and falls on familiar ones. The
paper's predictor is deeper than the target (more capacity than the function it fits), which
the extra hidden layer here keeps. Both see normalized observations (agents.model_free.rnd).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from models.mlp import mlp


class RNDTarget(nn.Module):
    """f(x): a randomly initialized MLP obs [B, obs_dim] -> features [B, k], never trained.

    Its parameters do not require gradients and forward runs under no_grad, so no loss can
    move it; it is saved with the checkpoint anyway, so a resumed run need not re-derive it
    from the seed.
    """

    def __init__(self, obs_dim: int, *, hidden: Sequence[int] = (64, 64),
                 features: int = 64) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, features, activation="relu", out_gain=1.0)
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs)


class RNDPredictor(nn.Module):
    """f_hat(x): a trainable MLP obs [B, obs_dim] -> features [B, k], one hidden layer deeper
    than the target (the paper's predictor has more capacity than its target)."""

    def __init__(self, obs_dim: int, *, hidden: Sequence[int] = (64, 64),
                 features: int = 64) -> None:
        super().__init__()
        self.net = mlp(obs_dim, (*hidden, hidden[-1]) if hidden else (), features,
                       activation="relu", out_gain=1.0)

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs)
