"""Tabular Dyna-Q: Q-learning on real steps plus planning updates from a learned model.

Sutton (1990), "Integrated Architectures for Learning, Planning, and Reacting Based on
Approximating Dynamic Programming", ICML; Sutton & Barto (2018), section 8.2, "Tabular Dyna-Q"
(CS285, Levine, lecture 11: Dyna as the model-based acceleration of model-free RL). Each real
step (s, a, r, s', d):

    (d) direct RL    Q(s, a) <- Q(s, a) + alpha (r + gamma (1 - d) max_a' Q(s', a') - Q(s, a))
    (e) model        Model(s, a) <- (r, s', d)
    (f) planning     n times: s ~ U(states seen), a ~ U(actions taken in s),
                     (r, s', d) ~ Model(s, a), and the update of (d) on it

(d) is agents/classic/td_control.py's Q-learning, unchanged. The book's model keeps the last
outcome of (s, a), which suits deterministic worlds; ours keeps the counts N(s, a, s') with the
mean reward and the termination of each outcome, and samples s' ~ N(s, a, .) / N(s, a): the
maximum-likelihood model, the same as the book's on a deterministic world, and unbiased on a
stochastic one (gridworld-slippery). The n planning pairs are drawn together (the model does not
change during planning), their updates applied one after another as in the book.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from agents.classic.tabular import check_tabular, states
from agents.classic.td_control import (
    QLearningConfig,
    TDControl,
    default_steps,
    q_learning_target,
    td_step,
)
from agents.classic.td_control import preset_q as q_preset
from agents.loops.tabular import train_tabular
from agents.protocol import Algorithm
from agents.runs.config import require
from sim.registry import EnvInfo


@dataclass(frozen=True)
class DynaQConfig(QLearningConfig):
    """Q-learning's settings and the number of planning updates per real step."""

    planning_steps: int = 10
    """n, planning updates from the model after every real step (0: Q-learning)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        v = self.planning_steps
        require(isinstance(v, int) and not isinstance(v, bool) and v >= 0, "planning_steps", v,
                "an integer >= 0")


class TabularModel:
    """The learned model of the visited pairs: N(s, a, s'), the summed rewards of each outcome
    and whether it terminated (the last one seen), as [S, A, S'] tables."""

    def __init__(self, n_states: int, n_actions: int, device: torch.device) -> None:
        shape = (n_states, n_actions, n_states)
        self.N = torch.zeros(shape, dtype=torch.float64, device=device)
        self.R = torch.zeros(shape, dtype=torch.float64, device=device)
        self.D = torch.zeros(shape, dtype=torch.bool, device=device)
        self.seen = torch.zeros(shape[:2], dtype=torch.bool, device=device)
        """[S, A]: the pair has been taken."""

    def record(self, s: Tensor, a: Tensor, r: Tensor, s2: Tensor, done: Tensor) -> None:
        """Add the real transitions (s, a, r, s', d) [B] to the counts."""
        self.N.index_put_((s, a, s2), torch.ones_like(r), accumulate=True)
        self.R.index_put_((s, a, s2), r, accumulate=True)
        self.D[s, a, s2] = done
        self.seen[s, a] = True

    def sample(self, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """n simulated transitions (s, a, r, s', d): s uniform over the states seen, a uniform
        over the actions taken there, s' ~ N(s, a, .) / N(s, a) and its mean reward; drawn
        from torch's global generator (checkpointed)."""
        s = torch.multinomial(self.seen.any(-1).double(), n, replacement=True)
        a = torch.multinomial(self.seen[s].double(), 1).squeeze(-1)
        s2 = torch.multinomial(self.N[s, a], 1).squeeze(-1)
        return s, a, self.R[s, a, s2] / self.N[s, a, s2], s2, self.D[s, a, s2]

    def state_dict(self) -> dict[str, Tensor]:
        return {"N": self.N, "R": self.R, "D": self.D, "seen": self.seen}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for k, v in self.state_dict().items():
            v.copy_(state[k])


class DynaQ(TDControl):
    """Q-learning (TDControl with the max target) with a tabular model and n planning updates."""

    cfg: DynaQConfig

    def __init__(self, cfg: DynaQConfig, info: EnvInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        self.model = TabularModel(info.obs_dim, info.act_dim, device)
        self.planning_updates = 0

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Steps (d), (e) and (f) of Tabular Dyna-Q for the real transitions of `batch`."""
        terms = super().update(batch)  # (d): Q-learning on the real step
        dev = self.device
        self.model.record(states(batch["obs"], dev), batch["actions"].to(dev, torch.int64),
                          batch["rewards"].to(dev, torch.float64),
                          states(batch["next_obs"], dev), batch["terminated"].to(dev, torch.bool))
        if self.cfg.planning_steps > 0:
            terms["planning_td_error"] = self.plan(self.cfg.planning_steps)
        return terms

    def plan(self, n: int) -> Tensor:
        """(f): n Q-learning updates on transitions simulated by the model, one after another
        (each sees the table the previous one left); the mean |TD error|."""
        gamma, alpha = self.cfg.gamma, self.cfg.alpha
        s, a, r, s2, done = self.model.sample(n)
        deltas = []
        for i in range(n):
            j = slice(i, i + 1)
            y = q_learning_target(r[j], done[j], gamma, self.Q[s2[j]])
            deltas.append(td_step(self.Q, s[j], a[j], y, alpha))
        self.planning_updates += n
        return torch.cat(deltas).abs().mean()

    def state_dict(self) -> dict:
        return super().state_dict() | {"model": self.model.state_dict(),
                                       "planning_updates": self.planning_updates}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.planning_updates = int(state["planning_updates"])

    def values(self) -> dict:
        return super().values() | {"rule": "dyna-q", "planning_steps": self.cfg.planning_steps,
                                   "planning_updates": self.planning_updates,
                                   "model_pairs": int(self.model.seen.sum())}


def preset(env: str) -> DynaQConfig:
    """Q-learning's preset for the env, with n = 10 planning steps."""
    return DynaQConfig(**vars(q_preset(env)))


ALGORITHMS = (
    Algorithm(
        name="dyna-q", config_cls=DynaQConfig, preset=preset, make_agent=DynaQ,
        loop=train_tabular, actions=("discrete",), default_steps=default_steps,
        tabular=True, check=lambda cfg, env: check_tabular("dyna-q", env),
        description="Tabular Dyna-Q (Sutton 1990): Q-learning plus planning updates from a "
                    "learned model.",
    ),
)
