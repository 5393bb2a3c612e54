"""Known rewards r(s, a, s') and terminations d(s, a, s') of Kinema's envs, as batched torch.

PETS (Chua et al. 2018, "Deep reinforcement learning in a handful of trials using probabilistic
dynamics models") plans with a learned dynamics model but the env's own reward and termination,
evaluated on predicted transitions (as mbrl-lib's `mbrl.env.reward_fns` / `termination_fns`).
Here they are written from the simulators' sources (Gymnasium 1.x classic control and MuJoCo
v5, dm-control suite) against Kinema's observation vectors (sim/gymnasium_envs.py,
sim/dm_control_envs.py: dm-control observation dicts are flattened with keys sorted).

Shapes: obs [..., obs_dim], act [..., act_dim], next_obs [..., obs_dim] -> reward [...] (the
inputs' float dtype) and done [...] bool; any batch shape, e.g. [K, H]. Only tensor ops, no
Python control flow on values, so a `RewardFn` runs inside the planner's objective and traces
into an ONNX graph. `act` is the agent's action in [-1, 1]; like sim.wrappers.NormalizedActions
a `RewardFn` clips it and maps it to the robot's units (low + (a + 1) / 2 * (high - low)) before
any control cost. Discrete actions (cartpole: the index [...] or a one-hot [..., n]) are not
used by the reward.

Exact or not: most rewards are functions of (obs, act, next_obs) and agree with the simulator to
float32 rounding. The MuJoCo locomotion envs reward the x displacement over the step, (x' - x)
/ dt, and x is not observed; the observations hold the rootx velocity before and after, so the
forward reward is the integrator's average of the two (`_x_velocity`), off by the velocity's
change within the step (contacts). `RewardFn.max_error` states, per env, the largest |r - r_sim|
measured on random-action transitions (tests/agents/model_based/test_rewards.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

Term = Callable[[Tensor, Tensor, Tensor], Tensor]
"""(obs, u, next_obs) -> [...], with u the action in the robot's units."""


# ---- shared pieces ------------------------------------------------------------------------


def _x_velocity(obs: Tensor, next_obs: Tensor, i: int, w_after: float) -> Tensor:
    """(x' - x) / dt from the rootx velocity obs[..., i] before and after the step.

    The displacement is dt times the mean velocity over the integrator's sub-steps. If the
    velocity changes linearly within the step, RK4 integrates it exactly: the mean is the
    average of the ends (w_after = 0.5). Semi-implicit Euler (x_{k+1} = x_k + h v_{k+1}) over n
    sub-steps averages v_1..v_n: w_after = (n + 1) / (2 n).
    """
    return (1 - w_after) * obs[..., i] + w_after * next_obs[..., i]


def _ctrl_cost(u: Tensor, weight: float) -> Tensor:
    """weight * ||u||^2 (Gymnasium MuJoCo's control_cost)."""
    return weight * u.square().sum(-1)


def _gaussian_tolerance(x: Tensor, margin: float) -> Tensor:
    """dm_control.utils.rewards.tolerance(x, bounds=(0, 0), margin, 'gaussian', 0.1)."""
    scale = math.sqrt(-2 * math.log(0.1))
    return torch.exp(-0.5 * (x / margin * scale).square())


def _quadratic_tolerance(x: Tensor, margin: float) -> Tensor:
    """dm_control.utils.rewards.tolerance(x, bounds=(0, 0), margin, 'quadratic', 0.0)."""
    d = x / margin
    return torch.where(d.abs() < 1, 1 - d.square(), torch.zeros_like(d))


