"""Presets of PPO, SAC and TD3 (and so DDPG) for every locomotion and manipulation env.

Each algorithm's `preset(env)` looks here first; the hand-tuned small envs (cart-pole, pendulum,
inverted-pendulum) stay in the algorithm's own module. Where RL-Zoo (Raffin, rl-baselines3-zoo,
hyperparams/ppo.yml, sac.yml, td3.yml) has a tuned entry for the same robot, the preset is that
entry in Kinema's names: SB3's `batch_size` B over `n_envs` N x `n_steps` T becomes
`num_minibatches` = N T / B, `policy_kwargs` become hidden / activation / init_log_std /
ortho_init, `normalize: true` becomes norm_obs and norm_reward, a constant learning rate
anneal_lr=False, and SB3's unclipped value loss clip_vloss=False. SB3's value loss is the mean
squared error where Kinema's (as the PPO paper's and CleanRL's) is half of it, so the Zoo's
`vf_coef` is doubled (`_SB3_VF`) to weigh the value gradient as SB3 does. gSDE (`use_sde`) has
no counterpart here: those presets explore with the plain Gaussian at the same log-std. Where the
Zoo has no entry the source is said beside the preset. `steps` is the budget `kinema train`
uses without --steps: the Zoo's `n_timesteps`, or 1M.

What each preset reached on this project's machine is in BENCHMARKS.md ("Locomotion presets
beside RL-Zoo"); a preset without a row there has not been measured here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    fields: dict[str, Any]
    """Config fields over the algorithm's dataclass defaults."""
    source: str
    """Where the values come from."""
    steps: int = 1_000_000
    """Default env-step budget."""


class Presets(dict[str, Preset]):
    """An algorithm's presets by env name, with what its registration reads of them."""

    def fields(self, env: str, fallback: dict[str, Any] | None = None) -> dict[str, Any]:
        """The preset's config fields, or `fallback` (default: the dataclass defaults)."""
        return self[env].fields if env in self else dict(fallback or {})

    def source(self, env: str) -> str | None:
        """Where env's preset comes from; None for the generic fallback."""
        return self[env].source if env in self else None

    def steps(self, fallback: Callable[[str], int]) -> Callable[[str], int]:
        """env -> the preset's default budget, else fallback(env)."""
        return lambda env: self[env].steps if env in self else fallback(env)


_SB3_VF = 2.0
"""SB3's value loss is mean (V - R)^2, Kinema's 0.5 mean (V - R)^2: its vf_coef times 2."""


def tuned_on(source: str, *envs: str) -> Callable[[str], str | None]:
    """An Algorithm's preset_source for an algorithm with hand-tuned presets for a few envs."""
    return lambda env: source if env in envs else None


# -- PPO --------------------------------------------------------------------------------------
_PPO_SB3 = dict(norm_obs=True, norm_reward=True, anneal_lr=False, clip_vloss=False, ent_coef=0.0)
"""What every RL-Zoo PPO entry below shares (normalize: true, constant lr, SB3's value loss)."""
_ZOO_NET = dict(hidden=(256, 256), activation="relu", init_log_std=-2.0, ortho_init=False)
"""policy_kwargs of the Zoo's tuned MuJoCo entries: log_std_init=-2, ortho_init=False, ReLU,
pi=[256, 256], vf=[256, 256]."""
_SB3_NET = dict(hidden=(64, 64), activation="tanh")
"""SB3's default MlpPolicy, for Zoo entries without policy_kwargs."""
_EIGHT_ENVS = dict(num_envs=8, num_steps=64)
"""The Zoo's one env x 512 steps per rollout as 8 envs x 64 steps (the same 512 transitions and
gradient steps; the per-step overhead of acting is shared by 8 envs). Seed 0 at 100k env steps:
halfcheetah 3,258 against the Zoo's layout's 3,147 in 35% less CPU time; hopper 993 against
1,053 in about half of it. The Zoo's entries otherwise."""
_PPO_SB3_DEFAULTS = _PPO_SB3 | _SB3_NET | dict(
    num_envs=1, num_steps=2048, num_minibatches=32, update_epochs=10, lr=3e-4, gamma=0.99,
    lam=0.95, clip_coef=0.2, vf_coef=_SB3_VF * 0.5, max_grad_norm=0.5)
"""The Zoo's `mujoco-defaults` (Ant-v4): SB3's PPO defaults with normalization."""
_PPO_BULLET = _PPO_SB3 | _ZOO_NET | dict(
    num_envs=16, num_steps=512, num_minibatches=64, gamma=0.99, lam=0.9, update_epochs=20,
    max_grad_norm=0.5, vf_coef=_SB3_VF * 0.5, lr=3e-5, clip_coef=0.4)
"""The Zoo's tuned `pybullet-defaults` (HalfCheetahBulletEnv-v0: n_envs 16, n_steps 512,
batch_size 128)."""
_PPO_CLEANRL = dict(num_envs=1, num_steps=2048, num_minibatches=32, update_epochs=10, lr=3e-4,
                    anneal_lr=True, gamma=0.99, lam=0.95, clip_coef=0.2, clip_vloss=True,
                    ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, norm_obs=True,
                    norm_reward=True, **_SB3_NET)
