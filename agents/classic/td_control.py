"""Tabular TD control: Q-learning and SARSA with epsilon-greedy exploration.

Q-learning: Watkins (1989), "Learning from Delayed Rewards", PhD thesis; Watkins & Dayan
(1992), Machine Learning 8. SARSA: Rummery & Niranjan (1994), "On-line Q-learning using
connectionist systems"; Sutton & Barto (2018), sections 6.4-6.5. CS285 (Levine, lecture 7:
value function methods; lecture 8 for the off-policy argument) gives fitted Q-iteration, of
which tabular Q-learning is the exact-table case. With step size alpha and termination d:

    Q-learning  y = r + gamma (1 - d) max_a' Q(s', a')          (off-policy: the greedy policy)
    SARSA       y = r + gamma (1 - d) Q(s', a'),  a' ~ pi_eps(s')  (on-policy: the one acted)
    Q(s, a) <- Q(s, a) + alpha (y - Q(s, a))
    pi_eps      epsilon-greedy in Q, epsilon linear from initial to final over exploration_steps

Both learn from env steps of a tabular env (one-hot observations; state = argmax(obs)); the
greedy policy of the table is what evaluation, values.json and the exported bundle use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from agents.classic.tabular import (
    TabularConfig,
    check_tabular,
    greedy,
    policy_module,
    states,
    values_record,
)
from agents.loops.tabular import train_tabular
from agents.model_free.dqn import epsilon
from agents.model_free.robot_presets import tuned_on
from agents.protocol import Algorithm
from agents.runs.config import require_number, require_positive
from sim.registry import EnvInfo


@dataclass(frozen=True)
class TDConfig(TabularConfig):
    """Tabular TD control hyperparameters (names as in Sutton & Barto 2018)."""

    alpha: float = 0.5
    """Step size of the TD update, in (0, 1]."""
    exploration_initial_eps: float = 1.0
    """epsilon at the start of training."""
    exploration_final_eps: float = 0.05
    """epsilon after exploration_steps env steps."""
    exploration_steps: int = 2_000
    """Env steps over which epsilon falls linearly."""
    q_init: float = 0.0
    """Initial value of every Q(s, a) (optimistic values explore)."""
    num_envs: int = 1
    """Training envs stepped together (their updates are applied as one batch)."""

    rule: ClassVar[str]
    """The TD target: "q-learning" (max over a') or "sarsa" (the a' taken)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_number(self, "alpha", low=0.0, high=1.0, low_open=True)
        require_number(self, "exploration_initial_eps", "exploration_final_eps", low=0.0,
                       high=1.0)
        require_number(self, "q_init")
        require_positive(self, "exploration_steps", "num_envs")


@dataclass(frozen=True)
class QLearningConfig(TDConfig):
    """Q-learning: the target maximizes over the next action (off-policy)."""

    rule: ClassVar[str] = "q-learning"


@dataclass(frozen=True)
class SARSAConfig(TDConfig):
    """SARSA: the target uses the next action the behaviour policy takes (on-policy)."""

    rule: ClassVar[str] = "sarsa"


# -- pure functions ------------------------------------------------------------------------------
def q_learning_target(rewards: Tensor, terminated: Tensor, gamma: float, next_q: Tensor
                      ) -> Tensor:
    """y = r + gamma (1 - d) max_a' Q(s', a'); next_q is Q(s', .) [B, A]."""
    return rewards + gamma * (~terminated).to(next_q.dtype) * next_q.max(-1).values


def sarsa_target(rewards: Tensor, terminated: Tensor, gamma: float, next_q: Tensor,
                 next_actions: Tensor) -> Tensor:
    """y = r + gamma (1 - d) Q(s', a') for the next actions a' taken [B]."""
    q_next = next_q.gather(-1, next_actions[:, None]).squeeze(-1)
    return rewards + gamma * (~terminated).to(next_q.dtype) * q_next


def td_step(Q: Tensor, s: Tensor, a: Tensor, y: Tensor, alpha: float) -> Tensor:
    """Q(s, a) += alpha (y - Q(s, a)) in place for a batch (a repeated pair gets each step's
    increment, all computed from the table before the batch); returns the TD errors [B]."""
    delta = y - Q[s, a]
    Q.index_put_((s, a), alpha * delta, accumulate=True)
    return delta


