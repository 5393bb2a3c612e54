"""SBX (Stable-Baselines in JAX) on a Gymnasium env, under Kinema's evaluation protocol (a peer
row of `kinema bench rl`).

    python sbx_rl.py '{"algo": "SAC", "env_id": "Pendulum-v1", "n_envs": 1, "normalize": false,
                       "kwargs": {"learning_rate": 0.001}, "seed": 0, "steps": 20000,
                       "eval_every": 1000, "target": -200}'      (or the JSON on stdin)

Runs INSIDE the SBX virtual environment that benchmarks/sbx_peer.py builds: it imports nothing
from Kinema. The protocol is that of benchmarks/rl.py's SB3 runs (`_sb3_callback`):

- at the start of a rollout (all updates of the env steps so far done), once num_timesteps has
  reached the next multiple of eval_every: 10 deterministic episodes on a fresh vector env of
  the same id, episode i reset with seed 10000 + i (agents/runs/evaluation.py); with
  `normalize`, observations go through the training VecNormalize's statistics, not updated;
- wall and CPU seconds of evaluation are not train seconds; both count from before the env and
  model are built, so JAX's start-up and compiles (about 5 CPU seconds at the model's build, the
  update's at its first call) are train time: what a user pays. (run_sb3 starts its wall clock
  after the build, which for torch is a small fraction of a second.)
- stop at the first evaluation >= target (none: the whole budget), with a last evaluation at the
  end of the budget.

The kwargs are RL-Zoo's in JSON: {"linear": x} is SB3's linear schedule x * progress_remaining,
"activation_fn": "relu" | "tanh" a Flax activation, "noise_std": s Gaussian action noise
N(0, s^2 I). Prints one JSON line: {"evals": [[steps, mean_return, train_wall_s, train_cpu_s],
...], "versions": {...}}; progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

ALGOS = ("SAC", "TD3", "DDPG", "PPO", "DQN")
SCHEDULED = ("learning_rate", "clip_range", "clip_range_vf")
"""The kwargs SB3 (and SBX) accept as a schedule of progress_remaining (1 -> 0)."""
ACTIVATIONS = ("relu", "tanh")
EVAL_EPISODES, EVAL_SEED = 10, 10_000
THREADS = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu"}
KEYS = ("algo", "env_id", "n_envs", "normalize", "kwargs", "seed", "steps", "eval_every",
        "target")


def linear(start: float) -> Callable[[float], float]:
    """SB3's linear schedule: `start` at progress_remaining 1, falling to 0 at the end."""
    return lambda progress_remaining: progress_remaining * start


def schedule(value: Any) -> Any:
    """{"linear": x} as a schedule; a number stays a number."""
    if isinstance(value, dict):
        if set(value) != {"linear"}:
            raise ValueError(f"schedule {value!r}: accepted are a number or {{'linear': x}}")
        return linear(float(value["linear"]))
    return value


def translate(kwargs: Mapping[str, Any], n_actions: int,
              activations: Mapping[str, Callable[..., Any]],
              noise: Callable[[Any, Any], Any]) -> dict[str, Any]:
    """JSON kwargs -> the algorithm's keyword arguments: schedules, the policy's activation
    (looked up in `activations`, name -> function), and "noise_std" as
    noise(mean zeros [n_actions], sigma [n_actions]) for "action_noise"."""
    import numpy as np

    out = {k: schedule(v) if k in SCHEDULED else v for k, v in kwargs.items()}
    policy = dict(out.get("policy_kwargs") or {})
    if "activation_fn" in policy:
        name = policy["activation_fn"]
        if name not in activations:
            raise ValueError(f"activation_fn {name!r}: accepted are {', '.join(activations)}")
        policy["activation_fn"] = activations[name]
    if policy:
        out["policy_kwargs"] = policy
    if "noise_std" in out:
        std = float(out.pop("noise_std"))
        out["action_noise"] = noise(np.zeros(n_actions), std * np.ones(n_actions))
    return out


def check_spec(spec: Mapping[str, Any]) -> None:
    """ValueError (one line) naming what is missing or not accepted."""
    missing = [k for k in KEYS if k not in spec]
    extra = [k for k in spec if k not in KEYS]
    if missing or extra:
        raise ValueError(f"spec keys: missing {missing}, unknown {extra}; accepted: "
                         f"{', '.join(KEYS)}")
    if spec["algo"] not in ALGOS:
        raise ValueError(f"algo {spec['algo']!r}: accepted are {', '.join(ALGOS)}")
    if int(spec["eval_every"]) < 1 or int(spec["steps"]) < 1:
        raise ValueError(f"steps {spec['steps']} and eval_every {spec['eval_every']} must be >= 1")