"""CleanRL's ppo_continuous_action.py defaults (the PPO paper's MuJoCo settings, Schulman et
al. 2017 Table 3, with observation and reward normalization): the Zoo has no dm-control
entries."""

PPO: dict[str, Preset] = {
    "halfcheetah": Preset(_PPO_SB3 | _ZOO_NET | _EIGHT_ENVS | dict(
        num_minibatches=8, gamma=0.98, lr=2.0633e-5,
        ent_coef=4.01762e-4, clip_coef=0.1, update_epochs=20, lam=0.92, max_grad_norm=0.8,
        vf_coef=_SB3_VF * 0.58096), "RL-Zoo ppo.yml HalfCheetah-v4 (tuned), its rollout over "
        "8 envs"),
    "hopper": Preset(_PPO_SB3 | _ZOO_NET | _EIGHT_ENVS | dict(
        num_minibatches=16, gamma=0.999, lr=9.80828e-5,
        ent_coef=2.29519e-3, clip_coef=0.2, update_epochs=5, lam=0.99, max_grad_norm=0.7,
        vf_coef=_SB3_VF * 0.835671), "RL-Zoo ppo.yml Hopper-v4 (tuned), its rollout over 8 envs"),
    "walker2d": Preset(_PPO_SB3 | _SB3_NET | _EIGHT_ENVS | dict(
        num_minibatches=16, gamma=0.99, lr=5.05041e-5,
        ent_coef=5.85045e-4, clip_coef=0.1, update_epochs=20, lam=0.95, max_grad_norm=1.0,
        vf_coef=_SB3_VF * 0.871923), "RL-Zoo ppo.yml Walker2d-v4 (tuned), its rollout over 8 "
        "envs"),
    "humanoid": Preset(_PPO_SB3 | _ZOO_NET | dict(
        num_envs=1, num_steps=512, num_minibatches=2, gamma=0.95, lr=3.56987e-5,
        ent_coef=2.38306e-3, clip_coef=0.3, update_epochs=5, lam=0.9, max_grad_norm=2.0,
        vf_coef=_SB3_VF * 0.431892), "RL-Zoo ppo.yml Humanoid-v4 (tuned)", steps=10_000_000),
    "reacher": Preset(_PPO_SB3 | _SB3_NET | dict(
        num_envs=1, num_steps=512, num_minibatches=16, gamma=0.9, lr=1.04019e-4,
        ent_coef=7.52585e-8, clip_coef=0.3, update_epochs=5, lam=1.0, max_grad_norm=0.9,
        vf_coef=_SB3_VF * 0.950368), "RL-Zoo ppo.yml Reacher-v2 (tuned)"),
    "ant": Preset(_PPO_SB3_DEFAULTS, "RL-Zoo ppo.yml Ant-v4 (mujoco-defaults)"),
    "pusher": Preset(_PPO_SB3_DEFAULTS, "RL-Zoo ppo.yml mujoco-defaults (no Pusher entry)"),
    "halfcheetah-bullet": Preset(_PPO_BULLET, "RL-Zoo ppo.yml HalfCheetahBulletEnv-v0 (tuned)",
                                 steps=2_000_000),
    "ant-bullet": Preset(_PPO_BULLET | dict(init_log_std=-1.0),
                         "RL-Zoo ppo.yml AntBulletEnv-v0 (tuned)", steps=2_000_000),
    "walker2d-bullet": Preset(_PPO_BULLET, "RL-Zoo ppo.yml Walker2DBulletEnv-v0 (tuned; its "
                              "clip range anneals from 0.4, here constant)", steps=2_000_000),
    "hopper-bullet": Preset(_PPO_BULLET, "RL-Zoo ppo.yml HopperBulletEnv-v0 (tuned; its clip "
                            "range anneals from 0.4, here constant)", steps=2_000_000),
    "a1-walk": Preset(_PPO_BULLET | dict(init_log_std=-1.0), "RL-Zoo ppo.yml AntBulletEnv-v0, "
                      "the Zoo's PyBullet quadruped (no A1 entry)", steps=2_000_000),
}
_PPO_ARM = Preset(_PPO_SB3 | _ZOO_NET | dict(
    num_envs=8, num_steps=512, num_minibatches=64, gamma=0.99, lam=0.9, update_epochs=20,
    max_grad_norm=0.5, vf_coef=_SB3_VF * 0.5, lr=3e-5, clip_coef=0.4, init_log_std=-2.7),
    "RL-Zoo ppo.yml ReacherBulletEnv-v0 (tuned; the Zoo's PyBullet arm, no Panda entry)")
PPO |= dict.fromkeys(("panda-reach", "panda-reach-sparse", "panda-push", "panda-push-sparse"),
                     _PPO_ARM)
