"""Random network distillation (RND): an intrinsic reward for novelty, for model-free agents.

Burda, Edwards, Storkey, Klimov (2019), "Exploration by Random Network Distillation",
arXiv:1810.12894; CS285 (Levine, lecture 13: exploration, novelty bonuses r^+ = r + B(s) from
the error of a learned predictor). The pieces, as the paper's sections name them:

    r_i(s')   = ||f_hat(x) - f(x)||^2,  x = clip((s' - mu) / sigma, -5, 5)           (2.2, 2.4)
    r_i      <- r_i / std(R_i), R_i the running non-episodic discounted intrinsic return (2.4)
    L(f_hat)  = mean ||f_hat(x) - f(x)||^2 over a random `update_proportion` of the batch  (A.4)
    A         = ext_coef * A_E + int_coef * A_I, with two value heads V_E, V_I           (2.3)

f is a fixed random network and f_hat is trained to match it on visited observations
(models.rnd), so the error is large where the agent has rarely been. The observation
statistics (mu, sigma) start from the first batch seen (the paper instead steps a random agent
before training; the first rollout of the policy plays that part here). The intrinsic return
does not stop at episode ends (2.3: "non-episodic"), and `combined_advantage` is a pure
function so an agent (PPO here, an off-policy agent's reward r + coef * r_i later) decides only
how the bonus enters its own objective.

This module has the agent-independent parts: the losses and an `RND` bonus that owns the two
networks, the normalizers and the predictor's optimizer, with its own state for checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from models.normalizer import RunningNorm
from models.rnd import RNDPredictor, RNDTarget

OBS_CLIP = 5.0
"""Normalized observations are clipped to [-5, 5] before f and f_hat (paper, section 2.4)."""


def prediction_error(predicted: Tensor, target: Tensor) -> Tensor:
    """||f_hat(x) - f(x)||^2 per sample: features [B, k] -> [B] (the unnormalized r_i)."""
    return (predicted - target).square().sum(-1)


def predictor_loss(predicted: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error of f_hat against f over the samples where `mask` [B] is true.

    Training on a random fraction of each batch keeps f_hat from fitting as fast as more
    parallel envs would make it (paper, appendix A.4: proportion 0.25 at 128 envs);
    target is f(x), which carries no gradient.
    """
    per_sample = (predicted - target.detach()).square().mean(-1)
    m = mask.to(per_sample.dtype)
    return (per_sample * m).sum() / m.sum().clamp_min(1.0)


def combined_advantage(adv_ext: Tensor, adv_int: Tensor, ext_coef: float,
                       int_coef: float) -> Tensor:
    """A = ext_coef * A_E + int_coef * A_I: returns are linear, so the two streams are
    estimated apart (each with its own discount and episode handling) and summed (2.3)."""
    return ext_coef * adv_ext + int_coef * adv_int


class RND:
    """The bonus: f, f_hat, their observation normalizer, the intrinsic-return scaler and the
    predictor's Adam. `rewards` scores a rollout, `loss`/`step` train f_hat on one batch."""

    def __init__(self, obs_dim: int, num_envs: int, *, int_gamma: float,
                 update_proportion: float, lr: float, hidden: Sequence[int] = (64, 64),
                 features: int = 64, max_grad_norm: float | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.int_gamma, self.update_proportion = int_gamma, update_proportion
        self.max_grad_norm = max_grad_norm
        self.target = RNDTarget(obs_dim, hidden=hidden, features=features).to(device)
        self.predictor = RNDPredictor(obs_dim, hidden=hidden, features=features).to(device)
        self.obs_norm = RunningNorm((obs_dim,), clip=OBS_CLIP).to(device)
        self.return_stats = RunningNorm(()).to(device)  # of R_i, for std(R_i)
        # R_i per env, carried across rollouts and never reset (the return is non-episodic)
        self.int_return = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self._params = list(self.predictor.parameters())
        self.opt = torch.optim.Adam(self._params, lr=lr, eps=1e-5)

    def modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({"target": self.target, "predictor": self.predictor,
                              "obs_norm": self.obs_norm, "return_stats": self.return_stats})

    def inputs(self, obs: Tensor) -> Tensor:
        """x: observations normalized by the running statistics and clipped to [-5, 5]."""
        return self.obs_norm(obs)

    @torch.no_grad()
    def novelty(self, obs: Tensor) -> Tensor:
        """The raw prediction error of observations [B, obs_dim] -> [B] (no statistic moves)."""
        x = self.inputs(obs)
        return prediction_error(self.predictor(x), self.target(x))

    @torch.no_grad()
    def rewards(self, next_obs: Tensor) -> tuple[Tensor, Tensor]:
        """Normalized r_i [T, N] of a rollout's next observations [T, N, obs_dim], and the
        raw errors [T, N].

        The observations first join the running statistics (so the first rollout sets them),
        then each env's R_i <- gamma_I R_i + r_i runs over the rollout, its values join the
        return statistics, and r_i is divided by their std (paper, section 2.4).
        """
        T, N = next_obs.shape[:2]
        self.obs_norm.update(next_obs.reshape(T * N, -1))
        raw = self.novelty(next_obs.reshape(T * N, -1)).reshape(T, N)
        returns = torch.empty(T, N, dtype=torch.float64, device=raw.device)
        for t in range(T):
            self.int_return.mul_(self.int_gamma).add_(raw[t].to(torch.float64))
            returns[t] = self.int_return
        self.return_stats.update(returns.reshape(-1))
        std = (self.return_stats.var + self.return_stats.eps).sqrt().to(raw.dtype)
        return raw / std, raw

    def loss(self, x: Tensor) -> Tensor:
        """L(f_hat) on normalized inputs x [B, obs_dim], a random `update_proportion` of them."""
        mask = torch.rand(x.shape[0], device=x.device) < self.update_proportion
        return predictor_loss(self.predictor(x), self.target(x), mask)

    def step(self, x: Tensor) -> Tensor:
        """One Adam step of f_hat on the inputs x [B, obs_dim]; the loss (detached)."""
        loss = self.loss(x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self._params, self.max_grad_norm, foreach=True)
        self.opt.step()
        return loss.detach()

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The networks (the target too: fixed by the seed, saved anyway), the normalizers and
        R_i; the optimizer's state is `self.opt.state_dict()`, which the agent files with its
        own optimizers (a checkpoint keeps them apart from the weights)."""
        return {"modules": self.modules().state_dict(), "int_return": self.int_return}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.modules().load_state_dict(state["modules"])
        self.int_return.copy_(state["int_return"])
