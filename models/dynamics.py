"""The probabilistic dynamics ensemble of PETS (its training: agents.model_based.dynamics_fit).

Chua, Calandra, McAllister, Levine (2018), "Deep Reinforcement Learning in a Handful of Trials
using Probabilistic Dynamics Models", arXiv:1805.12114 (PE: probabilistic ensemble; TS:
trajectory sampling). Each of E members is a Gaussian over the normalized target

    y = [s' - s (, r)],   f_e(s, a) = N(mu_e, diag(exp(logvar_e)))

with the log-variance kept between learned soft bounds (PETS, appendix A.1):

    logvar = max_logvar - softplus(max_logvar - raw)
    logvar = min_logvar + softplus(logvar - min_logvar)

Members are one batched network (models.ensemble); each has its own bounds [E, 1, out], so a
member's loss moves only that member's weights and a member's best weights can be kept whole
(PETS and mbrl-lib share one pair of bounds across members). The members with the lowest
held-out error are the elites (`elite_idx`). `propagate` is what trajectory sampling calls; it
has no Python loop over members or particles and no data-dependent control flow, so it traces
into an ONNX graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.ensemble import EnsembleLinear, ensemble_mlp
from models.mlp import check_sizes
from models.normalizer import FittedNorm


class ProbabilisticEnsemble(nn.Module):
    """E Gaussian dynamics models: normalized [s, a] -> (mean, logvar) of normalized [s' - s (, r)].

    `reward=True` adds the reward as one more target column, a learned reward for envs whose
    reward function is not known. `elites` (default all) members are kept in `elite_idx`,
    best first, after each `fit`.
    """

    elite_idx: Tensor

    def __init__(
        self, obs_dim: int, act_dim: int, *, ensemble_size: int = 5, elites: int | None = None,
        hidden: Sequence[int] = (200, 200, 200, 200), activation: str = "silu",
        reward: bool = False,
    ) -> None:
        super().__init__()
        check_sizes(obs_dim=obs_dim, act_dim=act_dim, ensemble_size=ensemble_size)
        n_elites = ensemble_size if elites is None else elites
        if not (isinstance(n_elites, int) and not isinstance(n_elites, bool)
                and 1 <= n_elites <= ensemble_size):
            raise ValueError(f"elites must be an integer in 1..ensemble_size ({ensemble_size}), "
                             f"got {elites!r}")
        self.obs_dim, self.act_dim, self.reward = obs_dim, act_dim, reward
        self.ensemble_size, self.n_elites = ensemble_size, n_elites
        self.in_dim, self.out_dim = obs_dim + act_dim, obs_dim + int(reward)
        self.net = ensemble_mlp(ensemble_size, self.in_dim, hidden, 2 * self.out_dim,
                                activation=activation)
        self.max_logvar = nn.Parameter(torch.full((ensemble_size, 1, self.out_dim), 0.5))
        self.min_logvar = nn.Parameter(torch.full((ensemble_size, 1, self.out_dim), -10.0))
        self.input_norm, self.target_norm = FittedNorm(self.in_dim), FittedNorm(self.out_dim)
        self.register_buffer("elite_idx", torch.arange(n_elites))

    def targets(self, obs: Tensor, next_obs: Tensor, reward: Tensor | None = None) -> Tensor:
        """y = [s' - s (, r)] [..., out_dim], in env units."""
        delta = next_obs - obs
        if not self.reward:
            return delta
        if reward is None:
            raise ValueError("this ensemble learns the reward (reward=True); pass the rewards")
        return torch.cat([delta, reward.unsqueeze(-1)], -1)

    def fit_normalizers(
        self, obs: Tensor, act: Tensor, next_obs: Tensor, reward: Tensor | None = None
    ) -> None:
        """Fit the input and target normalizers to transitions [N, *]."""
        self.input_norm.fit(torch.cat([obs, act], -1))
        self.target_norm.fit(self.targets(obs, next_obs, reward))

    def forward(self, x: Tensor, *, members: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Normalized inputs x [B, in] (shared) or [M, B, in] -> mean, logvar [M, B, out].

        `members` (int64 [M]): only those members, e.g. `elite_idx` (x must then be [M, B, in]).
        """
        bounds: tuple[Tensor, Tensor] = (self.max_logvar, self.min_logvar)
        for layer in self.net:
            if not isinstance(layer, EnsembleLinear):
                x = layer(x)
            elif members is None:
                x = layer(x)
            else:  # the members' slices of the stacked weights: one Gather each in the graph
                x = torch.baddbmm(layer.bias[members], x, layer.weight[members])
        if members is not None:
            bounds = (self.max_logvar[members], self.min_logvar[members])
        mean, raw = x[..., : self.out_dim], x[..., self.out_dim :]
        return mean, soft_bound_logvar(raw, *bounds)

    def propagate(
        self, obs: Tensor, act: Tensor, noise: Tensor | None = None, *, elites_only: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """One step of every particle: obs [M, n, obs], act [M, n, act] -> s' [M, n, obs], r [M, n].

        Member m advances its own particle set (M = ensemble_size, or n_elites with
        `elites_only`); the trajectory-sampling agent assigns particles to members (TS-inf
        keeps the assignment, TS-1 permutes it every step). s' = s + denorm(mu + sigma noise),
        noise [M, n, out] ~ N(0, I) drawn by the caller; None takes the mean. r is None
        without a reward head.
        """
        x = self.input_norm(torch.cat([obs, act], -1))
        mean, logvar = self(x, members=self.elite_idx if elites_only else None)
        z = mean if noise is None else mean + (0.5 * logvar).exp() * noise
        delta = self.target_norm.inverse(z)
        next_obs = obs + delta[..., : self.obs_dim]
        return next_obs, (delta[..., self.obs_dim] if self.reward else None)


def soft_bound_logvar(raw: Tensor, max_logvar: Tensor, min_logvar: Tensor) -> Tensor:
    """PETS' soft bounds: within [min_logvar, max_logvar + softplus(min_logvar - max_logvar)]."""
    logvar = max_logvar - F.softplus(max_logvar - raw)
    return min_logvar + F.softplus(logvar - min_logvar)
