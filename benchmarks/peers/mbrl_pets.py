"""mbrl-lib's PETS on a Gymnasium env, under Kinema's evaluation protocol (a peer row).

    python mbrl_pets.py '{"env": "pendulum", "seed": 0, "steps": 2000, "eval_every": 200,
                          "target": -200}' OUT.json

Runs INSIDE the mbrl-lib virtual environment that benchmarks/mbrl_peer.py builds (mbrl 0.2.0
pins Gymnasium 0.26): it imports nothing from Kinema. The model, trainer, replay buffer, agent
and CEM are mbrl-lib's own, built from a config laid out as mbrl/examples/conf lays it out
(main.yaml + algorithm/pets.yaml + dynamics_model/gaussian_mlp_ensemble.yaml +
action_optimizer/cem.yaml + an `overrides` group for the env), and the loop is the one of
mbrl.algorithms.pets.train, written out here only to add the protocol around it:

- env steps count the random steps too (pets.train's `num_steps` leaves them out);
- every `eval_every` env steps (before the model fit due at that step, as Kinema's loop does):
  `eval_episodes` episodes on a fresh env reset with seeds eval_seed.., the agent acting with
  agent.act after agent.reset() at each episode start, with the torch RNG (CEM samples, TS-inf
  particle assignment) and the model env's generator set to `planner_seed` and restored after,
  so evaluation neither depends on nor perturbs training; evaluation time is not train time;
- stop at the first evaluation >= target, or at `steps` (with a last evaluation there).

mbrl-lib has no Pendulum reward function; its reward functions see (action, next_obs), so
Pendulum's cost is charged on the next state: over a plan this is the env's own reward sum with
the (constant) cost of the current state swapped for that of the state after the horizon.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from typing import Any

import gymnasium as gym
import hydra
import mbrl
import mbrl.env.termination_fns as termination_fns
import mbrl.models
import mbrl.planning
import mbrl.util.common
import mbrl.util.env
import numpy as np
import omegaconf
import torch


def pendulum_reward(act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1: -(th^2 + 0.1 th_dot^2 + 0.001 u^2), th in [-pi, pi], u clipped to 2;
    obs = (cos th, sin th, th_dot). [B, 1], as mbrl.env.reward_fns returns."""
    th = torch.atan2(next_obs[:, 1], next_obs[:, 0])
    u = act[:, 0].clamp(-2.0, 2.0)
    return -(th.square() + 0.1 * next_obs[:, 2].square() + 0.001 * u.square()).view(-1, 1)


# env: (mbrl-lib env string, termination fn, reward fn, episode length, overrides)
ENVS: dict[str, tuple[str, Any, Any, int, dict[str, Any]]] = {
    "pendulum": ("gym___Pendulum-v1", termination_fns.no_termination, pendulum_reward, 200, dict(
        # the model and its fits
        num_elites=5, model_lr=1e-3, model_wd=5e-5, model_batch_size=256,
        validation_ratio=0.2, freq_train_model=200, patience=5, num_epochs_train_model=25,
        # the planner
        planning_horizon=15, cem_num_iters=3, cem_elite_ratio=0.1, cem_population_size=100,
        cem_alpha=0.1, cem_clipped_normal=False)),
}
HIDDEN = {"pendulum": (2, 64)}
"""Hidden layers (GaussianMLP's num_layers counts them) and their width."""
LEARNING_STARTS = {"pendulum": 200}
PARTICLES = 5
ENSEMBLE = 5