PPO |= dict.fromkeys(("cheetah-run", "hopper-hop", "walker-walk", "quadruped-walk",
                      "finger-spin", "reacher-easy", "manipulator-bring-ball"),
                     Preset(_PPO_CLEANRL, "CleanRL ppo_continuous_action.py defaults"))


# -- SAC --------------------------------------------------------------------------------------
_SMALL_NETS = dict(hidden=(128, 128))
"""128 x 128 instead of the Zoo's 256 x 256 for the MuJoCo robots: an update costs about half
the CPU time (hopper at 30k env steps, seed 0: 170 CPU s against 309, return 325 against 322;
SB3 at 256 x 256: 418 s, 279). Measured at 30k env steps only; not at the default 1M."""
_SAC_MUJOCO = Preset(dict(learning_starts=10_000) | _SMALL_NETS,
                     "RL-Zoo sac.yml mujoco-defaults (HalfCheetah-v3: SB3's SAC, the SAC "
                     "paper's settings, with 10k random steps), 128x128 networks")
_SAC_BULLET = dict(lr=7.3e-4, buffer_size=300_000, batch_size=256, gamma=0.98, tau=0.02,
                   train_freq=8, gradient_steps=8, learning_starts=10_000, hidden=(400, 300))
"""RL-Zoo sac.yml `pybullet-defaults` (HalfCheetahBulletEnv-v0, tuned; gSDE left out)."""
_SAC_DMC = Preset(dict(learning_starts=5_000),
                  "the SAC paper's settings (Haarnoja et al. 2018, 256x256, lr 3e-4, batch 256); "
                  "no Zoo entry for dm-control; 5 random episodes before learning")

SAC: dict[str, Preset] = dict.fromkeys(
    ("halfcheetah", "hopper", "walker2d", "ant", "reacher", "pusher"), _SAC_MUJOCO)
SAC["humanoid"] = Preset(_SAC_MUJOCO.fields, "RL-Zoo sac.yml Humanoid-v3 (mujoco-defaults)",
                         steps=2_000_000)
SAC |= {env: Preset(_SAC_BULLET, f"RL-Zoo sac.yml {zoo} (pybullet-defaults)")
        for env, zoo in (("halfcheetah-bullet", "HalfCheetahBulletEnv-v0"),
                         ("ant-bullet", "AntBulletEnv-v0"), ("a1-walk", "AntBulletEnv-v0"),
                         ("hopper-bullet", "HopperBulletEnv-v0"),
                         ("walker2d-bullet", "Walker2DBulletEnv-v0"))}
SAC |= dict.fromkeys(("panda-reach", "panda-reach-sparse", "panda-push", "panda-push-sparse"),
                     Preset(_SAC_BULLET, "RL-Zoo sac.yml ReacherBulletEnv-v0 (pybullet-defaults)",
                            steps=300_000))
SAC |= dict.fromkeys(("cheetah-run", "hopper-hop", "walker-walk", "quadruped-walk",
                      "finger-spin", "reacher-easy", "manipulator-bring-ball"), _SAC_DMC)


# -- TD3 (DDPG is its preset with TD3's additions off) -----------------------------------------
_TD3_MUJOCO = Preset(dict(learning_starts=10_000) | _SMALL_NETS,
                     "RL-Zoo td3.yml mujoco-defaults (10k random steps, Gaussian noise 0.1) over "
                     "the TD3 paper's settings (Fujimoto et al. 2018), 128x128 networks")
_TD3_BULLET = dict(gamma=0.98, buffer_size=200_000, learning_starts=10_000, lr=1e-3,
                   exploration_noise=0.1, hidden=(400, 300))
"""RL-Zoo td3.yml's tuned PyBullet entries (HalfCheetahBulletEnv-v0 etc.); their updates run
at each episode's end, as many as its steps, here one per step."""

TD3: dict[str, Preset] = dict.fromkeys(
    ("halfcheetah", "hopper", "walker2d", "ant", "reacher", "pusher", "humanoid"), _TD3_MUJOCO)
TD3 |= {env: Preset(_TD3_BULLET, f"RL-Zoo td3.yml {zoo} (tuned)")
        for env, zoo in (("halfcheetah-bullet", "HalfCheetahBulletEnv-v0"),
                         ("ant-bullet", "AntBulletEnv-v0"), ("a1-walk", "AntBulletEnv-v0"),
                         ("hopper-bullet", "HopperBulletEnv-v0"),
                         ("walker2d-bullet", "Walker2DBulletEnv-v0"))}
TD3 |= dict.fromkeys(("panda-reach", "panda-reach-sparse", "panda-push", "panda-push-sparse"),
                     Preset(_TD3_BULLET, "RL-Zoo td3.yml ReacherBulletEnv-v0 (tuned)",
                            steps=300_000))
TD3 |= dict.fromkeys(("cheetah-run", "hopper-hop", "walker-walk", "quadruped-walk",
                      "finger-spin", "reacher-easy", "manipulator-bring-ball"),
                     Preset(dict(learning_starts=5_000), "the TD3 paper's settings; no Zoo "
                            "entry for dm-control; 5 random episodes before learning"))
