"""Soft Q-learning for discrete actions: a soft Bellman backup and a Boltzmann policy.

Haarnoja, Tang, Abbeel, Levine (2017), "Reinforcement Learning with Deep Energy-Based
Policies", arXiv:1702.08165, in its discrete form, where the soft value's integral over actions
is a sum and the energy-based policy a softmax; CS285 (Levine, lecture 19: control as inference,
soft Q-learning) gives the algorithm. With a target network Q_phi' as in DQN:

    V'(s')     = alpha log sum_a' exp(Q_phi'(s', a') / alpha)           soft maximum
    y          = sum_{k<n} gamma^k r_{t+k} + gamma^n (1 - d) V'(s_{t+n})
    L          = Huber(Q_phi(s, a) - y)                                 (as DQN)
    pi(a|s)    = exp((Q_phi(s, a) - V(s)) / alpha) = softmax(Q_phi(s, .) / alpha)

alpha is the temperature: the maximum-entropy objective sum_t E[r_t + alpha H(pi(.|s_t))]. As
alpha -> 0 the soft maximum becomes max_a' Q_phi'(s', a') and the backup DQN's. Exploration
samples the Boltzmann policy pi; `act(deterministic=True)` and the exported bundle are greedy,
argmax_a Q_phi(s, a), the mode of pi. The networks, replay (prioritized too), loss and target
updates are DQN's (agents/model_free/dqn.py).

n_step > 1 sums the observed rewards without the entropy bonuses of the intermediate states,
an uncorrected multi-step return (as DQN's); the paper's backup is n_step = 1, the default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from agents.loops.off_policy import train_off_policy
from agents.model_free.dqn import QLearner
from agents.model_free.off_policy import OffPolicyConfig, adam, new_replay
from agents.model_free.robot_presets import tuned_on
from agents.protocol import Algorithm
from agents.runs.config import require_number, require_positive, require_sizes
from models.critics import QNetwork
from sim.registry import EnvInfo


@dataclass(frozen=True)
class SoftQConfig(OffPolicyConfig):
    """Soft Q-learning hyperparameters (names as in the paper and DQN's config)."""

    buffer_size: int = 100_000
    """Replay capacity in transitions (preallocated on the training device)."""
    batch_size: int = 64
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Env steps of uniformly random actions before the first update."""
    train_freq: int = 4
    """Vector-env steps between rounds of updates."""
    lr: float = 1e-4
    """Adam learning rate."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the Q-network."""
    activation: str = "relu"
    """Hidden activation: relu, tanh, elu or silu."""
    alpha: float = 0.05
    """Temperature: the weight of the policy's entropy in the objective (> 0)."""
    n_step: int = 1
    """Steps of observed reward before bootstrapping (1: the paper's soft backup)."""
    tau: float = 1.0
    """Weight of the online net in the target update (1: hard copy, as in DQN)."""
    target_update_interval: int = 1_000
    """Gradient steps between target updates."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "n_step", "target_update_interval")
        require_number(self, "lr", "max_grad_norm", "alpha", low=0.0, low_open=True)
        require_number(self, "tau", low=0.0, high=1.0, low_open=True)
        require_sizes(self, "hidden", allow_empty=True)


def soft_value(q: Tensor, alpha: float) -> Tensor:
    """V(s) = alpha log sum_a exp(Q(s, a) / alpha) for q [B, A] -> [B] (a stable logsumexp)."""
    return alpha * torch.logsumexp(q / alpha, dim=-1)


def soft_q_target(
    rewards: Tensor, terminated: Tensor, discount: Tensor, next_q_target: Tensor, alpha: float,
) -> Tensor:
    """y = R + discount (1 - d) V'(s'), V' the soft value of the target net's Q'(s', .) [B, A]."""
    return rewards + discount * (~terminated).to(rewards.dtype) * soft_value(next_q_target, alpha)


def boltzmann_policy(q: Tensor, alpha: float) -> Tensor:
    """pi(.|s) = softmax(Q(s, .) / alpha) [B, A]: the energy-based policy of the soft Q."""
    return torch.softmax(q / alpha, dim=-1)


def policy_entropy(q: Tensor, alpha: float) -> Tensor:
    """Mean entropy H(pi(.|s)) of the Boltzmann policy over a batch of Q(s, .) [B, A]."""
    logp = torch.log_softmax(q / alpha, dim=-1)
    return -(logp.exp() * logp).sum(-1).mean()


class SoftQ(QLearner):
    """Soft Q-learning agent: explore with pi = softmax(Q / alpha), learn the soft backup from
    replay, save/load, export the greedy policy."""

    def __init__(self, cfg: SoftQConfig, info: EnvInfo, device: torch.device) -> None:
        if not info.discrete:
            raise ValueError("soft Q-learning (soft-q) needs discrete actions")
        self.cfg, self.info, self.device = cfg, info, device
        self.q_net = QNetwork(info.obs_dim, info.act_dim, hidden=cfg.hidden,
                              activation=cfg.activation).to(device)
        self.q_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.opt = adam(self.q_net.parameters(), cfg.lr)
        self.replay = new_replay(cfg, info, device, n_step=cfg.n_step)
        self.updates = 0
        self._targets: list[Tensor] = list(self.q_target.parameters())
        self._online: list[Tensor] = list(self.q_net.parameters())

    # -- acting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """Actions [B]: a ~ pi(.|s) = softmax(Q(s, .) / alpha), or argmax_a Q(s, a) when
        deterministic."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        q = self.q_net(obs)
        if deterministic:
            return q.argmax(-1)
        return torch.multinomial(boltzmann_policy(q, self.cfg.alpha), 1).squeeze(-1)

    def explore(self, obs: Tensor, step: int) -> Tensor:
        """A sample of the Boltzmann policy: soft Q-learning explores through pi itself."""
        return self.act(obs)

    # -- learning -------------------------------------------------------------------------------
    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One gradient step on the Huber loss to the soft target; every
        target_update_interval, the target net."""
        cfg = self.cfg
        with torch.no_grad():
            y = soft_q_target(batch["rewards"], batch["terminated"], batch["discount"],
                              self.q_target(batch["next_obs"]), cfg.alpha)
        q = self.q_net(batch["obs"])  # [B, A]
        q_sa = q.gather(-1, batch["actions"][:, None]).squeeze(-1)
        out = self.td_step(q_sa, y, batch)
        out["entropy"] = policy_entropy(q.detach(), cfg.alpha)
        return out


def preset(env: str) -> SoftQConfig:
    """Per-env defaults."""
    if env == "cartpole":
        # DQN's cart-pole preset (agents/model_free/dqn.py), 3-step returns included, with the
        # Boltzmann policy in place of epsilon-greedy. Env steps to 475, seeds 0, 1, 2: 3-step
        # at alpha 0.05: 5,120, 24,576, 15,360 (median 15,360); at alpha 0.1: 4,096, 22,528,
        # 17,408; the 1-step soft backup at alpha 0.05: 28,672, 25,600, 28,672.
        return SoftQConfig(lr=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
                           gamma=0.99, target_update_interval=128, train_freq=256,
                           gradient_steps=128, hidden=(128, 128), alpha=0.05, n_step=3)
    return SoftQConfig()


def default_steps(env: str) -> int:
    return {"cartpole": 50_000}.get(env, 1_000_000)


ALGORITHMS = (
    Algorithm(
        name="soft-q", config_cls=SoftQConfig, preset=preset, make_agent=SoftQ,
        loop=train_off_policy, actions=("discrete",), default_steps=default_steps,
        preset_source=tuned_on("DQN's cart-pole preset, measured here", "cartpole"),
        description="Soft Q-learning (Haarnoja et al. 2017), discrete: soft Bellman backup, "
                    "Boltzmann policy at temperature alpha.",
    ),
)