# -- agent ---------------------------------------------------------------------------------------
class TDControl:
    """A Q table learned from env steps by Q-learning or SARSA (cfg.rule)."""

    def __init__(self, cfg: TDConfig, info: EnvInfo, device: torch.device) -> None:
        if not info.discrete:
            raise ValueError(f"{cfg.rule} needs discrete actions")
        self.cfg, self.info, self.device = cfg, info, device
        S, A = info.obs_dim, info.act_dim  # one-hot observations: one dimension per state
        self.Q = torch.full((S, A), cfg.q_init, dtype=torch.float64, device=device)
        self.updates = 0

    @property
    def converged(self) -> bool:
        return False  # TD control runs for its budget (or until the target return)

    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """Greedy actions argmax_a Q(s, a) [B] (exploration is `explore`'s business)."""
        return greedy(self.Q[states(obs, self.device)])

    @torch.no_grad()
    def explore(self, obs: Tensor, step: int) -> Tensor:
        """epsilon-greedy at env step `step`, ties among the best actions broken at random;
        draws the same random numbers whatever epsilon is (resume stays exact)."""
        cfg = self.cfg
        eps = epsilon(step, cfg.exploration_initial_eps, cfg.exploration_final_eps,
                      cfg.exploration_steps)
        q = self.Q[states(obs, self.device)]  # [B, A]
        tie = torch.rand(q.shape, device=self.device)
        best = torch.where(q == q.max(-1, keepdim=True).values, tie, -1.0).argmax(-1)
        random = torch.randint(q.shape[-1], best.shape, device=self.device)
        return torch.where(torch.rand(best.shape, device=self.device) < eps, random, best)

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One TD update of Q(s, a) for each transition of the batch."""
        cfg, dev = self.cfg, self.device
        s, s2 = states(batch["obs"], dev), states(batch["next_obs"], dev)
        a = batch["actions"].to(dev, torch.int64)
        r = batch["rewards"].to(dev, torch.float64)
        done = batch["terminated"].to(dev, torch.bool)
        next_q = self.Q[s2]
        if cfg.rule == "sarsa":
            y = sarsa_target(r, done, cfg.gamma, next_q, batch["next_actions"].to(dev, torch.int64))
        else:
            y = q_learning_target(r, done, cfg.gamma, next_q)
        delta = td_step(self.Q, s, a, y, cfg.alpha)
        self.updates += 1
        return {"td_error": delta.abs().mean(), "q": self.Q[s, a].mean()}

    def state_dict(self) -> dict:
        return {"Q": self.Q, "updates": self.updates, "optim": {}}

    def load_state_dict(self, state: dict) -> None:
        self.Q.copy_(state["Q"])
        self.updates = int(state["updates"])

    def values(self) -> dict:
        V = self.Q.max(-1).values
        return values_record(self.Q, V, greedy(self.Q), self.cfg.gamma, rule=self.cfg.rule,
                             alpha=self.cfg.alpha, updates=self.updates)

    def inference_module(self) -> nn.Module:
        return policy_module(greedy(self.Q), self.info.act_dim)


_STEPS = {"gridworld-4x4": 5_000, "gridworld-slippery": 100_000, "frozenlake": 100_000,
          "frozenlake-8x8": 300_000, "cliffwalking": 20_000, "taxi": 100_000}


def default_steps(env: str) -> int:
    return _STEPS.get(env, 100_000)


def preset_q(env: str) -> QLearningConfig:
    return QLearningConfig(**_PRESETS.get(env, {}))


def preset_sarsa(env: str) -> SARSAConfig:
    return SARSAConfig(**_PRESETS.get(env, {}) | _SARSA_PRESETS.get(env, {}))


_PRESETS: dict[str, dict[str, Any]] = {
    # gamma 0.99 leaves a move 1% better than bumping into a wall, which constant-alpha TD
    # mistakes for each other for thousands of steps; 0.9 separates them (same optimal policy)
    "gridworld-4x4": {"gamma": 0.9},
    # slippery worlds: small steps average the slips out; long exploration finds the goal
    "gridworld-slippery": {"alpha": 0.1, "exploration_steps": 50_000},
    "frozenlake": {"alpha": 0.05, "exploration_steps": 50_000},
    "frozenlake-8x8": {"alpha": 0.05, "exploration_steps": 200_000},
    "taxi": {"alpha": 0.5, "exploration_steps": 50_000},
}


_SARSA_PRESETS: dict[str, dict[str, Any]] = {
    # on-policy values of moving near hazards are negative until the goal is found, so a
    # zero-initialized SARSA learns to stay put (greedy value 0.0, 2 seeds at 100k steps);
    # optimistic values keep it moving (0.44 and 0.17 of V* = 0.67; Q-learning: 0.66, 0.67)
    "gridworld-slippery": {"q_init": 1.0},
}


ALGORITHMS = (
    Algorithm(
        name="q-learning", config_cls=QLearningConfig, preset=preset_q, make_agent=TDControl,
        loop=train_tabular, actions=("discrete",), default_steps=default_steps,
        tabular=True, check=lambda cfg, env: check_tabular("q-learning", env),
        preset_source=tuned_on("measured here (agents/classic/td_control.py)", *_PRESETS),
        description="Tabular Q-learning with epsilon-greedy exploration (Watkins 1989).",
    ),
    Algorithm(
        name="sarsa", config_cls=SARSAConfig, preset=preset_sarsa, make_agent=TDControl,
        loop=train_tabular, actions=("discrete",), default_steps=default_steps,
        tabular=True, check=lambda cfg, env: check_tabular("sarsa", env),
        preset_source=tuned_on("measured here (agents/classic/td_control.py)", *_PRESETS),
        description="Tabular SARSA with epsilon-greedy exploration (Rummery & Niranjan 1994).",
    ),
)
