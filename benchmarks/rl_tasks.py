"""The tasks of `kinema bench rl` (benchmarks/rl.py): what each library trains, to which target
or budget, with which settings on the peer side."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from agents.registry import algorithm

LIBS = ("kinema", "sb3", "sbx")
"""sbx: SBX (Stable-Baselines in JAX) in its own venv (benchmarks/sbx_peer.py), on the tasks of
its table."""
SPEED_STEPS = (1_000, 3_000)
"""Speed tasks: random steps before learning, and the step at which the rate is read."""


@dataclass(frozen=True)
class Task:
    algo: str
    env: str
    target: float | None
    """None: a speed task (train steps/s over SPEED_STEPS), not a time-to-target task."""
    budget: int | None
    """Env steps; None: the algorithm's own default budget for the env (its registration)."""
    eval_every: int
    sb3_algo: str
    sb3_kwargs: dict[str, Any] = field(default_factory=dict)
    sb3_n_envs: int = 1
    sb3_source: str = "RL-Zoo"
    sb3_package: str = "stable_baselines3"
    """The module that holds sb3_algo: stable_baselines3, or sb3_contrib (TRPO)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Kinema config fields set over the preset (a variant of a task: prioritized replay)."""
    final: bool = False
    """A fixed-budget task (target None): the deterministic evaluation return after `budget`
    env steps, not the steps to a target."""
    sb3_normalize: bool = False
    """SB3 trains in VecNormalize (observations and rewards), as RL-Zoo's `normalize: true`;
    its evaluation normalizes observations with the training statistics."""

    @property
    def speed(self) -> bool:
        """A speed task: train steps per second, no evaluation return."""
        return self.target is None and not self.final

    @property
    def steps(self) -> int:
        return self.budget or algorithm(self.algo).default_steps(self.env)


def _linear(start: float):
    return lambda progress_remaining: progress_remaining * start


def _zoo_ppo(n_steps: int, batch_size: int, gamma: float, learning_rate: float, ent_coef: float,
             clip_range: float, n_epochs: int, gae_lambda: float, max_grad_norm: float,
             vf_coef: float, zoo_net: bool = True) -> dict[str, Any]:
    """An RL-Zoo ppo.yml MuJoCo entry as SB3 keyword arguments (its policy_kwargs where it has
    them: log_std_init -2, ortho_init False, ReLU, pi = vf = [256, 256])."""
    kwargs: dict[str, Any] = dict(
        n_steps=n_steps, batch_size=batch_size, gamma=gamma, ent_coef=ent_coef,
        learning_rate=learning_rate, clip_range=clip_range, n_epochs=n_epochs,
        gae_lambda=gae_lambda, max_grad_norm=max_grad_norm, vf_coef=vf_coef)
    if zoo_net:
        kwargs["policy_kwargs"] = dict(log_std_init=-2, ortho_init=False,
                                       activation_fn=torch.nn.ReLU,
                                       net_arch=dict(pi=[256, 256], vf=[256, 256]))
    return kwargs


LOCOMOTION_PPO_STEPS, LOCOMOTION_OFF_POLICY_STEPS = 100_000, 30_000
"""Issue 17's budgets: PPO at 100k env steps, SAC and TD3 at 30k."""


_ZOO_PENDULUM_TD3 = dict(gamma=0.98, buffer_size=200_000, learning_starts=10_000, noise_std=0.1,
                         train_freq=1, gradient_steps=1, learning_rate=1e-3,
                         policy_kwargs=dict(net_arch=[400, 300]))
