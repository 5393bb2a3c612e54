"""Tabular maximum-entropy inverse RL with the backward and forward passes.

Ziebart, Maas, Bagnell, Dey (2008), "Maximum Entropy Inverse Reinforcement Learning", AAAI,
Algorithm 1, with the backward pass of maximum causal entropy (Ziebart, Bagnell, Dey 2010,
ICML; soft value iteration), which for stochastic dynamics takes the expectation of the next
soft value instead of 2008's log-expectation of its exponential (that one is risk-seeking: a
10% slip into a hazard barely lowers an action's value, CS285 lecture 19's optimism problem);
for deterministic dynamics the two are the same. CS285 (Levine, lecture 20: inverse
reinforcement learning; lecture 19: control as inference, soft value iteration). A linear
reward over state features, r_theta(s) = theta . phi(s), and demonstrations of horizon T:

    backward  V_T(s) = r(s);  Q_t(s, a) = r(s) + sum_s' P(s'|s, a) V_{t+1}(s')
              V_t(s) = logsumexp_a Q_t(s, a)   (r(s) alone at a terminal s: the episode ends)
              pi_t(a|s) = exp(Q_t(s, a) - V_t(s))
    forward   D_0 = p0;  D_{t+1}(s') = sum_{s live} D_t(s) sum_a pi_t(a|s) P(s'|s, a)
    gradient  dL/dtheta = f_expert - sum_t sum_s D_t(s) phi(s)
              (expert feature counts minus the expected ones) = the gradient of the
              demonstrations' log-likelihood under pi; ascended with Adam.

The run's policy (evaluation, values.json, the exported bundle) is, by default (`policy
soft`), the most likely action of the fitted model, argmax_a pi_0(a|s) = argmax_a Q_0(s, a): the
policy whose feature counts were matched, under the same undiscounted T-step objective the
reward was fitted for. `policy value-iteration` instead re-solves the learned reward with the
config's gamma (R(s, a, s') = r_theta(s'), infinite horizon): a different objective, in which
the learned cost per step and the discount both charge for time. From exact expert visits on
gridworld-slippery (lr 1.0), the soft policy has the expert's value (0.668 of 0.668) from 200
gradient steps on, value iteration stays at 0.45; on gridworld-4x4 the two are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from agents.classic.dynamic_programming import value_iteration
from agents.classic.tabular import (
    Model,
    TabularConfig,
    check_tabular,
    greedy,
    policy_module,
    values_record,
)
from agents.classic.tabular import states as state_index
from agents.loops.tabular import train_tabular
from agents.protocol import Algorithm
from agents.runs.config import require, require_number, require_positive
from sim import tabular
from sim.registry import EnvInfo

POLICIES = ("soft", "value-iteration")
"""What the run's policy is computed from (MaxEntIRLConfig.policy)."""


