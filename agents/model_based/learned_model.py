"""A learned model of the env for model-based policy learning (MBPO, MVE, SVG).

Janner, Fu, Zhang, Levine (2019), "When to Trust Your Model: Model-Based Policy Optimization",
section 5 and appendix C: a probabilistic ensemble (models.dynamics) predicts the next state and
the reward, N(mu_e, Sigma_e) over [s' - s, r]; a rollout step draws one of the elite members
uniformly for every state and samples from its Gaussian,

    e ~ U(elites),   [s' - s, r] = denorm(mu_e(s, a) + sigma_e(s, a) eps),   eps ~ N(0, I),

and ends rollouts with the env's known termination function (MBPO's "static" functions; an env
without one never terminates in the model, as PETS treats learned rewards). With
`model_reward="known"` the ensemble predicts s' - s alone and r is the env's own function
r(s, a, s') (agents.model_based.rewards, as PETS plans with it; the paper learns r). The sample is
reparameterised, so gradients flow from s' and r back to s and a (SVG, Heess et al. 2015).
The ensemble is fit to the whole replay buffer (agents.model_based.dynamics_fit.fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from agents.model_based.dynamics_fit import dynamics_optimizer, fit_replay
from agents.model_based.rewards import known_reward, names_with_reward
from agents.runs.config import require, require_number, require_positive, require_sizes
from data.replay import ReplayBuffer
from models.dynamics import ProbabilisticEnsemble
from sim.registry import EnvInfo


@dataclass(frozen=True)
class ModelConfig:
    """The model's settings (names and defaults of the MBPO paper, appendix C)."""

    ensemble_size: int = 7
    """E, members of the ensemble (MBPO: 7)."""
    num_elites: int = 5
    """Members kept by held-out error, the ones rollouts draw from (MBPO: 5)."""
    model_hidden: tuple[int, ...] = (200, 200, 200, 200)
    """Hidden layer sizes of each member (MBPO: 4 x 200, swish)."""
    model_lr: float = 1e-3
    """Adam learning rate of the model."""
    model_weight_decay: float = 5e-5
    """Adam weight decay of the model."""
    model_batch_size: int = 256
    """Transitions per gradient step of a fit."""
    model_max_epochs: int = 50
    """Most epochs of one fit."""
    model_patience: int = 5
    """A fit stops after this many epochs in which no member improved its held-out error."""
    model_holdout: float = 0.2
    """Fraction of the data held out for early stopping and elite selection."""
    model_train_freq: int = 250
    """Env steps between fits of the model (MBPO: 250)."""
    model_reward: str = "learned"
    """learned: the ensemble predicts r too (MBPO); known: r is the env's own reward function
    (envs of agents.model_based.rewards), the ensemble predicts s' - s alone."""

    def __post_init__(self) -> None:
        require_positive(self, "ensemble_size", "num_elites", "model_batch_size",
                         "model_max_epochs", "model_patience", "model_train_freq")
        require(self.num_elites <= self.ensemble_size, "num_elites", self.num_elites,
                f"<= ensemble_size ({self.ensemble_size})")
        require_sizes(self, "model_hidden", allow_empty=False)
        require_number(self, "model_lr", low=0.0, low_open=True)
        require_number(self, "model_weight_decay", low=0.0)
        require_number(self, "model_holdout", low=0.0, high=1.0, low_open=True,
                       high_open=True)
        require(self.model_reward in MODEL_REWARDS, "model_reward", self.model_reward,
                " or ".join(MODEL_REWARDS))


MODEL_REWARDS = ("learned", "known")


def check_model_reward(cfg: ModelConfig, env: str) -> None:
    """Before the run folder exists: `model_reward="known"` needs the env's reward function;
    a one-line error names the envs that have one."""
    if cfg.model_reward == "known" and known_reward(env) is None:
        raise ValueError(f"--model-reward known: no known reward function for {env!r}; envs "
                         f"that have one: {', '.join(names_with_reward())} (or --model-reward "
                         "learned)")