def make_cfg(env: str, seed: int, steps: int, learning_starts: int | None = None,
             train_every: int | None = None) -> omegaconf.DictConfig:
    """The Hydra config mbrl/examples/main.py would compose, for `env`.

    `_recursive_: False` keeps nested `_target_`s as configs, the behaviour of the Hydra 1.0
    that mbrl 0.2.0 pins (which cannot import on Python 3.11); mbrl-lib instantiates them
    itself (the optimizer in TrajectoryOptimizer, the activation in GaussianMLP).
    """
    name, _, _, trial_length, overrides = ENVS[env]
    if train_every is not None:  # our preset's refit interval, given by the benchmark
        overrides = overrides | {"freq_train_model": train_every}
    num_layers, hid_size = HIDDEN[env]
    cfg = {
        "seed": seed,
        "device": "cpu",
        "debug_mode": False,
        "algorithm": {
            "name": "pets",
            "agent": {
                "_target_": "mbrl.planning.TrajectoryOptimizerAgent",
                "_recursive_": False,
                "action_lb": "???",
                "action_ub": "???",
                "planning_horizon": "${overrides.planning_horizon}",
                "optimizer_cfg": "${action_optimizer}",
                "replan_freq": 1,
                "verbose": "${debug_mode}",
            },
            "normalize": True,
            "normalize_double_precision": True,
            "target_is_delta": True,
            "initial_exploration_steps": learning_starts or LEARNING_STARTS[env],
            "freq_train_model": "${overrides.freq_train_model}",
            "learned_rewards": "${overrides.learned_rewards}",
            "num_particles": PARTICLES,
        },
        "dynamics_model": {
            "_target_": "mbrl.models.GaussianMLP",
            "_recursive_": False,
            "device": "${device}",
            "num_layers": num_layers,
            "in_size": "???",
            "out_size": "???",
            "ensemble_size": ENSEMBLE,
            "hid_size": hid_size,
            "deterministic": False,
            "propagation_method": "fixed_model",  # TS-inf
            "learn_logvar_bounds": True,  # PETS (and Kinema) learn the bounds
            "activation_fn_cfg": {"_target_": "torch.nn.SiLU"},
        },
        "action_optimizer": {
            "_target_": "mbrl.planning.CEMOptimizer",
            "num_iterations": "${overrides.cem_num_iters}",
            "elite_ratio": "${overrides.cem_elite_ratio}",
            "population_size": "${overrides.cem_population_size}",
            "alpha": "${overrides.cem_alpha}",
            "lower_bound": "???",
            "upper_bound": "???",
            "return_mean_elites": True,
            "device": "${device}",
            "clipped_normal": "${overrides.cem_clipped_normal}",
        },
        "overrides": {"env": name, "term_fn": "no_termination", "learned_rewards": False,
                      "trial_length": trial_length, "num_steps": steps, **overrides},
    }
    return omegaconf.OmegaConf.create(cfg)


class Evaluator:
    """Kinema's protocol around mbrl-lib's agent: fixed reset seeds and planner seed."""

    def __init__(self, env_id: str, episodes: int, seed: int, planner_seed: int,
                 generator: torch.Generator) -> None:
        self.env = gym.make(env_id)
        self.episodes, self.seed, self.planner_seed = episodes, seed, planner_seed
        self.generator = generator

    def __call__(self, agent: mbrl.planning.Agent) -> float:
        gen_state = self.generator.get_state()
        try:
            with torch.random.fork_rng():  # CEM and the particle assignment use torch's RNG
                torch.manual_seed(self.planner_seed)
                self.generator.manual_seed(self.planner_seed)
                returns = [self.episode(agent, self.seed + i) for i in range(self.episodes)]
        finally:
            self.generator.set_state(gen_state)
        return float(np.mean(returns))

    def episode(self, agent: mbrl.planning.Agent, seed: int) -> float:
        obs, _ = self.env.reset(seed=seed)
        agent.reset()
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = self.env.step(agent.act(obs))
            total += float(reward)
            done = terminated or truncated
        return total


