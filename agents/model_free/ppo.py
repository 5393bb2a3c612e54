"""Proximal Policy Optimization with clipped surrogate objective.

Schulman, Wolski, Dhariwal, Radford, Klimov (2017), "Proximal Policy Optimization Algorithms",
arXiv:1707.06347; GAE from Schulman et al. (2016), arXiv:1506.02438. Implementation details
(orthogonal init, advantage normalization, value clipping, gradient clipping, learning-rate
annealing, observation normalization) follow Huang et al. (2022), "The 37 Implementation Details
of Proximal Policy Optimization", and CS285 (Levine, lecture 9: advanced policy gradients).

    L^CLIP(theta) = E_t[ min(r_t(theta) A_t, clip(r_t(theta), 1 - eps, 1 + eps) A_t) ]
    r_t(theta)    = pi_theta(a_t|s_t) / pi_theta_old(a_t|s_t)
    L             = -L^CLIP + c_1 L^VF - c_2 H[pi_theta]
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from agents.loops.on_policy import train_on_policy
from agents.protocol import Algorithm
from agents.runs.config import require_number, require_positive, require_sizes
from data.returns import gae
from data.rollout import RolloutBuffer
from models.actors import ActorCritic
from models.export_heads import ArgmaxActionHead, ScaledActionHead
from models.normalizer import RewardScaler, RunningNorm
from sim.registry import EnvInfo


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (names as in the paper and CleanRL)."""

    num_envs: int = 8
    """Parallel environments (gymnasium.vector)."""
    num_steps: int = 128
    """Rollout length per environment; a rollout is num_envs * num_steps transitions."""
    lr: float = 2.5e-4
    """Adam learning rate."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over the step budget."""
    gamma: float = 0.99
    """Discount factor."""
    lam: float = 0.95
    """GAE lambda."""
    num_minibatches: int = 4
    """Minibatches per epoch."""
    update_epochs: int = 4
    """Passes over each rollout."""
    norm_adv: bool = True
    """Normalize advantages per minibatch."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon."""
    clip_vloss: bool = True
    """Clip the value update around the old value estimate."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient c_2."""
    vf_coef: float = 0.5
    """Value loss coefficient c_1."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float | None = None
    """Stop an update's epochs early when the approximate KL exceeds this (None: never)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of actor and critic."""
    activation: str = "tanh"
    """Hidden activation: tanh, relu, elu or silu."""
    norm_obs: bool = True
    """Normalize observations with running statistics (exported with the policy)."""
    norm_reward: bool = False
    """Scale rewards by the running std of the discounted return."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the Gaussian policy (continuous actions)."""

    def __post_init__(self) -> None:
        require_positive(self, "num_envs", "num_steps", "num_minibatches", "update_epochs")
        require_number(self, "lr", "max_grad_norm", low=0.0, low_open=True)
        require_number(self, "gamma", "lam", low=0.0, high=1.0)
        require_number(self, "clip_coef", low=0.0, low_open=True)
        require_number(self, "ent_coef", "vf_coef", low=0.0)
        require_number(self, "target_kl", low=0.0, low_open=True, optional=True)
        require_number(self, "init_log_std")
        require_sizes(self, "hidden")
        batch = self.num_envs * self.num_steps
        if batch % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps = {batch} must be divisible by num_minibatches "
                f"= {self.num_minibatches}"
            )


def clipped_surrogate_loss(logp: Tensor, logp_old: Tensor, adv: Tensor, clip_coef: float) -> Tensor:
    """-L^CLIP: the negated clipped surrogate objective, averaged over the batch."""
    ratio = (logp - logp_old).exp()
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef) * adv
    return -torch.min(unclipped, clipped).mean()


def value_loss(
    value: Tensor, value_old: Tensor, returns: Tensor, clip_coef: float | None
) -> Tensor:
    """0.5 * (V - R)^2, optionally the pessimistic max with the clipped update (PPO2 style)."""
    loss = (value - returns).square()
    if clip_coef is not None:
        v_clipped = value_old + (value - value_old).clamp(-clip_coef, clip_coef)
        loss = torch.max(loss, (v_clipped - returns).square())
    return 0.5 * loss.mean()


def approx_kl(logp: Tensor, logp_old: Tensor) -> Tensor:
    """KL(pi_old || pi) estimator (r - 1) - log r, low variance and unbiased (Schulman 2020)."""
    log_ratio = logp - logp_old
    return (log_ratio.exp() - 1.0 - log_ratio).mean()


