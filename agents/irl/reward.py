"""The learned reward of a GAIL, AIRL or GCL run: RUN/reward/ on disk, rebuilt without pickle,
and training envs whose reward it replaces (`kinema train ALGO --env ENV --learned-reward RUN`).

    RUN/reward/reward.safetensors   the discriminator's weights (GAIL: D; AIRL: g and h)
    RUN/reward/reward.json          form, sizes, activation, the env it was learned on

Forms: gail -log(1 - D(s, a)) = softplus(logit); logit log D - log(1 - D); airl g(s), AIRL's
disentangled state-only reward, the one meant to transfer to changed dynamics (Fu et al. 2018,
section 7); gcl r_psi(s, a), guided cost learning's MaxEnt IRL reward (GAIL's network, its
output the reward itself). The adversarial loop writes the folder at every checkpoint; it is
the reward of the checkpointed discriminator.

The wrapped envs keep the env's own reward in info["env_reward"]; evaluation builds its own
envs, so it still reports the true return. The wrapper's one piece of state (the last
observation) is a plain array, which sim.get_state carries, so resume stays bit-exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

import sim
from models.discriminator import AIRLReward, Discriminator

REWARD_DIR, REWARD_WEIGHTS, REWARD_META = "reward", "reward.safetensors", "reward.json"
REWARD_FORMS = ("gail", "logit", "airl", "gcl")


class LearnedReward(nn.Module):
    """r(s, a) of a finished run, rebuilt from its description (see the module docstring)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        super().__init__()
        self.form, self.meta = meta["form"], meta
        if self.form not in REWARD_FORMS:
            raise ValueError(f"reward form {self.form!r} is not one of {', '.join(REWARD_FORMS)}")
        hidden, act = tuple(meta["hidden"]), str(meta["activation"])
        self.net: nn.Module = AIRLReward(int(meta["obs_dim"]), hidden=hidden, activation=act) if (
            self.form == "airl") else Discriminator(int(meta["obs_dim"]), int(meta["act_dim"]),
                                                    discrete=bool(meta["discrete"]),
                                                    hidden=hidden, activation=act)

    @torch.no_grad()
    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """The learned reward [B] of raw observations and env-unit actions."""
        if self.form == "airl":
            return self.net(obs)
        logit = self.net(obs, action)
        return F.softplus(logit) if self.form == "gail" else logit


def load_reward(run: Path | str) -> LearnedReward:
    """The learned reward saved in `run`; a one-line ValueError if it has none."""
    folder = Path(run) / REWARD_DIR
    if not (folder / REWARD_META).is_file() or not (folder / REWARD_WEIGHTS).is_file():
        raise ValueError(f"{run} holds no learned reward ({REWARD_DIR}/{REWARD_META} and "
                         f"{REWARD_WEIGHTS}); train one with kinema train gail|airl|gcl")
    try:
        meta = json.loads((folder / REWARD_META).read_text(encoding="utf-8"))
        reward = LearnedReward(meta)
        reward.net.load_state_dict(load_file(str(folder / REWARD_WEIGHTS)))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ValueError(f"{folder} is not a readable learned reward "
                         f"({' '.join(str(e).split())})") from None
    return reward.eval()


class LearnedRewardEnv(gym.Wrapper):
    """`env` with the reward r(s_t, a_t) of a learned reward; the env's own in info."""

    _state_exclude = ("reward_fn",)

    def __init__(self, env: gym.Env, reward_fn: LearnedReward) -> None:
        super().__init__(env)
        self.reward_fn = reward_fn
        self.last_obs = np.zeros(env.observation_space.shape or (), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.last_obs = np.asarray(obs, dtype=np.float32).copy()
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        s = torch.as_tensor(self.last_obs).reshape(1, -1)
        a = torch.as_tensor(np.asarray(action)).reshape(1, -1)
        reward = float(self.reward_fn(s, a if a.dtype.is_floating_point else a.reshape(1))[0])
        self.last_obs = np.asarray(obs, dtype=np.float32).copy()
        return obs, reward, terminated, truncated, {**info, "env_reward": float(env_reward)}


def check_reward_fits(reward: LearnedReward, run: Path | str, env: str) -> None:
    """The reward must read `env`'s observations and actions (a changed-dynamics variant of
    the env it was learned on fits; another task does not)."""
    info, meta = sim.spec(env).info, reward.meta
    have = (info.obs_dim, info.act_dim, info.discrete)
    want = (int(meta["obs_dim"]), int(meta["act_dim"]), bool(meta["discrete"]))
    if have != want:
        raise ValueError(f"the learned reward of {run} (learned on {meta.get('env')!r}) reads "
                         f"observations of {want[0]} and {want[1]} "
                         f"{'discrete' if want[2] else 'continuous'} actions; {env!r} has "
                         f"{have[0]} and {have[1]} {'discrete' if have[2] else 'continuous'}")


def learned_reward_envs(reward: LearnedReward, env: str, n: int, *, seed: int,
                        **options: Any) -> gym.vector.VectorEnv:
    """`n` training envs of `env`, as sim.make_vec builds them, rewarded by `reward`."""
    fns = [lambda: LearnedRewardEnv(sim.make(env, **options), reward) for _ in range(n)]
    envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return envs