class Clock:
    """Wall and CPU seconds since the start, less those spent evaluating."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.eval_wall = self.eval_cpu = 0.0

    def train_s(self) -> tuple[float, float]:
        return (time.perf_counter() - self.wall0 - self.eval_wall,
                time.process_time() - self.cpu0 - self.eval_cpu)

    def evaluating(self, fn: Any, *args: Any) -> Any:
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args)
        finally:
            self.eval_wall += time.perf_counter() - w
            self.eval_cpu += time.process_time() - c


def run(args: dict[str, Any]) -> dict[str, Any]:
    env_name, seed, steps = args["env"], int(args["seed"]), int(args["steps"])
    eval_every, target = int(args["eval_every"]), float(args["target"])
    if env_name not in ENVS:
        raise SystemExit(f"env {env_name!r} has no mbrl-lib peer setup; known: {sorted(ENVS)}")
    torch.set_num_threads(1)
    clock = Clock()
    cfg = make_cfg(env_name, seed, steps, args.get("learning_starts"), args.get("train_every"))
    # As mbrl/examples/main.py and mbrl.algorithms.pets.train set things up.
    env, term_fn, _ = mbrl.util.env.EnvHandler.make_env(cfg)  # seeds the env and its spaces
    reward_fn = ENVS[env_name][2]
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed=seed)
    generator = torch.Generator(device=cfg.device)
    generator.manual_seed(seed)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    dynamics_model = mbrl.util.common.create_one_dim_tr_model(cfg, obs_shape, act_shape)
    replay_buffer = mbrl.util.common.create_replay_buffer(
        cfg, obs_shape, act_shape, rng=rng, obs_type=np.double, action_type=np.double,
        reward_type=np.double)  # normalize_double_precision, as pets.train does
    model_env = mbrl.models.ModelEnv(env, dynamics_model, term_fn, reward_fn,
                                     generator=generator)
    model_trainer = mbrl.models.ModelTrainer(dynamics_model, optim_lr=cfg.overrides.model_lr,
                                             weight_decay=cfg.overrides.model_wd)
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(
        model_env, cfg.algorithm.agent, num_particles=cfg.algorithm.num_particles)
    evaluate = Evaluator(cfg.overrides.env.split("___")[1], int(args.get("eval_episodes", 10)),
                         int(args.get("eval_seed", 10_000)), int(args.get("planner_seed", 12345)),
                         generator)

    evals: list[list[float]] = []
    cpu: list[float] = []

    def point(step: int) -> bool:
        train_s, train_cpu = clock.train_s()
        ret = clock.evaluating(evaluate, agent)
        evals.append([step, ret, train_s])
        cpu.append(train_cpu)
        print(f"[mbrl-lib pets] step {step}: return {ret:.1f}, train {train_s:.1f} s",
              file=sys.stderr, flush=True)
        return ret >= target

    learning_starts = cfg.algorithm.initial_exploration_steps
    mbrl.util.common.rollout_agent_trajectories(
        env, learning_starts, mbrl.planning.RandomAgent(env), {}, replay_buffer=replay_buffer)
    step, fits, solved = learning_starts, 0, False
    next_eval = eval_every
    while step < steps and not solved:
        obs, _ = env.reset()
        agent.reset()
        done = False
        while not done and step < steps:
            if step >= next_eval:
                while next_eval <= step:
                    next_eval += eval_every
                if solved := point(step):
                    break
            if (step - learning_starts) % cfg.algorithm.freq_train_model == 0:
                mbrl.util.common.train_model_and_save_model_and_data(
                    dynamics_model, model_trainer, cfg.overrides, replay_buffer, work_dir=None)
                fits += 1
            obs, _, terminated, truncated, _ = mbrl.util.common.step_env_and_add_to_buffer(
                env, obs, agent, {}, replay_buffer)
            step += 1
            done = terminated or truncated
    if not solved and (not evals or evals[-1][0] < step):
        solved = point(step)  # the budget is spent: a last evaluation
    last = next((e for e in evals if e[1] >= target), evals[-1])
    return {"solved": solved, "steps": int(last[0]), "train_s": last[2], "return": last[1],
            "train_cpu_s": cpu[evals.index(last)], "evals": evals, "evals_cpu_s": cpu,
            "fits": fits, "versions": versions()}


def versions() -> dict[str, str]:
    return {"mbrl": mbrl.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "gymnasium": gym.__version__, "hydra-core": hydra.__version__,
            "omegaconf": omegaconf.__version__, "python": platform.python_version()}


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # np.bool8 in gymnasium 0.26
    args, out = json.loads(sys.argv[1]), sys.argv[2]
    result = run(args)
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
