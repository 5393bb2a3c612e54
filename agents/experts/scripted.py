"""Scripted experts: controllers from the physics, keyed by env name.

    pendulum           energy-based swing-up (Astrom & Furuta 2000) + LQR balance
    cartpole           LQR on the linearized cart-pole, sign of the force (discrete push)
    inverted-pendulum  LQR on a finite-difference linearization of MuJoCo's own env step
    cartpole-swingup   energy-based swing-up of the pole + LQR balance of cart and pole
    reacher            Jacobian-transpose PD tracking of the target (Craig, ch. 9)
    reacher-easy       the same with MuJoCo's Jacobian (dm-control's reacher)
    panda-reach        Cartesian steps of the end effector straight at the goal

Each expert maps one observation (and the env, for MuJoCo's model) to an action in the env's
units ([-1, 1] for continuous actions). Gains come from the env's own parameters where the env
exposes them, so randomized masses or lengths are tracked rather than assumed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np


def dlqr(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray,
         iters: int = 5000) -> np.ndarray:
    """Infinite-horizon discrete LQR gain K (u = -K x) by iterating the Riccati equation."""
    P = Q.copy()
    for _ in range(iters):
        K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P_next = Q + A.T @ P @ (A - B @ K)
        if np.allclose(P_next, P, rtol=1e-10, atol=1e-10):
            P = P_next
            break
        P = P_next
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)


class ScriptedExpert:
    """Common shape of the scripted experts (see agents/experts/base.py for the protocol)."""

    render_mode: str | None = None

    def __init__(self, env_name: str, control: Callable[[np.ndarray, gym.Env], np.ndarray]) -> None:
        self.name, self.spec = f"scripted:{env_name}", {"kind": "scripted", "env": env_name}
        self._control = control

    def begin(self, env: gym.Env, obs: np.ndarray) -> bool:
        return True

    def signal(self) -> str | None:
        return None

    def act(self, obs: np.ndarray, env: gym.Env) -> np.ndarray:
        return self._control(np.asarray(obs, dtype=np.float64), env)


# -- pendulum (Gymnasium Pendulum-v1) -------------------------------------------------------------
def pendulum(obs: np.ndarray, env: gym.Env) -> np.ndarray:
    """Pump energy toward the upright level, then catch the pole with LQR.

    Pendulum-v1: thdot' = thdot + (a sin th + b u) dt, th' = th + thdot' dt, th = 0 upright,
    a = 3g / 2l, b = 3 / ml^2. With E = thdot^2 / 2 + a cos th, dE/dt = b u thdot, so
    u = k (E* - E) thdot, saturated, drives E to the upright energy E* = a (Astrom & Furuta 2000).
    """
    u_: Any = env.unwrapped  # a MuJoCo env: model, data, frame_skip
    g, m, length, dt, u_max = (float(getattr(u_, k, d)) for k, d in (
        ("g", 10.0), ("m", 1.0), ("l", 1.0), ("dt", 0.05), ("max_torque", 2.0)))
    a, b = 3 * g / (2 * length), 3 / (m * length * length)
    th, thdot = math.atan2(obs[1], obs[0]), obs[2]
    A = np.array([[1 + a * dt * dt, dt], [a * dt, 1.0]])
    B = np.array([[b * dt * dt], [b * dt]])
    K = _cached_gain(("pendulum", a, b, dt), lambda: dlqr(A, B, np.diag([1.0, 0.1]),
                                                          np.array([[0.001]])))
    u_lqr = float(-(K @ np.array([th, thdot]))[0])
    energy = 0.5 * thdot * thdot + a * math.cos(th)
    # a saturated proportional law rather than bang-bang: as good an expert, but continuous
    u_pump = 0.2 * (a - energy) * thdot if thdot != 0 else u_max
    # blend the two over 0.4 < |th| < 0.8 instead of switching: a policy without a jump is one
    # a network can clone (BC and DAgger learn it from far fewer labels)
    w = float(np.clip((math.cos(th) - math.cos(0.8)) / (math.cos(0.4) - math.cos(0.8)), 0, 1))
    u = w * np.clip(u_lqr, -u_max, u_max) + (1 - w) * np.clip(u_pump, -u_max, u_max)
    return np.array([np.clip(u, -u_max, u_max) / u_max], dtype=np.float32)


# -- cartpole (Gymnasium CartPole-v1, discrete push left/right) -----------------------------------
def cartpole(obs: np.ndarray, env: gym.Env) -> np.ndarray:
    """Push toward where LQR's continuous force points (Barto et al. 1983 dynamics, linearized)."""
    u_: Any = env.unwrapped  # a MuJoCo env: model, data, frame_skip
    g, mc, mp, half, tau = (float(getattr(u_, k, d)) for k, d in (
        ("gravity", 9.8), ("masscart", 1.0), ("masspole", 0.1), ("length", 0.5), ("tau", 0.02)))
    M = mc + mp
    # theta_dd = (g th - F / M) / (l (4/3 - mp / M)); x_dd = F / M - mp l theta_dd / M
    den = half * (4.0 / 3.0 - mp / M)
    Ac = np.zeros((4, 4))
    Ac[0, 1] = Ac[2, 3] = 1.0
    Ac[3, 2] = g / den
    Ac[1, 2] = -mp * half * g / (M * den)
    Bc = np.array([0.0, 1 / M + mp * half / (M * M * den), 0.0, -1 / (M * den)])[:, None]
    K = _cached_gain(("cartpole", g, mc, mp, half, tau), lambda: dlqr(
        np.eye(4) + tau * Ac, tau * Bc, np.diag([1.0, 1.0, 10.0, 1.0]), np.array([[0.1]])))
    force = float(-(K @ obs[:4])[0])
    return np.array(int(force > 0), dtype=np.int64)


