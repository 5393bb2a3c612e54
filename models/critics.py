"""Critics: Q-networks over discrete actions and batched ensembles of Q(s, a)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from models.ensemble import EnsembleLinear, ensemble_mlp
from models.mlp import mlp, trunk


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
            self.trunk = trunk(obs_dim, hidden, activation)
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


class QEnsemble(nn.Module):
    """E critics Q_i(s, a) in one batched forward: (obs [B, obs_dim], act [B, a_dim]) -> [E, B]."""

    def __init__(
        self, obs_dim: int, act_dim: int, *, ensemble_size: int = 2,
        hidden: Sequence[int] = (256, 256), activation: str = "relu",
    ) -> None:
        super().__init__()
        self.ensemble_size = ensemble_size
        self.net = ensemble_mlp(ensemble_size, obs_dim + act_dim, hidden, 1, activation=activation)

    def forward(
        self, obs: Tensor, act: Tensor, *, detach_params: bool = False, member: int | None = None
    ) -> Tensor:
        """Q-values [E, B], or [B] of one `member` (TD3's actor loss uses Q_1 only).

        `detach_params`: the critics' weights are constants here, so a loss on the result moves
        only what produced `act` (the actor's loss, in one backward pass with the critics' own).
        """
        x = torch.cat([obs, act], dim=-1)
        for layer in self.net:
            if isinstance(layer, EnsembleLinear):
                x = layer(x, detach_params=detach_params, member=member)
            else:
                x = layer(x)
        return x.squeeze(-1)
