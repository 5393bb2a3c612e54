"""Model-predictive control on the true simulator state: the simulator is the model.

Each step, the env's exact state (sim.get_state) is copied into a private copy of the env, and
candidate action sequences of length `horizon` are rolled out from it; the first action of the
best sequence is applied (receding horizon). The search is the cross-entropy method of
agents.model_based.planners (Rubinstein 1999; as used for planning by Chua et al. 2018): with
iterations = 1 it is random shooting (Nagabandi et al. 2018); with more, a Gaussian (or, for
discrete actions, categorical) sampling distribution is refit to the `elites` best sequences and
sampled again. The previous plan, shifted by one step, is always among the candidates (warm
start), so the plan improves over time rather than being drawn afresh each step.

The cost is samples * horizon * iterations env steps per action: an expert for recording and
labelling, not a real-time controller (the same planner plans on learned models instead).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, get_type_hints

import gymnasium as gym
import numpy as np
import torch

import sim
from agents.model_based.planners import CEM, CEMConfig, Objective
from agents.runs.config import require, require_positive


@dataclass(frozen=True)
class MPCConfig(CEMConfig):
    """The planner's settings (agents.model_based.planners.CEMConfig, names as in Chua et al.
    2018) and the discount of rewards within the horizon."""

    gamma: float = 1.0
    """Discount of rewards within the horizon."""

    def __post_init__(self) -> None:
        # The expert's own words first (users type mpc:horizon=...), then the planner's checks.
        require_positive(self, "horizon", "samples", "iterations", "elites", prefix="MPC ")
        require(self.elites <= self.samples, "MPC elites", self.elites,
                f"<= samples ({self.samples})")
        require(0.0 < self.gamma <= 1.0, "MPC gamma", self.gamma, "in (0, 1]")
        super().__post_init__()


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(key: str, value: str, kind: type) -> Any:
    """One 'key=value' option as the field's type says."""
    if kind is bool:
        if value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"MPC option {key}={value!r} is not a boolean; use one of "
                         f"{', '.join(_TRUE + _FALSE)}")
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"MPC option {key}={value!r} is not a number "
                         f"({kind.__name__})") from None


def mpc_config(env: str, options: str = "", **overrides: Any) -> MPCConfig:
    """Per-env defaults, then 'horizon=30,samples=128' style options, then keyword overrides."""
    cfg = {"cartpole": MPCConfig(horizon=25, samples=32, iterations=1),
           "inverted-pendulum": MPCConfig(horizon=15, samples=32, iterations=1)}.get(env,
                                                                                    MPCConfig())
    hints = get_type_hints(MPCConfig)
    known = {f.name: hints[f.name] for f in fields(MPCConfig)}
    parsed: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in options.split(","))):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in known:
            raise ValueError(f"unknown MPC option {key!r}; known: {', '.join(known)}")
        parsed[key] = _coerce(key, value.strip(), known[key])
    return replace(cfg, **{**parsed, **overrides})


class SimulatorMPC:
    """Receding-horizon CEM over a copy of the env, set to the real env's state each step."""

    render_mode: str | None = None

    def __init__(self, env: str, cfg: MPCConfig) -> None:
        self.cfg, self.env_name = cfg, env
        self.name = "mpc"
        self.spec = {"kind": "mpc", "env": env, "config": cfg.__dict__}
        self._copy = sim.make(env)
        info = sim.spec(env).info
        self.discrete, self.n = info.discrete, info.n_actions
        self.act_shape = info.action_shape
        self.planner = CEM(cfg, action_shape=self.act_shape,
                           n_actions=self.n if self.discrete else None)

    def begin(self, env: gym.Env, obs: np.ndarray) -> bool:
        self.planner.reset()
        return True

    def signal(self) -> str | None:
        return None

    def act(self, obs: np.ndarray, env: gym.Env) -> np.ndarray:
        plan = self.planner.plan(self._objective(sim.get_state(env)))
        return plan.action.cpu().numpy()

    def _objective(self, state: dict) -> Objective:
        """Returns of a population [K, H, ...] from `state`: each rolled out on the copy."""

        def returns(seqs: torch.Tensor) -> torch.Tensor:
            acts = seqs.cpu().numpy()
            if not self.discrete:
                acts = acts.astype(np.float32)
            return torch.tensor([self._rollout(state, s) for s in acts], dtype=torch.float64)

        return returns

    def _rollout(self, state: dict, seq: np.ndarray) -> float:
        """Discounted return of `seq` from `state` on the private copy of the env."""
        sim.set_state(self._copy, state)
        ret, disc = 0.0, 1.0
        for a in seq:
            _, r, terminated, truncated, info = self._copy.step(a)
            ret += disc * float(r)
            disc *= self.cfg.gamma
            if terminated or truncated:
                if terminated and info.get("sim_unstable"):
                    ret -= 1e6  # a plan that blows the simulator up is never the best one
                break
        return ret
