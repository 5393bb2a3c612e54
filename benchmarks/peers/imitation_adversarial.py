"""imitation's GAIL or AIRL on a Gymnasium env, under Kinema's evaluation protocol (a peer row).

    python imitation_adversarial.py '{"algo": "gail", "env": "cartpole", "seed": 0,
                                      "steps": 25000, "eval_every": 2560, "ppo": {...},
                                      "disc": {...}, "demos": "DEMOS.npz"}' OUT.json

Runs INSIDE the virtual environment that benchmarks/irl_peer.py builds (imitation 1.0.1 pins
Gymnasium 0.29 and Stable-Baselines3 2.2): it imports nothing from Kinema. The trainer
(imitation.algorithms.adversarial.gail.GAIL / airl.AIRL), the reward nets (BasicRewardNet /
BasicShapedRewardNet with a RunningNorm input layer) and the generator (SB3 PPO) are the
library's own; this file only adds the protocol around `trainer.train`:

- the expert demonstrations are Kinema's dataset, converted on Kinema's side to plain arrays
  (np.load with allow_pickle=False) and rebuilt here as imitation.data.types.Trajectory;
- the env is the task Kinema plays: the Gymnasium id behind Kinema's name, with continuous
  actions presented in [-1, 1] and clipped before scaling (Kinema's NormalizedActions), so the
  dataset's actions mean the same here;
- every `eval_every` env steps (at the end of a round: the generator's rollout and PPO update,
  then the discriminator's updates): 10 episodes on fresh envs reset with seeds 10000.., the
  generator acting deterministically; evaluation time is not train time;
- the generator's learning rate falls linearly over the whole budget, as Kinema's PPO anneals
  it (SB3's own progress counter restarts at every `learn` call imitation makes).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # imitation's per-round progress bar, on stderr

import gymnasium as gym  # noqa: E402
import imitation
import numpy as np
import stable_baselines3
import torch
from imitation.algorithms.adversarial.airl import AIRL
from imitation.algorithms.adversarial.gail import GAIL
from imitation.data.types import Trajectory
from imitation.rewards.reward_nets import BasicRewardNet, BasicShapedRewardNet
from imitation.util.networks import RunningNorm
from imitation.util.util import make_vec_env
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

ENVS = {"cartpole": "CartPole-v1", "pendulum": "Pendulum-v1",
        "inverted-pendulum": "InvertedPendulum-v4", "halfcheetah": "HalfCheetah-v4"}
"""Kinema's env name -> the Gymnasium id it wraps (sim/gymnasium_envs.py). Gymnasium 0.29 has
the MuJoCo envs at v4, Kinema wraps v5. Gymnasium's changelog lists no change of model,
observation or reward between the two except that v4's InvertedPendulum also pays its +1 on the
terminating step; both sides are evaluated and scored here with this script's env and Kinema's
references."""


def kinema_task(env: gym.Env) -> gym.Env:
    """Kinema's presentation of the env: a Box action space as [-1, 1], clipped, then scaled."""
    if isinstance(env.action_space, gym.spaces.Box):
        env = gym.wrappers.RescaleAction(env, np.float32(-1.0), np.float32(1.0))
        env = gym.wrappers.ClipAction(env)
    return env


def load_demos(path: str) -> list[Trajectory]:
    """Trajectories from the converted dataset: obs [sum(T+1), ...], acts [sum(T), ...],
    lengths [E] (T per episode), terminal [E] (the episode ended by termination)."""
    with np.load(path, allow_pickle=False) as z:
        obs, acts, lengths, terminal = z["obs"], z["acts"], z["lengths"], z["terminal"]
    trajs, o, a = [], 0, 0
    for T, term in zip(lengths.tolist(), terminal.tolist(), strict=True):
        trajs.append(Trajectory(obs=obs[o:o + T + 1], acts=acts[a:a + T], infos=None,
                                terminal=bool(term)))
        o, a = o + T + 1, a + T
    return trajs


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


def evaluate(model: PPO, env_id: str, episodes: int, seed: int) -> float:
    """Mean return of `episodes` deterministic episodes, episode i reset with seed + i."""
    returns = []
    for i in range(episodes):
        env = kinema_task(gym.make(env_id))
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        env.close()
        returns.append(total)
    return float(np.mean(returns))