@dataclass(frozen=True)
class MaxEntIRLConfig(TabularConfig):
    """MaxEnt IRL hyperparameters; one step of the budget is one gradient step."""

    dataset: str = ""
    """Demonstrations recorded on the env (kinema collect --env ENV --expert RUN --out DIR)."""
    horizon: int = 100
    """T of the backward and forward passes (preset: the env's time limit)."""
    lr: float = 1.0
    """Adam step size on theta (on gridworld-slippery 0.1 needs over 1,000 steps where 1.0 needs
    200: demonstrations that never touch a hazard drive its weight without bound)."""
    tol: float = 1e-3
    """Stop when every feature count is matched within tol (sup norm of the gradient)."""
    policy: str = "soft"
    """The run's policy: "soft", argmax of the fitted model's Q_0 over `horizon` (undiscounted,
    as the reward was fitted), or "value-iteration", optimal for the learned reward at gamma."""
    vi_tol: float = 1e-8
    """Tolerance of `policy value-iteration`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.dataset, str), "dataset", self.dataset, "a dataset folder")
        require(self.policy in POLICIES, "policy", self.policy, " or ".join(POLICIES))
        require_positive(self, "horizon")
        require_number(self, "lr", "tol", "vi_tol", low=0.0, low_open=True)


# -- the passes (pure functions of the model and the reward) -------------------------------------
def backward_pass(r: Tensor, m: Model, horizon: int) -> tuple[Tensor, Tensor]:
    """(log pi_t(a|s) [T, S, A], V_0(s) [S]): soft value iteration over T steps for state
    rewards r [S]."""
    S, A, _ = m.P.shape
    P, r_sa = m.P.reshape(S * A, S), r.repeat_interleave(A)  # one matrix-vector product a step
    terminal = m.live == 0
    V = r.clone()  # t = T
    log_pi = []
    for _ in range(horizon):  # t = T - 1 .. 0
        Q = torch.addmv(r_sa, P, V).view(S, A)  # r(s) + sum_s' P(s'|s, a) V_{t+1}(s')
        V_t = torch.logsumexp(Q, dim=-1)
        log_pi.append(Q - V_t[:, None])
        V = torch.where(terminal, r, V_t)
    return torch.stack(log_pi[::-1]), V


def forward_pass(log_pi: Tensor, m: Model) -> Tensor:
    """D_t(s) [T + 1, S]: the chance of being at s at time t; mass that reached a terminal state
    is counted there once and goes no further."""
    S, A, _ = m.P.shape
    P, pi = m.P.reshape(S * A, S), log_pi.exp()
    D = torch.empty(len(log_pi) + 1, S, dtype=pi.dtype, device=pi.device)
    D[0] = m.p0
    for t in range(len(log_pi)):
        D[t + 1] = ((D[t] * m.live)[:, None] * pi[t]).reshape(-1) @ P
    return D


def maxent_gradient(theta: Tensor, phi: Tensor, visits: Tensor, m: Model, horizon: int
                    ) -> tuple[Tensor, Tensor]:
    """(dL/dtheta = f_expert - E[f] [F], expected state visits [S]); `visits` are the expert's
    state visits per episode [S]."""
    log_pi, _ = backward_pass(phi @ theta, m, horizon)
    expected = forward_pass(log_pi, m).sum(0)
    return (visits - expected) @ phi, expected


def soft_optimal(r: Tensor, m: Model, horizon: int) -> tuple[Tensor, Tensor]:
    """(V_0 [S], Q_0 [S, A]) of the backward pass: the soft values at the first step of the
    horizon (at a terminal state, V = Q = r(s))."""
    log_pi, V = backward_pass(r, m, horizon)
    Q = torch.where((m.live == 0)[:, None], V[:, None], log_pi[0] + V[:, None])
    return V, Q


def optimal_for_reward(r: Tensor, m: Model, gamma: float, tol: float
                       ) -> tuple[Tensor, Tensor, int]:
    """(V [S], Q [S, A], sweeps) of value iteration with R(s, a, s') = r(s') (the reward of the
    state entered), to within tol of the optimum."""
    reward_in = (m.P @ r) * m.live[:, None]  # nothing after the end
    return value_iteration(Model(m.P, reward_in, m.live, m.p0), gamma, tol)


# -- agent ---------------------------------------------------------------------------------------
class MaxEntIRL:
    """theta of a linear state reward, fitted to the demonstrations' feature counts."""

    def __init__(self, cfg: MaxEntIRLConfig, info: EnvInfo, device: torch.device) -> None:
        self.cfg, self.info, self.device = cfg, info, device
        self.mdp = tabular.mdp(info.name)
        self.model = Model.of(self.mdp, device)
        self.phi = torch.tensor(np.asarray(self.mdp.features, np.float64), device=device)
        self.theta = nn.Parameter(torch.zeros(self.phi.shape[1], dtype=torch.float64,
                                              device=device))
        self.opt = torch.optim.Adam([self.theta], lr=cfg.lr)
        S, A = self.mdp.n_states, self.mdp.n_actions
        self.V = torch.zeros(S, dtype=torch.float64, device=device)
        self.Q = torch.zeros(S, A, dtype=torch.float64, device=device)
        self.policy = torch.zeros(S, dtype=torch.int64, device=device)
        self.gap = float("inf")
        """max_f |f_expert - E[f]| at the last gradient step."""
        self.updates = 0
        self._solved = False  # V, Q and the policy are those of the current theta

    def solve(self) -> None:
        """V, Q and the policy of the current reward (cfg.policy; a function of theta alone);
        done when they are used, not at every gradient step."""
        if not self._solved:
            if self.cfg.policy == "soft":
                self.V, self.Q = soft_optimal(self.reward(), self.model, self.cfg.horizon)
            else:
                self.V, self.Q, _ = optimal_for_reward(self.reward(), self.model,
                                                       self.cfg.gamma, self.cfg.vi_tol)
            self.policy = greedy(self.Q)
            self._solved = True

    @property
    def converged(self) -> bool:
        return self.gap <= self.cfg.tol

    @property
    def stopped(self) -> bool:
        """Training ended before the budget: the feature counts are matched within tol."""
        return self.converged

    def reward(self) -> Tensor:
        """r_theta(s) = theta . phi(s) [S]."""
        return (self.phi @ self.theta).detach()

    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """The run's policy (cfg.policy) for one-hot observations [B, S]."""
        self.solve()
        return self.policy[state_index(obs, self.device)]

    def explore(self, obs: Tensor, step: int) -> Tensor:
        return self.act(obs)

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One gradient step on theta from the expert's state visits batch["visits"] [S]; then
        the policy optimal for the new reward."""
        visits = batch["visits"].to(self.device, torch.float64).reshape(-1)
        with torch.no_grad():
            grad, _ = maxent_gradient(self.theta, self.phi, visits, self.model, self.cfg.horizon)
        self.opt.zero_grad(set_to_none=True)
        self.theta.grad = -grad  # ascent on the log-likelihood of the demonstrations
        self.opt.step()
        self.updates += 1
        self.gap = float(grad.abs().max())  # the stopping rule needs it on the host
        self._solved = False
        return {"feature_gap": grad.abs().max(), "theta_norm": self.theta.detach().norm()}

    def state_dict(self) -> dict:
        self.solve()
        return {"theta": self.theta.detach(), "V": self.V, "Q": self.Q, "policy": self.policy,
                "gap": self.gap, "updates": self.updates, "optim": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.theta.copy_(state["theta"])
        for name in ("V", "Q", "policy"):
            getattr(self, name).copy_(state[name])
        self.gap, self.updates = float(state["gap"]), int(state["updates"])
        self.opt.load_state_dict(state["optim"])
        self._solved = True

    def values(self) -> dict:
        self.solve()
        return values_record(self.Q, self.V, self.policy,
                             self.cfg.gamma if self.cfg.policy == "value-iteration" else 1.0,
                             policy_from=self.cfg.policy, horizon=self.cfg.horizon,
                             theta=self.theta.detach().cpu().tolist(),
                             features=list(self.mdp.feature_names),
                             reward=self.reward().cpu().tolist(), feature_gap=self.gap,
                             tolerance=self.cfg.tol, updates=self.updates)

    def inference_module(self) -> nn.Module:
        self.solve()
        return policy_module(self.policy, self.mdp.n_actions)


def preset(env: str) -> MaxEntIRLConfig:
    try:
        from sim.registry import spec

        return MaxEntIRLConfig(horizon=spec(env).max_episode_steps)
    except (ValueError, LookupError):
        return MaxEntIRLConfig()


def check(cfg: MaxEntIRLConfig, env: str) -> None:
    """A tabular env and a dataset folder, before the run folder is made."""
    check_tabular("maxent-irl", env)
    if not cfg.dataset or not Path(cfg.dataset).is_dir():
        raise ValueError(f"maxent-irl learns from demonstrations: --dataset {cfg.dataset!r} is "
                         f"not a dataset folder; record one with kinema collect --env {env} "
                         "--expert RUN --episodes N --out DIR")


ALGORITHMS = (
    Algorithm(
        name="maxent-irl", config_cls=MaxEntIRLConfig, preset=preset, make_agent=MaxEntIRL,
        loop=train_tabular, actions=("discrete",), default_steps=lambda env: 500,
        vector_envs=False, tabular=True, check=check,
        description="Tabular MaxEnt IRL (Ziebart et al. 2008), linear reward over state "
                    "features; steps are gradient steps.",
    ),
)