class Clock:
    """Train wall and CPU seconds: since the starts, less what evaluation took."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.eval_wall = self.eval_cpu = 0.0

    def train_s(self) -> tuple[float, float]:
        return (time.perf_counter() - self.wall0 - self.eval_wall,
                time.process_time() - self.cpu0 - self.eval_cpu)

    def evaluating(self, fn: Callable[[], float]) -> float:
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn()
        finally:
            self.eval_wall += time.perf_counter() - w
            self.eval_cpu += time.process_time() - c


def evaluate(act: Callable[[Any], Any], env_id: str) -> float:
    """Mean return of EVAL_EPISODES episodes, episode i seeded EVAL_SEED + i, as one vector env
    (agents/runs/evaluation.py's `evaluate`)."""
    import gymnasium as gym
    import numpy as np

    envs = gym.make_vec(env_id, num_envs=EVAL_EPISODES, vectorization_mode="sync")
    try:
        seeds = [EVAL_SEED + i for i in range(EVAL_EPISODES)]
        obs, _ = envs.reset(seed=seeds)  # type: ignore[arg-type]
        returns = np.zeros(EVAL_EPISODES)
        done = np.zeros(EVAL_EPISODES, dtype=bool)
        while not done.all():
            obs, reward, terminated, truncated, _ = envs.step(np.asarray(act(obs)))
            returns += np.where(done, 0.0, reward)
            done |= terminated | truncated
        return float(returns.mean())
    finally:
        envs.close()


def run(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Train and evaluate as the module's docstring says; {"evals", "versions"}."""
    check_spec(spec)
    import flax.linen as nn
    import numpy as np
    import sbx
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import VecNormalize

    env_id, seed, target = spec["env_id"], int(spec["seed"]), spec["target"]
    eval_every = int(spec["eval_every"])
    clock = Clock()  # from before the env and model are built: JAX's set-up is train time
    venv = make_vec_env(env_id, n_envs=int(spec["n_envs"]), seed=seed)
    n_actions = int(np.prod(venv.action_space.shape or (1,)))
    kwargs = translate(spec["kwargs"], n_actions, {"relu": nn.relu, "tanh": nn.tanh},
                       NormalActionNoise)
    if spec["normalize"]:  # RL-Zoo's `normalize: true`: obs and reward, its gamma
        venv = VecNormalize(venv, gamma=float(kwargs.get("gamma", 0.99)))
    norm = venv if isinstance(venv, VecNormalize) else None
    model = getattr(sbx, spec["algo"])("MlpPolicy", venv, seed=seed, verbose=0, **kwargs)

    def act(obs: Any) -> Any:
        if norm is not None:
            obs = norm.normalize_obs(obs)  # the training statistics, not updated
        return model.predict(obs, deterministic=True)[0]

    evals: list[list[float]] = []

    class Protocol(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_eval, self.done = eval_every, False

        def point(self) -> None:
            steps = int(self.model.num_timesteps)
            wall, cpu = clock.train_s()
            ret = clock.evaluating(lambda: evaluate(act, env_id))
            evals.append([steps, ret, wall, cpu])
            print(json.dumps({"steps": steps, "return": ret, "train_s": round(wall, 2)}),
                  file=sys.stderr, flush=True)
            while self.next_eval <= steps:
                self.next_eval += eval_every
            self.done = target is not None and ret >= float(target)

        def _on_rollout_start(self) -> None:
            if self.model.num_timesteps >= self.next_eval:
                self.point()

        def _on_step(self) -> bool:
            return not self.done

    callback = Protocol()
    model.learn(total_timesteps=int(spec["steps"]), callback=callback)
    if not callback.done and (not evals or evals[-1][0] < model.num_timesteps):
        callback.point()  # the budget is spent: a last evaluation
    return {"evals": evals, "versions": versions()}


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("sbx-rl", "jax", "jaxlib", "flax", "optax", "stable_baselines3", "gymnasium",
             "mujoco", "numpy")
    return {n: version(n) for n in names} | {"python": platform.python_version()}


def main() -> None:
    for k, v in THREADS.items():  # before jax is imported: one CPU thread
        os.environ.setdefault(k, v)
    text = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    try:
        spec = json.loads(text)
        check_spec(spec)
    except ValueError as e:  # json.JSONDecodeError is one
        raise SystemExit(f"sbx_rl: {e}") from None
    print(json.dumps(run(spec)), flush=True)


if __name__ == "__main__":
    main()