def _never(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    return torch.zeros_like(next_obs[..., 0], dtype=torch.bool)


# ---- Gymnasium classic control ------------------------------------------------------------

_CARTPOLE_X, _CARTPOLE_THETA = 2.4, 12 * 2 * math.pi / 360  # CartPole-v1's thresholds


def _cartpole_done(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """CartPole-v1 (obs: x, x_dot, theta, theta_dot): the cart or the pole out of bounds."""
    x, theta = next_obs[..., 0], next_obs[..., 2]
    return (x.abs() > _CARTPOLE_X) | (theta.abs() > _CARTPOLE_THETA)


def _cartpole_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """1 every step, the terminating one included."""
    return torch.ones_like(next_obs[..., 0])


def _pendulum_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """Pendulum-v1 (obs: cos th, sin th, th_dot): -(th^2 + 0.1 th_dot^2 + 0.001 u^2) on the
    state before the step, th normalised to [-pi, pi], u clipped to the max torque 2."""
    th = torch.atan2(obs[..., 1], obs[..., 0])
    torque = u[..., 0].clamp(-2.0, 2.0)
    return -(th.square() + 0.1 * obs[..., 2].square() + 0.001 * torque.square())


# ---- Gymnasium MuJoCo (v5) ----------------------------------------------------------------


def _inverted_pendulum_done(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """InvertedPendulum-v5 (obs: qpos (cart, hinge), qvel): |hinge| > 0.2 or non-finite."""
    return (next_obs[..., 1].abs() > 0.2) | ~torch.isfinite(next_obs).all(-1)


def _inverted_pendulum_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """1 while upright, 0 on the terminating step."""
    return (~_inverted_pendulum_done(obs, u, next_obs)).to(next_obs.dtype)


CART_LOOKAHEAD_S = 1.0
"""Seconds ahead at which the inverted pendulum's margin places the cart (x' + T v')."""


def _inverted_pendulum_margin(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """How far s' is from failing, in [0, 1]: the mean of the hinge's distance from the
    termination angle (0.2) and the cart's from the ends of its rail (the slider's joint range,
    [-1, 1] in inverted_pendulum.xml; at an end the cart stops and the pole falls).

    The cart is placed where its velocity takes it in CART_LOOKAHEAD_S = 1 s (x' + T v'). A
    cart cannot brake at once: the controller must first tilt the pole against the motion (the
    cart-pole is non-minimum-phase), which the hinge term charges for at once, while a
    10-step (0.4 s) horizon sees little of the rail it approaches. On the cart's position
    alone, a trained model's planner let the cart drift into the rail in 3 of 3 episodes
    (131-309 steps); with the look-ahead the same model balanced 1,000 steps in 3 of 3
    (BENCHMARKS.md, issue 10)."""
    hinge = (1 - next_obs[..., 1].abs() / 0.2).clamp(min=0.0)
    cart = (1 - (next_obs[..., 0] + CART_LOOKAHEAD_S * next_obs[..., 2]).abs()).clamp(min=0.0)
    return (hinge + cart) / 2


def _reacher_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """Reacher-v5 (obs: cos q, sin q, target xy, q_dot, fingertip - target xy): -distance -
    ||u||^2. The distance is 3-D in Gymnasium, but fingertip and target share z = 0.01."""
    return -torch.linalg.vector_norm(next_obs[..., 8:10], dim=-1) - _ctrl_cost(u, 1.0)


def _pusher_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """Pusher-v5 (obs: qpos[:7], qvel[:7], tips_arm, object, goal positions):
    -||object - goal|| - 0.5 ||object - tips_arm|| - 0.1 ||u||^2."""
    tips, obj, goal = next_obs[..., 14:17], next_obs[..., 17:20], next_obs[..., 20:23]
    near = torch.linalg.vector_norm(obj - tips, dim=-1)
    dist = torch.linalg.vector_norm(obj - goal, dim=-1)
    return -dist - 0.5 * near - _ctrl_cost(u, 0.1)


def _halfcheetah_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """HalfCheetah-v5 (obs: qpos[1:] (8), qvel (9)): x velocity - 0.1 ||u||^2; semi-implicit
    Euler, 5 sub-steps."""
    return _x_velocity(obs, next_obs, 8, 0.6) - _ctrl_cost(u, 0.1)


def _hopper_done(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """Hopper-v5 (obs: qpos[1:] (5), clip(qvel, +-10) (6)): unhealthy unless z > 0.7, |angle| <
    0.2 and |qpos[2:], qvel| < 100. The velocities are observed clipped to 10, so a velocity
    over 100 (which Gymnasium ends the episode on) is not seen here."""
    z, angle, state = next_obs[..., 0], next_obs[..., 1], next_obs[..., 1:]
    healthy = ((state > -100.0) & (state < 100.0)).all(-1) & (z > 0.7) & (z < math.inf) & (
        angle > -0.2) & (angle < 0.2)
    return ~healthy


def _hopper_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """x velocity + 1 while healthy - 1e-3 ||u||^2; RK4."""
    healthy = (~_hopper_done(obs, u, next_obs)).to(next_obs.dtype)
    return _x_velocity(obs, next_obs, 5, 0.5) + healthy - _ctrl_cost(u, 1e-3)


def _walker2d_done(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """Walker2d-v5 (obs: qpos[1:] (8), clip(qvel, +-10) (9)): unhealthy unless 0.8 < z < 2
    and |angle| < 1."""
    z, angle = next_obs[..., 0], next_obs[..., 1]
    return ~((z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0))


def _walker2d_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """x velocity + 1 while healthy - 1e-3 ||u||^2; RK4."""
    healthy = (~_walker2d_done(obs, u, next_obs)).to(next_obs.dtype)
    return _x_velocity(obs, next_obs, 8, 0.5) + healthy - _ctrl_cost(u, 1e-3)


# ---- dm-control suite ---------------------------------------------------------------------


def _cartpole_smooth_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """dm-control cartpole balance/swingup, smooth (obs: position = cart x, cos, sin; velocity
    = cart, pole): upright * centered * small_control * small_velocity, all after the step."""
    upright = (next_obs[..., 1] + 1) / 2
    centered = (1 + _gaussian_tolerance(next_obs[..., 0], margin=2.0)) / 2
    small_control = (4 + _quadratic_tolerance(u[..., 0], margin=1.0)) / 5
    small_velocity = (1 + _gaussian_tolerance(next_obs[..., 4], margin=5.0)) / 2
    return upright * small_control * small_velocity * centered


_REACHER_EASY_RADII = 0.05 + 0.01  # the easy task's target size plus the finger's


def _reacher_easy_reward(obs: Tensor, u: Tensor, next_obs: Tensor) -> Tensor:
    """dm-control reacher easy (obs: position (2), to_target (2), velocity (2)): 1 while the
    finger touches the target, tolerance(distance, (0, radii)) with no margin."""
    dist = torch.linalg.vector_norm(next_obs[..., 2:4], dim=-1)
    return (dist <= _REACHER_EASY_RADII).to(next_obs.dtype)


# ---- the registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Known:
    reward: Term
    done: Term
    action_low: tuple[float, ...] | None
    """The robot's action bounds (sim.spec(name).info.action_low); None: discrete."""
    action_high: tuple[float, ...] | None
    max_error: float = 1e-5
    """|r - r_sim| stays under this: float32 rounding where exact (< 2e-6 measured), else the
    largest error over 5000 random-action transitions, rounded up."""
    margin: Term | None = None
    """m(s, u, s') in [0, 1], the distance of s' from the env's failure set, for the planner's
    optional margin term (agents.model_based.mpc); None: the env states none."""


def _box(n: int, bound: float = 1.0) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(action_low, action_high) of n actuators with range [-bound, bound]."""
    return (-bound,) * n, (bound,) * n


_KNOWN: dict[str, _Known] = {
    "cartpole": _Known(_cartpole_reward, _cartpole_done, None, None),
    "pendulum": _Known(_pendulum_reward, _never, *_box(1, 2.0)),
    "inverted-pendulum": _Known(_inverted_pendulum_reward, _inverted_pendulum_done,
                                *_box(1, 3.0), margin=_inverted_pendulum_margin),
    "reacher": _Known(_reacher_reward, _never, *_box(2)),
    "pusher": _Known(_pusher_reward, _never, *_box(7, 2.0)),
    # Forward reward from velocities (`_x_velocity`); measured max |r - r_sim| over 5000
    # random-action transitions: 0.63 (mean 0.10; over 30-step sums 1.3, the sums' std 12),
    # 0.052 (mean 0.002), 0.147 (mean 0.009).
    "halfcheetah": _Known(_halfcheetah_reward, _never, *_box(6), max_error=0.7),
    "hopper": _Known(_hopper_reward, _hopper_done, *_box(3), max_error=0.06),
    "walker2d": _Known(_walker2d_reward, _walker2d_done, *_box(6), max_error=0.15),
    "cartpole-balance": _Known(_cartpole_smooth_reward, _never, *_box(1)),
    "cartpole-swingup": _Known(_cartpole_smooth_reward, _never, *_box(1)),
    "reacher-easy": _Known(_reacher_easy_reward, _never, *_box(2)),
}


class RewardFn(nn.Module):
    """The known reward and termination of one env, batched; forward gives (reward, done)."""

    def __init__(self, env: str, known: _Known) -> None:
        super().__init__()
        self.env = env
        self.max_error = known.max_error
        self.discrete = known.action_low is None
        self._reward, self._done, self._margin = known.reward, known.done, known.margin
        self.has_margin = known.margin is not None
        low = torch.tensor(known.action_low or (), dtype=torch.float32)
        high = torch.tensor(known.action_high or (), dtype=torch.float32)
        self.act_mid: Tensor
        self.act_half: Tensor
        self.register_buffer("act_mid", (high + low) / 2)
        self.register_buffer("act_half", (high - low) / 2)

    def robot_action(self, act: Tensor) -> Tensor:
        """[-1, 1] actions [..., act_dim] clipped and mapped to the robot's units, as
        sim.wrappers.NormalizedActions does; discrete actions unchanged."""
        if self.discrete:
            return act
        return self.act_mid + self.act_half * act.clamp(-1.0, 1.0)

    def reward(self, obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
        """r(s, a, s') [...] for obs [..., obs_dim], act [..., act_dim], next_obs."""
        return self._reward(obs, self.robot_action(act), next_obs)

    def done(self, obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
        """Whether the step terminates the episode, [...] bool (a time limit is not one)."""
        return self._done(obs, self.robot_action(act), next_obs)

    def margin(self, obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
        """The distance of next_obs from the env's failure set, [...] in [0, 1]."""
        if self._margin is None:
            raise ValueError(f"{self.env!r} states no planning margin; envs that do: "
                             f"{', '.join(names_with_margin())}")
        return self._margin(obs, self.robot_action(act), next_obs)

    def forward(self, obs: Tensor, act: Tensor, next_obs: Tensor) -> tuple[Tensor, Tensor]:
        u = self.robot_action(act)
        return self._reward(obs, u, next_obs), self._done(obs, u, next_obs)

    def extra_repr(self) -> str:
        return f"env={self.env!r}, max_error={self.max_error:g}"


def names_with_reward() -> list[str]:
    """The envs whose reward and termination are known here, sorted."""
    return sorted(_KNOWN)


def names_with_margin() -> list[str]:
    """The envs whose known reward states a planning margin, sorted."""
    return sorted(k for k, v in _KNOWN.items() if v.margin is not None)


def known_reward(env: str) -> RewardFn | None:
    """A fresh RewardFn for `env` (on the CPU; move it with .to), or None if none is known."""
    known = _KNOWN.get(env)
    return None if known is None else RewardFn(env, known)


def reward_for(env: str) -> RewardFn:
    """The RewardFn for `env`; ValueError in one line naming the envs that have one."""
    fn = known_reward(env)
    if fn is None:
        raise ValueError(f"no known reward for env {env!r}; envs with a known reward: "
                         f"{', '.join(names_with_reward())}")
    return fn