class PPO:
    """PPO agent: act, learn from a rollout, save/load, export."""

    def __init__(self, cfg: PPOConfig, info: EnvInfo, device: torch.device) -> None:
        self.cfg, self.info, self.device = cfg, info, device
        obs_dim, act_dim = info.obs_dim, info.act_dim
        self.net = ActorCritic(
            obs_dim, act_dim, discrete=info.discrete, hidden=cfg.hidden,
            activation=cfg.activation, init_log_std=cfg.init_log_std,
        ).to(device)
        # fused: one kernel per step for all parameters (the per-tensor loop PyTorch picks on
        # CPU otherwise costs more than the math for these small nets)
        self._params = list(self.net.parameters())
        self.opt = torch.optim.Adam(self._params, lr=cfg.lr, eps=1e-5, fused=True)
        self.reward_scaler = RewardScaler(cfg.num_envs, cfg.gamma).to(device)
        self.buffer = RolloutBuffer(cfg.num_steps, cfg.num_envs, obs_dim,
                                    () if info.discrete else (act_dim,),
                                    discrete=info.discrete, device=device)

    # -- acting ---------------------------------------------------------------------------------
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

    # -- learning -------------------------------------------------------------------------------
    def set_lr_fraction(self, frac: float) -> None:
        """Linear annealing: lr = frac * cfg.lr (with anneal_lr; else lr stays cfg.lr)."""
        if not self.cfg.anneal_lr:
            return
        for g in self.opt.param_groups:
            g["lr"] = frac * self.cfg.lr

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One gradient step on a minibatch; returns the loss terms (tensors, no host sync)."""
        cfg = self.cfg
        d = self.net.dist(batch["obs"])
        logp = d.log_prob(batch["actions"])
        adv = batch["advantages"]
        if cfg.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = clipped_surrogate_loss(logp, batch["logp"], adv, cfg.clip_coef)
        v_loss = value_loss(self.net.value(batch["obs"]), batch["values"], batch["returns"],
                            cfg.clip_coef if cfg.clip_vloss else None)
        entropy = d.entropy().mean()
        loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self._params, cfg.max_grad_norm, foreach=True)
        self.opt.step()
        with torch.no_grad():
            kl = approx_kl(logp, batch["logp"])
            clipfrac = ((logp - batch["logp"]).exp().sub(1.0).abs() > cfg.clip_coef).float().mean()
        return {"policy_loss": pg_loss.detach(), "value_loss": v_loss.detach(),
                "entropy": entropy.detach(), "approx_kl": kl, "clipfrac": clipfrac}

    def learn(self) -> dict[str, Tensor]:
        """update_epochs passes of minibatch updates over the filled rollout buffer."""
        b, cfg = self.buffer, self.cfg
        adv, returns = gae(b.rewards, b.values, b.next_values, b.terminated, b.ended,
                           gamma=cfg.gamma, lam=cfg.lam)
        terms: list[dict[str, Tensor]] = []
        for _ in range(cfg.update_epochs):
            for batch in b.minibatches(adv, returns, cfg.num_minibatches):
                terms.append(self.update(batch))
            # target_kl needs the value on the host: one sync per epoch, only when asked for.
            if cfg.target_kl is not None and float(terms[-1]["approx_kl"]) > cfg.target_kl:
                break
        out = {k: torch.stack([t[k] for t in terms]).mean() for k in terms[0]}
        var_y = returns.var()
        out["explained_variance"] = 1.0 - (returns - b.values).var() / var_y.clamp_min(1e-8)
        return out

    # -- state and export -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "reward_scaler": self.reward_scaler.state_dict(),
                "optim": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])
        self.opt.load_state_dict(state["optim"])

    def inference_module(self) -> nn.Module:
        """obs (robot units) -> deterministic action (robot units), on CPU, for export."""
        norm = self.net.obs_norm if self.cfg.norm_obs else _identity_norm(self.net.obs_norm)
        if self.info.discrete:
            return ArgmaxActionHead(norm, self.net.actor).cpu().eval()
        low = torch.tensor(self.info.action_low)
        high = torch.tensor(self.info.action_high)
        return ScaledActionHead(norm, self.net.actor, low, high).cpu().eval()


def _identity_norm(norm: RunningNorm) -> RunningNorm:
    """A normalizer with mean 0, var 1 - eps (exact identity up to the clip), for norm_obs=False."""
    ident = copy.deepcopy(norm)
    ident.mean.zero_()
    ident.var.fill_(1.0 - ident.eps)
    ident.clip = float("inf")
    return ident


def preset(env: str) -> PPOConfig:
    """Per-env defaults; tuned on this project's machine (see BENCHMARKS.md)."""
    if env == "cartpole":
        # RL-Zoo's CartPole-v1 settings with half the epochs, a doubled step size and two
        # minibatches: the same number of gradient steps per rollout solves in a median of
        # ~7k env steps instead of ~14k (10 seeds; BENCHMARKS.md).
        return PPOConfig(num_envs=8, num_steps=32, lr=2e-3, gamma=0.98, lam=0.8,
                         num_minibatches=2, update_epochs=10, ent_coef=0.0,
                         clip_vloss=False)
    if env == "pendulum":
        # RL-Zoo's tuned Pendulum settings: short GAE horizon, reward scaling, many epochs.
        return PPOConfig(num_envs=4, num_steps=256, lr=1e-3, gamma=0.9, lam=0.95,
                         update_epochs=10, num_minibatches=16, clip_coef=0.2, norm_reward=True,
                         init_log_std=-0.5, max_grad_norm=0.5)
    if env == "inverted-pendulum":
        return PPOConfig(num_envs=4, num_steps=256, lr=3e-4, update_epochs=10,
                         num_minibatches=8, norm_reward=True)
    return PPOConfig(num_envs=4, num_steps=512, lr=3e-4, update_epochs=10, num_minibatches=32,
                     norm_reward=True)


def default_steps(env: str) -> int:
    return {"cartpole": 100_000, "pendulum": 200_000}.get(env, 1_000_000)


ALGORITHMS = (
    Algorithm(
        name="ppo", config_cls=PPOConfig, preset=preset, make_agent=PPO, loop=train_on_policy,
        actions=("discrete", "continuous"), default_steps=default_steps,
        description="Proximal Policy Optimization (Schulman et al. 2017), on-policy.",
    ),
)