# -- inverted-pendulum (MuJoCo InvertedPendulum-v5) ------------------------------------------------
def mujoco_lqr(obs: np.ndarray, env: gym.Env) -> np.ndarray:
    """LQR about qpos = qvel = 0 on MuJoCo's finite-difference linearization of one env step."""
    import mujoco

    u_: Any = env.unwrapped  # a MuJoCo env: model, data, frame_skip
    model, data = u_.model, u_.data
    skip = int(getattr(u_, "frame_skip", getattr(u_, "_n_sub_steps", 1)))  # physics steps per step

    def step(x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One env step (frame_skip physics steps) from state x = [qpos, qvel] under control u."""
        d = mujoco.MjData(model)
        d.qpos[:], d.qvel[:], d.ctrl[:] = x[: model.nq], x[model.nq:], u
        for _ in range(skip):
            mujoco.mj_step(model, d)
        return np.concatenate([d.qpos, d.qvel])

    def gain() -> np.ndarray:
        # Central differences on whole env steps: mjd_transitionFD refuses the RK4 integrator
        # that InvertedPendulum uses, and a step of the real integrator is what the policy sees.
        nx, nu, eps = model.nq + model.nv, model.nu, 1e-6
        x0, u0 = np.zeros(nx), np.zeros(nu)
        A = np.stack([(step(x0 + e, u0) - step(x0 - e, u0)) / (2 * eps)
                      for e in eps * np.eye(nx)], 1)
        B = np.stack([(step(x0, u0 + e) - step(x0, u0 - e)) / (2 * eps)
                      for e in eps * np.eye(nu)], 1)
        return dlqr(A, B, np.eye(nx), 0.1 * np.eye(nu))

    key = ("mujoco", model.nq, model.nv, model.body_mass.tobytes(), model.dof_damping.tobytes(),
           model.actuator_gear.tobytes(), model.opt.timestep)
    K = _cached_gain(key, gain)
    qpos = data.qpos.copy()
    hinges = model.jnt_qposadr[model.jnt_type == mujoco.mjtJoint.mjJNT_HINGE]
    qpos[hinges] = (qpos[hinges] + np.pi) % (2 * np.pi) - np.pi  # a swung-up pole may be at 2 pi
    x = np.concatenate([qpos, data.qvel])
    u = -K @ x
    lo, hi = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    return np.clip(2 * (u - lo) / (hi - lo) - 1, -1, 1).astype(np.float32)


# -- cartpole-swingup (dm-control cartpole swingup) ------------------------------------------------
def cartpole_swingup(obs: np.ndarray, env: gym.Env) -> np.ndarray:
    """Energy swing-up of the pole with a cart-centering term, MuJoCo LQR once near upright.

    dm-control's observation: [cart x, cos th, sin th, cart x_dot, th_dot], th = 0 upright;
    the pole of cartpole.xml has half-length l = 0.5 m. With E = (2/3) l^2 th_dot^2 +
    g l (cos th - 1) (0 upright at rest), pushing the cart along -th_dot cos th (-E) adds
    energy until E = 0 (Astrom & Furuta 2000); the PD term keeps the cart near the centre.
    """
    x, c, _, xd, thd = (float(v) for v in obs[:5])
    if c > math.cos(0.4):
        return mujoco_lqr(obs, env)
    g, half = 9.81, 0.5
    energy = (2.0 / 3.0) * half * half * thd * thd + g * half * (c - 1.0)
    u = 2.0 * energy * thd * c - 0.5 * x - 0.3 * xd
    return np.array([np.clip(u, -1.0, 1.0)], dtype=np.float32)


# -- reacher (Gymnasium Reacher-v5) ----------------------------------------------------------------
def reacher(obs: np.ndarray, env: gym.Env) -> np.ndarray:
    """tau = Kp J^T (target - fingertip) - Kd q_dot on the planar two-link arm (links 0.1, 0.11 m).

    Reacher-v5's observation: [cos q (2), sin q (2), target (2), q_dot (2), tip - target (3)].
    """
    q = np.arctan2(obs[2:4], obs[0:2])
    qd, err = obs[6:8], -obs[8:10]
    l1, l2 = 0.1, 0.11
    s1, c1, s12, c12 = math.sin(q[0]), math.cos(q[0]), math.sin(q.sum()), math.cos(q.sum())
    J = np.array([[-l1 * s1 - l2 * s12, -l2 * s12], [l1 * c1 + l2 * c12, l2 * c12]])
    u = 20.0 * J.T @ err - 0.05 * qd  # gains from a small grid: return about -5.5, random -43
    return np.clip(u, -1.0, 1.0).astype(np.float32)


def reacher_dm(obs: np.ndarray, env: gym.Env) -> np.ndarray:
    """dm-control reacher: tau = Kp J^T to_target - Kd q_dot with MuJoCo's Jacobian of the finger.

    Observation (sorted keys): [position (2), to_target (2), velocity (2)].
    """
    import mujoco

    u_: Any = env.unwrapped  # a MuJoCo env: model, data, frame_skip
    model, data = u_.model, u_.data
    jacp = np.zeros((3, model.nv))
    mujoco.mj_jacBody(model, data, jacp, None, mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY,
                                                                  "finger"))
    u = 100.0 * jacp[:2].T @ obs[2:4] - 0.3 * obs[4:6]  # return about 870, random about 95
    return np.clip(u, -1.0, 1.0).astype(np.float32)


def panda_reach(obs: np.ndarray, env: gym.Env) -> np.ndarray:
    """Step the end effector straight at the goal: obs [ee pos (3), ee vel (3), goal (3)].

    The action is a Cartesian displacement of at most 5 cm (action 1) per step, so
    (goal - pos) / 5 cm, clipped, arrives in as few steps as the env allows.
    """
    return np.clip((obs[6:9] - obs[0:3]) / 0.05, -1.0, 1.0).astype(np.float32)


SCRIPTED: dict[str, Callable[[np.ndarray, gym.Env], np.ndarray]] = {
    "pendulum": pendulum,
    "cartpole": cartpole,
    "inverted-pendulum": mujoco_lqr,
    "cartpole-swingup": cartpole_swingup,
    "reacher": reacher,
    "reacher-easy": reacher_dm,
    "panda-reach": panda_reach,
    "panda-reach-sparse": panda_reach,
}
"""Env name -> controller."""

_GAINS: dict[tuple, np.ndarray] = {}


def _cached_gain(key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """LQR gains depend only on the model's parameters: solve once per parameter set."""
    if key not in _GAINS:
        _GAINS[key] = compute()
    return _GAINS[key]
