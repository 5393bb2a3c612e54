"""Model-predictive control on the true simulator state: the simulator is the model.

Each step, the env's exact state (sim.get_state) is copied into a private copy of the env, and
candidate action sequences of length `horizon` are rolled out from it; the first action of the
best sequence is applied (receding horizon). With iterations = 1 this is random shooting
(Nagabandi et al. 2018); with more it is the cross-entropy method (Rubinstein 1999; as used for
planning by Chua et al. 2018): refit a Gaussian (or, for discrete actions, categorical) sampling
distribution to the `elites` best sequences and sample again. The previous plan, shifted by one
step, is always among the candidates (warm start), so the plan improves over time rather than
being drawn afresh each step.

The cost is samples * horizon * iterations env steps per action: an expert for recording and
labelling, not a real-time controller (agents/planners.py plans on learned models instead).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import gymnasium as gym
import numpy as np

import sim


@dataclass(frozen=True)
class MPCConfig:
    """Planner settings (names as in Chua et al. 2018)."""

    horizon: int = 20
    """Planning horizon in env steps."""
    samples: int = 64
    """Candidate sequences per iteration (population)."""
    iterations: int = 2
    """CEM iterations; 1 is random shooting."""
    elites: int = 8
    """Best candidates that refit the sampling distribution."""
    gamma: float = 1.0
    """Discount of rewards within the horizon."""
    init_std: float = 0.6
    """Initial std of the Gaussian over continuous actions (actions live in [-1, 1])."""
    seed: int = 0
    """Seed of the planner's sampling."""

    def __post_init__(self) -> None:
        for name in ("horizon", "samples", "iterations", "elites"):
            if getattr(self, name) < 1:
                raise ValueError(f"MPC {name} must be >= 1, got {getattr(self, name)}")
        if self.elites > self.samples:
            raise ValueError(f"MPC elites ({self.elites}) cannot exceed samples ({self.samples})")


def mpc_config(env: str, options: str = "", **overrides: Any) -> MPCConfig:
    """Per-env defaults, then 'horizon=30,samples=128' style options, then keyword overrides."""
    cfg = {"cartpole": MPCConfig(horizon=25, samples=32, iterations=1),
           "inverted-pendulum": MPCConfig(horizon=15, samples=32, iterations=1)}.get(env,
                                                                                    MPCConfig())
    known = {f.name: f.type for f in fields(MPCConfig)}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        if key not in known:
            raise ValueError(f"unknown MPC option {key!r}; known: {', '.join(known)}")
        try:
            overrides[key] = float(value) if known[key] == "float" else int(value)
        except ValueError:
            raise ValueError(f"MPC option {key}={value!r} is not a number") from None
    return replace(cfg, **overrides)


class SimulatorMPC:
    """Receding-horizon planner over a copy of the env, set to the real env's state each step."""

    render_mode: str | None = None

    def __init__(self, env: str, cfg: MPCConfig) -> None:
        self.cfg, self.env_name = cfg, env
        self.name = "mpc"
        self.spec = {"kind": "mpc", "env": env, "config": cfg.__dict__}
        self._copy = sim.make(env)
        info = sim.spec(env).info
        self.discrete, self.n = info.discrete, info.n_actions
        self.act_shape = info.action_shape
        self.rng = np.random.default_rng(cfg.seed)
        self._plan: np.ndarray | None = None

    def begin(self, env: gym.Env, obs: np.ndarray) -> bool:
        self._plan = None
        return True

    def signal(self) -> str | None:
        return None

    def act(self, obs: np.ndarray, env: gym.Env) -> np.ndarray:
        cfg, H = self.cfg, self.cfg.horizon
        state = sim.get_state(env)
        if self.discrete:
            probs = np.full((H, self.n), 1.0 / self.n)
        else:
            mean = np.zeros((H, *self.act_shape))
            std = np.full_like(mean, cfg.init_std)
        warm = None if self._plan is None else np.concatenate([self._plan[1:], self._plan[-1:]])
        best_seq, best_ret = None, -np.inf
        for it in range(cfg.iterations):
            if self.discrete:
                seqs = np.stack([[self.rng.choice(self.n, p=p) for p in probs]
                                 for _ in range(cfg.samples)])  # [K, H]
            else:
                seqs = np.clip(mean + std * self.rng.standard_normal((cfg.samples, *mean.shape)),
                               -1.0, 1.0).astype(np.float32)  # [K, H, act_dim]
            if warm is not None and it == 0:
                seqs[0] = warm
            elif best_seq is not None:
                seqs[0] = best_seq  # keep the incumbent: CEM never gets worse across iterations
            returns = np.array([self._rollout(state, s) for s in seqs])
            elite = seqs[np.argsort(returns)[-cfg.elites:]]
            if returns.max() > best_ret:
                best_ret, best_seq = float(returns.max()), seqs[int(returns.argmax())].copy()
            if self.discrete:
                counts = np.stack([(elite == a).mean(0) for a in range(self.n)], -1)
                probs = 0.9 * counts + 0.1 / self.n  # smoothed so no action dies out early
            else:
                mean, std = elite.mean(0), elite.std(0) + 0.05
        assert best_seq is not None
        self._plan = best_seq
        return np.asarray(best_seq[0])

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
