"""Dynamic programming on a known tabular MDP: policy evaluation, policy iteration, value iteration.

Bellman (1957), "Dynamic Programming"; Howard (1960), "Dynamic Programming and Markov
Processes" (policy iteration); Sutton & Barto (2018), "Reinforcement Learning: An Introduction",
ch. 4; CS285 (Levine, lecture 7: value function methods) derives policy and value iteration
from the Bellman backup. With a terminal mask d(s') (the value of a terminal state is 0):

    Q(s, a)   = R(s, a) + gamma sum_s' P(s'|s, a) (1 - d(s')) V(s')        (Bellman backup)
    V^pi      = (I - gamma P_pi (1 - d))^-1 R_pi                             (exact evaluation)
    V_{k+1}(s) = max_a Q_k(s, a)                                             (value iteration)
    stop when gamma / (1 - gamma) ||V_{k+1} - V_k||_inf <= tol, which bounds ||V_{k+1} - V*||_inf
    (Puterman 1994, Theorem 6.3.1; Williams & Baird 1993), so V is within tol of V*.

Both agents learn from the model, not from env steps: the loop counts one sweep of value
iteration (one improvement step of policy iteration) as a step, and stops at convergence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from agents.classic.tabular import (
    Model,
    TabularConfig,
    check_tabular,
    greedy,
    policy_module,
    states,
    values_record,
)
from agents.loops.tabular import train_tabular
from agents.protocol import Algorithm
from agents.runs.config import require, require_number, require_positive
from sim import tabular
from sim.registry import EnvInfo

EVALUATIONS = ("exact", "iterative")


# -- the Bellman operators (pure functions of the model) -----------------------------------------
def backup(V: Tensor, m: Model, gamma: float) -> Tensor:
    """Q(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) (1 - d(s')) V(s')  [S, A]."""
    return m.R + gamma * m.P @ (m.live * V)


def policy_matrices(pi: Tensor, m: Model) -> tuple[Tensor, Tensor]:
    """(P_pi [S, S'], R_pi [S]) of a stochastic policy pi [S, A] (rows sum to 1)."""
    return torch.einsum("sa,sat->st", pi, m.P), (pi * m.R).sum(-1)


def policy_evaluation_exact(pi: Tensor, m: Model, gamma: float) -> Tensor:
    """V^pi by the linear solve (I - gamma P_pi diag(1 - d)) V = R_pi  [S]."""
    P_pi, R_pi = policy_matrices(pi, m)
    eye = torch.eye(len(R_pi), dtype=R_pi.dtype, device=R_pi.device)
    return torch.linalg.solve(eye - gamma * P_pi * m.live[None, :], R_pi)


def policy_evaluation(pi: Tensor, m: Model, gamma: float, tol: float, max_sweeps: int = 100_000
                      ) -> tuple[Tensor, int]:
    """(V^pi within tol in the sup norm, sweeps) by iterating V <- R_pi + gamma P_pi (1-d) V.

    The same contraction bound as value iteration's: stop when gamma/(1-gamma) |dV| <= tol.
    """
    P_pi, R_pi = policy_matrices(pi, m)
    V = torch.zeros_like(R_pi)
    for sweep in range(1, max_sweeps + 1):
        V_new = R_pi + gamma * P_pi @ (m.live * V)
        delta = float((V_new - V).abs().max())
        V = V_new
        if error_bound(delta, gamma) <= tol:
            return V, sweep
    raise RuntimeError(f"policy evaluation did not reach tolerance {tol} in {max_sweeps} sweeps")


def error_bound(delta: float, gamma: float) -> float:
    """||V_{k+1} - V*||_inf <= gamma / (1 - gamma) ||V_{k+1} - V_k||_inf (a gamma-contraction)."""
    return gamma / (1.0 - gamma) * delta


def value_iteration(m: Model, gamma: float, tol: float, max_sweeps: int = 1_000_000
                    ) -> tuple[Tensor, Tensor, int]:
    """(V within tol of V*, Q = backup(V), sweeps): value iteration from V = 0 to the bound
    (the agent below runs the same sweeps one loop iteration at a time)."""
    V = torch.zeros_like(m.live)
    for sweep in range(1, max_sweeps + 1):
        Q = backup(V, m, gamma)
        V_new = Q.max(-1).values
        delta = float((V_new - V).abs().max())
        V = V_new
        if error_bound(delta, gamma) <= tol:
            return V, Q, sweep
    raise RuntimeError(f"value iteration did not reach tolerance {tol} in {max_sweeps} sweeps")


def one_hot_policy(policy: Tensor, n_actions: int) -> Tensor:
    """The deterministic policy pi(s) [S] as probabilities [S, A]."""
    return torch.nn.functional.one_hot(policy, n_actions).to(torch.float64)


def improve(Q: Tensor, policy: Tensor) -> Tensor:
    """Greedy improvement that keeps pi(s) where it is already among the best actions, so
    policy iteration stops instead of cycling between equally good policies."""
    best = Q.max(-1).values
    current = Q.gather(-1, policy[:, None]).squeeze(-1)
    keep = current >= best - 1e-12 * (1.0 + best.abs())
    return torch.where(keep, policy, greedy(Q))


# -- configs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValueIterationConfig(TabularConfig):
    """Value iteration; one step of the budget is one sweep over all states."""

    tol: float = 1e-6
    """Stop when the bound on ||V - V*||_inf is at most tol."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_number(self, "tol", low=0.0, low_open=True)


@dataclass(frozen=True)
class PolicyIterationConfig(TabularConfig):
    """Policy iteration; one step of the budget is one evaluation plus one improvement."""

    evaluation: str = "exact"
    """Policy evaluation: exact (a linear solve) or iterative (sweeps to eval_tol)."""
    eval_tol: float = 1e-10
    """Tolerance of iterative evaluation (sup norm)."""
    max_eval_sweeps: int = 100_000
    """Sweeps allowed to one iterative evaluation."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.evaluation in EVALUATIONS, "evaluation", self.evaluation,
                f"one of {', '.join(EVALUATIONS)}")
        require_number(self, "eval_tol", low=0.0, low_open=True)
        require_positive(self, "max_eval_sweeps")


# -- agents --------------------------------------------------------------------------------------
class _Planner:
    """What both DP agents do with their table: act greedily, save it, export it."""

    def __init__(self, cfg: TabularConfig, info: EnvInfo, device: torch.device,
                 mdp: tabular.TabularMDP | None = None) -> None:
        """The model is the registered env's (`mdp` gives another, e.g. a hand-made one)."""
        self.cfg, self.info, self.device = cfg, info, device
        self.mdp = tabular.mdp(info.name) if mdp is None else mdp
        self.model = Model.of(self.mdp, device)
        S, A = self.mdp.n_states, self.mdp.n_actions
        self.V = torch.zeros(S, dtype=torch.float64, device=device)
        self.Q = torch.zeros(S, A, dtype=torch.float64, device=device)
        self.policy = torch.zeros(S, dtype=torch.int64, device=device)
        self.sweeps = 0
        """Bellman backups over all states so far (evaluation sweeps included)."""
        self.done = False

    @property
    def converged(self) -> bool:
        return self.done

    @property
    def stopped(self) -> bool:
        """Training ended before the budget: the stopping rule was met."""
        return self.done

    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """pi(s) for one-hot observations [B, S] (the table is exact: no exploration)."""
        return self.policy[states(obs, self.device)]

    def explore(self, obs: Tensor, step: int) -> Tensor:
        return self.act(obs)

    def state_dict(self) -> dict:
        return {"V": self.V, "Q": self.Q, "policy": self.policy, "sweeps": self.sweeps,
                "done": self.done, "optim": {}}

    def load_state_dict(self, state: dict) -> None:
        for name in ("V", "Q", "policy"):
            getattr(self, name).copy_(state[name])
        self.sweeps, self.done = int(state["sweeps"]), bool(state["done"])

    def inference_module(self) -> nn.Module:
        return policy_module(self.policy, self.mdp.n_actions)


class ValueIteration(_Planner):
    """V <- max_a [R + gamma P (1-d) V] until the error bound is within tol."""

    cfg: ValueIterationConfig

    def __init__(self, cfg: ValueIterationConfig, info: EnvInfo, device: torch.device,
                 mdp: tabular.TabularMDP | None = None) -> None:
        super().__init__(cfg, info, device, mdp)
        self.bound = float("inf")
        """gamma / (1 - gamma) ||V_k - V_{k-1}||_inf: V is within this of V* (sup norm)."""

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One sweep of value iteration (the model is the data; `batch` is unused)."""
        gamma = self.cfg.gamma
        self.Q = backup(self.V, self.model, gamma)
        V_new = self.Q.max(-1).values
        residual = (V_new - self.V).abs().max()
        self.V, self.policy = V_new, greedy(self.Q)
        self.sweeps += 1
        self.bound = error_bound(float(residual), gamma)  # the stopping rule needs it on host
        self.done = self.bound <= self.cfg.tol
        return {"residual": residual, "bound": torch.tensor(self.bound)}

    def state_dict(self) -> dict:
        return super().state_dict() | {"bound": self.bound}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.bound = float(state["bound"])

    def values(self) -> dict:
        return values_record(self.Q, self.V, self.policy, self.cfg.gamma, tolerance=self.cfg.tol,
                             bound=self.bound, converged=self.done, sweeps=self.sweeps)


class PolicyIteration(_Planner):
    """Evaluate pi, improve it greedily, until the policy is stable."""

    cfg: PolicyIterationConfig

    def __init__(self, cfg: PolicyIterationConfig, info: EnvInfo, device: torch.device,
                 mdp: tabular.TabularMDP | None = None) -> None:
        super().__init__(cfg, info, device, mdp)
        self.improvements = 0

    def evaluate_policy(self) -> Tensor:
        cfg, m = self.cfg, self.model
        pi = one_hot_policy(self.policy, self.mdp.n_actions)
        if cfg.evaluation == "exact":
            return policy_evaluation_exact(pi, m, cfg.gamma)
        V, sweeps = policy_evaluation(pi, m, cfg.gamma, cfg.eval_tol, cfg.max_eval_sweeps)
        self.sweeps += sweeps
        return V

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One step of policy iteration: V^pi, then pi <- greedy(Q^pi) (`batch` is unused)."""
        self.V = self.evaluate_policy()
        self.Q = backup(self.V, self.model, self.cfg.gamma)
        self.sweeps += 1
        new = improve(self.Q, self.policy)
        changed = (new != self.policy).sum()
        self.policy = new
        self.improvements += 1
        self.done = int(changed) == 0  # a stable policy is optimal (Howard 1960)
        return {"changed": changed.to(torch.float64), "value_mean": self.V.mean()}

    def state_dict(self) -> dict:
        return super().state_dict() | {"improvements": self.improvements}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.improvements = int(state["improvements"])

    def values(self) -> dict:
        tol = self.cfg.eval_tol if self.cfg.evaluation == "iterative" else 0.0
        return values_record(self.Q, self.V, self.policy, self.cfg.gamma, tolerance=tol,
                             evaluation=self.cfg.evaluation, converged=self.done,
                             improvements=self.improvements, sweeps=self.sweeps)


def preset_vi(env: str) -> ValueIterationConfig:
    return ValueIterationConfig()


def preset_pi(env: str) -> PolicyIterationConfig:
    return PolicyIterationConfig()


def _check(algo: str):  # noqa: ANN202
    return lambda cfg, env: check_tabular(algo, env)


ALGORITHMS = (
    Algorithm(
        name="value-iteration", config_cls=ValueIterationConfig, preset=preset_vi,
        make_agent=ValueIteration, loop=train_tabular, actions=("discrete",),
        default_steps=lambda env: 100_000, vector_envs=False, tabular=True,
        check=_check("value-iteration"),
        description="Value iteration to a stated tolerance on a tabular env's model (Bellman "
                    "1957); steps are sweeps.",
    ),
    Algorithm(
        name="policy-iteration", config_cls=PolicyIterationConfig, preset=preset_pi,
        make_agent=PolicyIteration, loop=train_tabular, actions=("discrete",),
        default_steps=lambda env: 1_000, vector_envs=False, tabular=True,
        check=_check("policy-iteration"),
        description="Policy iteration on a tabular env's model (Howard 1960); steps are "
                    "improvement steps.",
    ),
)