def make_trainer(args: dict[str, Any], venv: Any, demos: list[Trajectory]) -> Any:
    ppo, disc, seed, steps = args["ppo"], args["disc"], int(args["seed"]), int(args["steps"])
    rollout = ppo["num_envs"] * ppo["num_steps"]
    holder: list[PPO] = []

    def lr(_: float) -> float:  # Kinema's 1 - iteration / iterations, over the whole budget
        done = holder[0].num_timesteps - rollout if holder else 0
        return ppo["lr"] * max(0.0, 1.0 - done / steps) if ppo["anneal_lr"] else ppo["lr"]

    act = torch.nn.Tanh if ppo["activation"] == "tanh" else torch.nn.ReLU
    gen = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0,
              n_steps=ppo["num_steps"], batch_size=rollout // ppo["num_minibatches"],
              n_epochs=ppo["update_epochs"], learning_rate=lr, gamma=ppo["gamma"],
              gae_lambda=ppo["lam"], clip_range=ppo["clip_coef"],
              clip_range_vf=ppo["clip_coef"] if ppo["clip_vloss"] else None,
              ent_coef=ppo["ent_coef"], vf_coef=ppo["vf_coef"],
              max_grad_norm=ppo["max_grad_norm"], target_kl=ppo["target_kl"],
              normalize_advantage=ppo["norm_adv"],
              policy_kwargs=dict(net_arch=dict(pi=list(ppo["hidden"]), vf=list(ppo["hidden"])),
                                 activation_fn=act, log_std_init=ppo["init_log_std"]))
    holder.append(gen)
    d_act = torch.nn.Tanh if disc["activation"] == "tanh" else torch.nn.ReLU
    common = dict(demonstrations=demos, demo_batch_size=disc["batch_size"], venv=venv,
                  gen_algo=gen, n_disc_updates_per_round=disc["updates"],
                  disc_opt_kwargs={"lr": disc["lr"]}, allow_variable_horizon=True)
    if args["algo"] == "gail":
        net = BasicRewardNet(venv.observation_space, venv.action_space,
                             hid_sizes=tuple(disc["hidden"]), activation=d_act,
                             normalize_input_layer=RunningNorm)
        trainer = GAIL(reward_net=net, **common)
    else:  # AIRL: g(s) state-only (as Kinema's), h(s) the potential, discounted by PPO's gamma
        net = BasicShapedRewardNet(venv.observation_space, venv.action_space,
                                   reward_hid_sizes=tuple(disc["hidden"]),
                                   potential_hid_sizes=tuple(disc["hidden"]),
                                   use_action=False, discount_factor=ppo["gamma"],
                                   activation=d_act, normalize_input_layer=RunningNorm)
        trainer = AIRL(reward_net=net, **common)
    if ppo["norm_reward"]:  # Kinema's reward scaling of the learned reward, SB3's way
        trainer.venv_train = VecNormalize(trainer.venv_wrapped, norm_obs=False,
                                          norm_reward=True, gamma=ppo["gamma"])
        gen.set_env(trainer.venv_train)
    return trainer


def run(args: dict[str, Any]) -> dict[str, Any]:
    env_name, seed, steps = args["env"], int(args["seed"]), int(args["steps"])
    eval_every = int(args["eval_every"])
    if env_name not in ENVS or args["algo"] not in ("gail", "airl"):
        raise SystemExit(f"no imitation peer for {args['algo']!r} on {env_name!r}; envs: "
                         f"{sorted(ENVS)}, algorithms: gail, airl")
    torch.set_num_threads(1)
    clock = Clock()
    np.random.seed(seed)
    torch.manual_seed(seed)
    env_id = ENVS[env_name]
    ppo = args["ppo"]
    venv = make_vec_env(env_id, rng=np.random.default_rng(seed), n_envs=ppo["num_envs"],
                        post_wrappers=[lambda e, _: kinema_task(e)])
    trainer = make_trainer(args, venv, load_demos(args["demos"]))
    rollout = ppo["num_envs"] * ppo["num_steps"]
    episodes, eval_seed = int(args.get("eval_episodes", 10)), int(args.get("eval_seed", 10_000))
    evals: list[list[float]] = []
    cpu: list[float] = []
    next_eval = [eval_every]

    def point(step: int) -> None:
        train_s, train_cpu = clock.train_s()
        ret = clock.evaluating(evaluate, trainer.gen_algo, env_id, episodes, eval_seed)
        evals.append([step, ret, train_s])
        cpu.append(train_cpu)
        print(f"[imitation {args['algo']}] step {step}: return {ret:.1f}, train {train_s:.1f} s",
              file=sys.stderr, flush=True)

    def callback(round_: int) -> None:
        step = (round_ + 1) * rollout
        if step >= next_eval[0]:
            while next_eval[0] <= step:
                next_eval[0] += eval_every
            point(step)

    trainer.train(steps, callback=callback)
    done = (steps // rollout) * rollout
    if not evals or evals[-1][0] < done:
        point(done)  # the budget is spent: a last evaluation
    return {"steps": done, "train_s": evals[-1][2], "train_cpu_s": cpu[-1],
            "return": evals[-1][1], "evals": evals, "evals_cpu_s": cpu,
            "versions": versions()}


def versions() -> dict[str, str]:
    return {"imitation": imitation.__version__, "stable-baselines3": stable_baselines3.__version__,
            "torch": torch.__version__, "numpy": np.__version__, "gymnasium": gym.__version__,
            "python": platform.python_version()}


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    args, out = json.loads(sys.argv[1]), sys.argv[2]
    result = run(args)
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