class LearnedModel:
    """The ensemble over [s' - s, r], its optimizer, and the env's termination function."""

    def __init__(self, cfg: ModelConfig, info: EnvInfo, device: torch.device) -> None:
        if info.discrete:
            raise ValueError("the learned model takes continuous actions")
        self.cfg, self.device = cfg, device
        check_model_reward(cfg, info.name)
        known = known_reward(info.name)
        self.termination = None if known is None else known.to(device)
        """The env's termination function (None: no step terminates)."""
        self.reward = self.termination if cfg.model_reward == "known" else None
        """The env's reward function r(s, a, s') (None: the ensemble's reward output)."""
        self.ensemble = ProbabilisticEnsemble(
            info.obs_dim, info.act_dim, ensemble_size=cfg.ensemble_size,
            elites=cfg.num_elites, hidden=cfg.model_hidden, reward=self.reward is None
        ).to(device)
        self.opt = dynamics_optimizer(self.ensemble, lr=cfg.model_lr,
                                      weight_decay=cfg.model_weight_decay)
        self.fits = 0

    @property
    def fitted(self) -> bool:
        return self.fits > 0

    def fit(self, replay: ReplayBuffer) -> dict[str, float]:
        """Fit the ensemble to every transition in `replay`; the fit's statistics."""
        c = self.cfg
        stats = fit_replay(self.ensemble, replay, optimizer=self.opt,
                           batch_size=c.model_batch_size, max_epochs=c.model_max_epochs,
                           holdout=c.model_holdout, patience=c.model_patience)
        self.fits += 1
        return {"model_nll": stats.train_loss, "model_holdout_mse": stats.holdout_mse,
                "model_epochs": float(stats.epochs)}

    def step(self, obs: Tensor, act: Tensor, *, generator: torch.Generator | None = None,
             mean: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """One model step of every row: obs [N, obs], act [N, act] in [-1, 1] -> s', r [N],
        terminated [N] (bool).

        Each row draws an elite member uniformly and a Gaussian sample of it (`mean`: its mean,
        no noise), both from `generator` (None: torch's global generator, which runs
        checkpoint). Differentiable in obs and act; wrap it in torch.no_grad for rollouts.
        """
        m = self.ensemble
        n, E = obs.shape[0], m.n_elites
        x = m.input_norm(torch.cat([obs, act], -1))
        mu, logvar = m(x.expand(E, n, -1), members=m.elite_idx)  # [E, N, out]
        pick = torch.randint(E, (n,), generator=generator, device=obs.device)
        rows = torch.arange(n, device=obs.device)
        z = mu[pick, rows]
        if not mean:
            eps = torch.randn(z.shape, generator=generator, device=obs.device)
            z = z + (0.5 * logvar[pick, rows]).exp() * eps
        delta = m.target_norm.inverse(z)
        next_obs = obs + delta[:, : m.obs_dim]
        done = (torch.zeros(n, dtype=torch.bool, device=obs.device) if self.termination is None
                else self.termination.done(obs, act, next_obs).bool())
        return next_obs, self._reward(obs, act, next_obs, delta), done

    def _reward(self, obs: Tensor, act: Tensor, next_obs: Tensor, out: Tensor) -> Tensor:
        """r [N]: the env's function of (s, a, s'), or the ensemble's reward output in `out`."""
        if self.reward is not None:
            return self.reward.reward(obs, act, next_obs)
        return out[:, self.ensemble.obs_dim]

    @torch.no_grad()
    def error(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """Mean squared error of the elites' mean prediction on real transitions `batch`
        (fresh data the model has not been fit to), for s' and r."""
        m = self.ensemble
        x = m.input_norm(torch.cat([batch["obs"], batch["actions"]], -1))
        mu, _ = m(x.expand(m.n_elites, *x.shape), members=m.elite_idx)
        pred = m.target_norm.inverse(mu).mean(0)
        obs, act, rew = batch["obs"], batch["actions"], batch["rewards"]
        err_obs = (pred[:, : m.obs_dim] - (batch["next_obs"] - obs)).square()
        r = self._reward(obs, act, obs + pred[:, : m.obs_dim], pred)
        return {"model_error_obs": float(err_obs.mean()),
                "model_error_reward": float((r - rew.reshape(r.shape)).square().mean())}

    def state_dict(self) -> dict[str, Any]:
        return {"ensemble": self.ensemble.state_dict(), "optim": self.opt.state_dict(),
                "fits": self.fits}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ensemble.load_state_dict(state["ensemble"])
        self.opt.load_state_dict(state["optim"])
        self.fits = int(state["fits"])
