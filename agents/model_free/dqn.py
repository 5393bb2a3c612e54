"""Deep Q-Network with double Q-learning, n-step returns and an optional dueling head.

Mnih et al. (2015), "Human-level control through deep reinforcement learning", Nature 518;
double DQN: van Hasselt, Guez, Silver (2016), arXiv:1509.06461; dueling: Wang et al. (2016),
arXiv:1511.06581; n-step returns as in Rainbow, Hessel et al. (2018), arXiv:1710.02298. CS285
(Levine, lecture 8: deep RL with Q-functions) gives the algorithm and its tips (double Q,
multi-step returns, Huber loss, exploration schedule). Prioritized replay (`prioritized`):
Schaul, Quan, Antonoglou, Silver (2016), arXiv:1511.05952.

    a*  = argmax_a Q_phi(s_{t+n}, a)                                    (double: online net picks)
    y   = sum_{k<n} gamma^k r_{t+k} + gamma^n (1 - d) Q_phi'(s_{t+n}, a*)  (target net scores)
    L   = Huber(Q_phi(s_t, a_t) - y)        (prioritized replay: mean of w_i Huber_i)
    pi  = epsilon-greedy, epsilon linear from initial to final over exploration_steps
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.loops.off_policy import TD_ERROR, train_off_policy
from agents.model_free.off_policy import OffPolicyConfig, adam, new_replay, polyak_update
from agents.model_free.robot_presets import tuned_on
from agents.protocol import Algorithm
from agents.runs.config import require_number, require_positive, require_sizes
from models.critics import QNetwork
from models.export_heads import ArgmaxActionHead
from sim.registry import EnvInfo


@dataclass(frozen=True)
class DQNConfig(OffPolicyConfig):
    """DQN hyperparameters (names as in the papers and Stable-Baselines3)."""

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
    double: bool = True
    """Double DQN: the online net picks the next action, the target net scores it."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A)."""
    n_step: int = 1
    """Steps of observed reward before bootstrapping (n-step returns)."""
    tau: float = 1.0
    """Weight of the online net in the target update (1: hard copy, as in DQN)."""
    target_update_interval: int = 1_000
    """Gradient steps between target updates."""
    exploration_initial_eps: float = 1.0
    """epsilon at the start of training."""
    exploration_final_eps: float = 0.05
    """epsilon after exploration_steps env steps."""
    exploration_steps: int = 10_000
    """Env steps over which epsilon falls linearly."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "n_step", "target_update_interval", "exploration_steps")
        require_number(self, "lr", "max_grad_norm", low=0.0, low_open=True)
        require_number(self, "tau", low=0.0, high=1.0, low_open=True)
        require_number(self, "exploration_initial_eps", "exploration_final_eps", low=0.0,
                       high=1.0)
        require_sizes(self, "hidden", allow_empty=not self.dueling)


def epsilon(step: int, initial: float, final: float, steps: int) -> float:
    """Linear schedule: initial at step 0, final from `steps` on."""
    return initial + (final - initial) * min(1.0, step / steps)


def q_target(
    rewards: Tensor, terminated: Tensor, discount: Tensor, next_q_target: Tensor,
    next_q_online: Tensor | None,
) -> Tensor:
    """y = R + discount (1 - d) Q'(s', a*); a* = argmax of the online net (double DQN) or of
    the target net itself (DQN) when next_q_online is None. next_q_* are [B, A]."""
    picker = next_q_target if next_q_online is None else next_q_online
    a_star = picker.argmax(-1, keepdim=True)
    bootstrap = next_q_target.gather(-1, a_star).squeeze(-1)
    return rewards + discount * (~terminated).to(rewards.dtype) * bootstrap


def td_loss(q_sa: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
    """Huber loss (delta 1) between Q(s, a) and the target, as in DQN's clipped error; with
    prioritized replay, mean_B(w_i Huber_i) for the importance weights w [B]."""
    if weights is None:
        return F.smooth_l1_loss(q_sa, y)
    return (weights * F.smooth_l1_loss(q_sa, y, reduction="none")).mean()


class QLearner:
    """What DQN and soft Q-learning share: the gradient step of Q(s, a) toward a target y with
    the target network's update, and the state and export of a Q-network (the greedy policy).
    An agent using it has cfg (max_grad_norm, target_update_interval, tau), q_net, q_target,
    opt, updates, _online and _targets."""

    cfg: Any
    q_net: QNetwork
    q_target: QNetwork
    opt: torch.optim.Optimizer
    updates: int
    _online: list[Tensor]
    _targets: list[Tensor]

    def td_step(self, q_sa: Tensor, y: Tensor, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One gradient step on the Huber loss of Q(s, a) [B] to y [B] (importance-weighted
        under prioritized replay); every target_update_interval steps, the target net."""
        cfg = self.cfg
        loss = td_loss(q_sa, y, batch.get("weights"))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self._online, cfg.max_grad_norm, foreach=True)
        self.opt.step()
        self.updates += 1
        if self.updates % cfg.target_update_interval == 0:
            polyak_update(self._targets, self._online, cfg.tau)
        out = {"loss": loss.detach(), "q": q_sa.detach().mean()}
        if "weights" in batch:  # prioritized replay: the new priorities
            out[TD_ERROR] = (q_sa.detach() - y).abs()
        return out

    def state_dict(self) -> dict:
        return {"q_net": self.q_net.state_dict(), "q_target": self.q_target.state_dict(),
                "updates": self.updates, "optim": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.q_net.load_state_dict(state["q_net"])
        self.q_target.load_state_dict(state["q_target"])
        self.updates = int(state["updates"])
        self.opt.load_state_dict(state["optim"])

    def inference_module(self) -> nn.Module:
        """obs -> greedy action index argmax_a Q(s, a) as float [B, 1], on CPU, for export."""
        return ArgmaxActionHead(None, self.q_net).cpu().eval()


class DQN(QLearner):
    """DQN agent: act epsilon-greedily, learn from replay batches, save/load, export."""

    def __init__(self, cfg: DQNConfig, info: EnvInfo, device: torch.device) -> None:
        if not info.discrete:
            raise ValueError("DQN needs discrete actions")
        self.cfg, self.info, self.device = cfg, info, device
        self.n_actions = info.act_dim
        self.q_net = QNetwork(info.obs_dim, self.n_actions, hidden=cfg.hidden,
                              activation=cfg.activation, dueling=cfg.dueling).to(device)
        self.q_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.opt = adam(self.q_net.parameters(), cfg.lr)
        self.replay = new_replay(cfg, info, device, n_step=cfg.n_step)
        self.updates = 0
        self._targets: list[Tensor] = list(self.q_target.parameters())
        self._online: list[Tensor] = list(self.q_net.parameters())

    # -- acting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """Greedy actions argmax_a Q(s, a) [B] (exploration is `explore`'s business)."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        return self.q_net(obs).argmax(-1)

    @torch.no_grad()
    def explore(self, obs: Tensor, step: int) -> Tensor:
        """epsilon-greedy at env step `step`; draws the same random numbers whatever epsilon is."""
        cfg = self.cfg
        eps = epsilon(step, cfg.exploration_initial_eps, cfg.exploration_final_eps,
                      cfg.exploration_steps)
        greedy = self.act(obs)
        random = torch.randint(self.n_actions, greedy.shape, device=self.device)
        explore = torch.rand(greedy.shape, device=self.device) < eps
        return torch.where(explore, random, greedy)

    # -- learning -------------------------------------------------------------------------------
    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One gradient step on the Huber TD loss; every target_update_interval, the target."""
        cfg = self.cfg
        with torch.no_grad():
            next_obs = batch["next_obs"]
            y = q_target(batch["rewards"], batch["terminated"], batch["discount"],
                         self.q_target(next_obs), self.q_net(next_obs) if cfg.double else None)
        q_sa = self.q_net(batch["obs"]).gather(-1, batch["actions"][:, None]).squeeze(-1)
        return self.td_step(q_sa, y, batch)


def preset(env: str) -> DQNConfig:
    """Per-env defaults; see BENCHMARKS.md for how they compare with Stable-Baselines3."""
    if env == "cartpole":
        # RL-Zoo's CartPole-v1 settings (the target is refreshed before every round of 128
        # updates, as the Zoo's 10-env-step interval does), with 3-step returns and 128x128
        # instead of 256x256: about half the env steps and a quarter of the compute.
        return DQNConfig(lr=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
                         gamma=0.99, target_update_interval=128, train_freq=256,
                         gradient_steps=128, exploration_steps=8_000, exploration_final_eps=0.04,
                         hidden=(128, 128), n_step=3)
    return DQNConfig()


def default_steps(env: str) -> int:
    return {"cartpole": 50_000}.get(env, 1_000_000)


ALGORITHMS = (
    Algorithm(
        name="dqn", config_cls=DQNConfig, preset=preset, make_agent=DQN, loop=train_off_policy,
        actions=("discrete",), default_steps=default_steps,
        preset_source=tuned_on("RL-Zoo dqn.yml CartPole-v1, retuned here (BENCHMARKS.md)",
                               "cartpole"),
        description="Double DQN (Mnih et al. 2015; van Hasselt et al. 2016), n-step, dueling.",
    ),
)