TASKS: dict[str, Task] = {
    "ppo-cartpole": Task("ppo", "cartpole", 475, None, 1024, "PPO", dict(
        n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=_linear(1e-3), clip_range=_linear(0.2)), sb3_n_envs=8),
    "sac-pendulum": Task("sac", "pendulum", -200, None, 1000, "SAC", dict(learning_rate=1e-3)),
    "td3-pendulum": Task("td3", "pendulum", -200, None, 1000, "TD3", _ZOO_PENDULUM_TD3),
    "ddpg-pendulum": Task("ddpg", "pendulum", -200, None, 1000, "DDPG", _ZOO_PENDULUM_TD3),
    "sac-inverted-pendulum": Task("sac", "inverted-pendulum", 1000, None, 1000, "SAC", {},
                                  sb3_source="SB3 defaults (no RL-Zoo entry)"),
    "dqn-cartpole": Task("dqn", "cartpole", 475, None, 1024, "DQN", dict(
        learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
        gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
        exploration_fraction=0.16, exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]))),
    # PER-DQN (Schaul et al. 2016): dqn-cartpole with prioritized replay. SB3 has no PER, so
    # its column is SB3's uniform DQN; PER's own gain is this Kinema column beside dqn-cartpole's.
    "dqn-per-cartpole": Task("dqn", "cartpole", 475, None, 1024, "DQN", dict(
        learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
        gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
        exploration_fraction=0.16, exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256])), overrides={"prioritized": True}),
    "a2c-cartpole": Task("a2c", "cartpole", 475, None, 2000, "A2C", dict(ent_coef=0.0),
                         sb3_n_envs=8),
    "sac-halfcheetah-speed": Task("sac", "halfcheetah", None, SPEED_STEPS[1], SPEED_STEPS[1],
                                  "SAC", dict(learning_starts=SPEED_STEPS[0]),
                                  sb3_source="RL-Zoo (MuJoCo defaults: SB3's SAC)",
                                  # the same network size on both sides (the preset's is 128)
                                  overrides=dict(hidden=(256, 256))),
    "trpo-pendulum": Task("trpo", "pendulum", -200, None, 2048, "TRPO", dict(
        n_steps=1024, gamma=0.9, n_critic_updates=15, use_sde=True, sde_sample_freq=4),
        sb3_n_envs=2, sb3_package="sb3_contrib"),
    "trpo-cartpole": Task("trpo", "cartpole", 475, None, 1024, "TRPO", dict(
        n_steps=512, batch_size=512, cg_damping=1e-3, gae_lambda=0.98, gamma=0.99,
        learning_rate=1e-3, n_critic_updates=20), sb3_n_envs=2, sb3_package="sb3_contrib"),
    # Locomotion at fixed budgets (issue 17): both sides at RL-Zoo's settings for the robot.
    "ppo-halfcheetah-100k": Task("ppo", "halfcheetah", None, LOCOMOTION_PPO_STEPS, 25_000, "PPO",
                                 _zoo_ppo(512, 64, 0.98, 2.0633e-5, 4.01762e-4, 0.1, 20, 0.92,
                                          0.8, 0.58096), final=True, sb3_normalize=True,
                                 sb3_source="RL-Zoo ppo.yml HalfCheetah-v4"),
    "ppo-hopper-100k": Task("ppo", "hopper", None, LOCOMOTION_PPO_STEPS, 25_000, "PPO",
                            _zoo_ppo(512, 32, 0.999, 9.80828e-5, 2.29519e-3, 0.2, 5, 0.99, 0.7,
                                     0.835671), final=True, sb3_normalize=True,
                            sb3_source="RL-Zoo ppo.yml Hopper-v4"),
    "ppo-walker2d-100k": Task("ppo", "walker2d", None, LOCOMOTION_PPO_STEPS, 25_000, "PPO",
                              _zoo_ppo(512, 32, 0.99, 5.05041e-5, 5.85045e-4, 0.1, 20, 0.95, 1.0,
                                       0.871923, zoo_net=False), final=True, sb3_normalize=True,
                              sb3_source="RL-Zoo ppo.yml Walker2d-v4"),
    **{f"{algo}-{env}-30k": Task(algo, env, None, LOCOMOTION_OFF_POLICY_STEPS, 10_000,
                                 algo.upper(), dict(learning_starts=10_000) | (
                                     dict(noise_std=0.1) if algo == "td3" else {}),
                                 final=True, sb3_source=f"RL-Zoo {algo}.yml MuJoCo defaults")
       for algo in ("sac", "td3") for env in ("halfcheetah", "hopper")},
}
