"""What SAC, TD3/DDPG and DQN share: replay and loop settings, target updates, optimizers.

The loop itself is `agents.loops.off_policy.train_off_policy`; an off-policy agent satisfies
`agents.protocol.OffPolicyAgent` (explore, update, act, a `data.replay.ReplayBuffer`, and a
config with the loop settings below).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from agents.model_based.learned_model import ModelConfig, check_model_reward
from agents.model_free import pretrain
from agents.model_free.rnd import RND
from agents.runs.config import (
    available_memory,
    format_bytes,
    require,
    require_number,
    require_positive,
    require_sizes,
)
from data.replay import PrioritizedReplayBuffer, ReplayBuffer
from models.critics import QEnsemble
from sim.registry import EnvInfo


@dataclass(frozen=True)
class OffPolicyConfig:
    """Replay and loop settings of every off-policy algorithm (names as in Stable-Baselines3)."""

    num_envs: int = 1
    """Parallel environments (gymnasium.vector); every vector step adds num_envs transitions."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (preallocated on the training device)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_starts: int = 100
    """Env steps of uniformly random actions before the first update."""
    train_freq: int = 1
    """Vector-env steps between rounds of updates."""
    gradient_steps: int = 1
    """Gradient steps per round of updates."""
    gamma: float = 0.99
    """Discount factor."""
    prioritized: bool = False
    """Prioritized experience replay (Schaul et al. 2016, proportional): sample transitions in
    proportion to their last |TD error|, weight their losses by importance weights."""
    per_alpha: float = 0.6
    """PER's alpha: priorities are (|TD error| + per_eps)^alpha (0: uniform)."""
    per_beta0: float = 0.4
    """PER's beta at the start; the importance-weight exponent rises linearly to 1 at the end
    of the step budget (1: fully corrects the sampling bias)."""
    per_eps: float = 1e-6
    """PER's epsilon, added to |TD error| so no transition's priority is 0."""

    def __post_init__(self) -> None:
        require_positive(self, "num_envs", "buffer_size", "batch_size", "train_freq",
                         "gradient_steps")
        require(isinstance(self.learning_starts, int) and self.learning_starts >= 0,
                "learning_starts", self.learning_starts, "an integer >= 0")
        require_number(self, "gamma", "per_beta0", low=0.0, high=1.0)
        require_number(self, "per_alpha", low=0.0)
        require_number(self, "per_eps", low=0.0, low_open=True)


@dataclass(frozen=True)
class ActorCriticConfig(OffPolicyConfig, ModelConfig):
    """The networks and target updates of the continuous-action actor-critics (SAC, TD3/DDPG);
    the model settings (ModelConfig) serve mve_horizon."""

    lr: float = 3e-4
    """Adam learning rate of actor, critics and temperature."""
    tau: float = 0.005
    """Polyak weight of the online networks in the target update."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of actor and critics."""
    activation: str = "relu"
    """Hidden activation: relu, tanh, elu or silu."""
    n_critics: int = 2
    """Critics in the ensemble; the target takes their minimum (clipped double Q; DDPG: 1)."""
    pretrain: str = ""
    """Dataset folder (kinema collect) of demonstrations to pre-train on and keep in the
    replay, with a TD3+BC term in the actor loss (agents/model_free/pretrain.py; '': none)."""
    pretrain_steps: int = 2_000
    """Gradient steps of pre-training (BC of the actor, TD of the critics) on the demos."""
    demo_ratio: float = 0.25
    """Demonstrations added to every batch, as a fraction of batch_size."""
    bc_weight: float = 1.0
    """Weight of the BC term || pi(s) - a ||^2 on the demos in the actor loss."""
    bc_alpha: float = 2.5
    """TD3+BC's alpha: the RL term is scaled by lambda = alpha / mean |Q(s, pi(s))|."""
    bc_decay_steps: int = 0
    """Gradient steps over which bc_weight decays linearly to 0 (0: constant)."""
    rnd: float = 0.0
    """Random network distillation: the reward becomes r + rnd * r_i / std(R_i), the intrinsic
    reward of agents/model_free/rnd.py (Burda et al. 2019); 0 turns RND off."""
    rnd_int_gamma: float = 0.99
    """Discount of the non-episodic intrinsic return R_i whose std scales r_i."""
    rnd_update_proportion: float = 0.25
    """Fraction of each batch the predictor f_hat is trained on (paper: 0.25)."""
    rnd_hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the RND target f and predictor f_hat."""
    rnd_features: int = 64
    """Output features of f and f_hat."""
    mve_horizon: int = 0
    """H of model-based value expansion (Feinberg et al. 2018): the critic's target expands H
    steps through a learned model (agents/model_based/value_expansion.py); 0 turns it off."""

    def __post_init__(self) -> None:
        super().__post_init__()
        ModelConfig.__post_init__(self)
        require(isinstance(self.mve_horizon, int) and not isinstance(self.mve_horizon, bool)
                and self.mve_horizon >= 0, "mve_horizon", self.mve_horizon, "an integer >= 0")
        require_positive(self, "n_critics")
        require(isinstance(self.pretrain, str), "pretrain", self.pretrain, "a dataset folder")
        for name in ("pretrain_steps", "bc_decay_steps"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= 0, name, v,
                    "an integer >= 0")
        require_number(self, "demo_ratio", low=0.0, high=1.0, low_open=True)
        require_number(self, "bc_weight", low=0.0)
        require_number(self, "bc_alpha", low=0.0, low_open=True)
        require_number(self, "rnd", low=0.0)
        require_number(self, "rnd_int_gamma", low=0.0, high=1.0)
        require_number(self, "rnd_update_proportion", low=0.0, high=1.0, low_open=True)
        require_sizes(self, "rnd_hidden", allow_empty=False)
        require_positive(self, "rnd_features")
        require_number(self, "lr", low=0.0, low_open=True)
        require_number(self, "tau", low=0.0, high=1.0, low_open=True)
        require_sizes(self, "hidden")


def new_bonus(cfg: ActorCriticConfig, info: EnvInfo, device: torch.device) -> RND | None:
    """The RND bonus of `cfg` (None when rnd is 0, so a run without it draws the same numbers).

    The off-policy loop feeds it every next observation it stores (`RND.rewards`: the running
    observation and intrinsic-return statistics); the agent adds the bonus to the rewards of
    each batch (`intrinsic_rewards`) and trains f_hat on the batch's next observations.
    """
    if cfg.rnd <= 0:
        return None
    return RND(info.obs_dim, cfg.num_envs, int_gamma=cfg.rnd_int_gamma,
               update_proportion=cfg.rnd_update_proportion, lr=cfg.lr, hidden=cfg.rnd_hidden,
               features=cfg.rnd_features, device=device)


def intrinsic_rewards(bonus: RND, batch: dict[str, Tensor], coef: float) -> Tensor:
    """r + coef * r_i(s') / std(R_i) for a replay batch: the novelty of its next observations
    under the current predictor, scaled by the running std of the intrinsic return (Burda et
    al. 2019, section 2.4), which the loop's `RND.rewards` keeps."""
    stats = bonus.return_stats
    std = (stats.var + stats.eps).sqrt().to(batch["rewards"].dtype)
    return batch["rewards"] + coef * bonus.novelty(batch["next_obs"]) / std


def twin_critics(cfg: ActorCriticConfig, info: EnvInfo, device: torch.device
                 ) -> tuple[QEnsemble, QEnsemble]:
    """The n_critics critics Q_i(s, a) as one batched ensemble, and their Polyak target."""
    critic = QEnsemble(info.obs_dim, info.act_dim, ensemble_size=cfg.n_critics,
                       hidden=cfg.hidden, activation=cfg.activation).to(device)
    return critic, copy.deepcopy(critic).requires_grad_(False)


def continuous_control_steps(env: str) -> int:
    """Default budget of SAC, TD3 and DDPG: enough to solve the small envs, else 1M."""
    return {"pendulum": 20_000, "inverted-pendulum": 50_000}.get(env, 1_000_000)


def replay_bytes(cfg: OffPolicyConfig, info: EnvInfo) -> int:
    """Bytes the replay buffer of `cfg` preallocates (with its sum tree when prioritized)."""
    slots = (cfg.buffer_size // cfg.num_envs) * cfg.num_envs
    # the sum tree: 2 L float64 nodes, L the slots rounded up to a power of two (data/sum_tree.py)
    tree = 2 * 8 * (1 << max(1, (slots - 1).bit_length())) if cfg.prioritized else 0
    return slots * _transition_bytes(info) + tree


def _transition_bytes(info: EnvInfo) -> int:
    """One transition in data/replay.py's layout: float32 obs and next_obs, int64 or float32
    actions, a float32 reward, bool terminated and truncated."""
    obs = math.prod(info.obs_shape) * 4
    return 2 * obs + (8 if info.discrete else info.act_dim * 4) + 4 + 1 + 1


def check_replay_memory(cfg: OffPolicyConfig, info: EnvInfo, device: torch.device) -> None:
    """Refuse a buffer_size whose buffer would not fit in the memory free on `device` now,
    before anything is allocated (an allocation that large fails inside torch, or gets the
    process killed by the system once its pages are touched)."""
    need, free = replay_bytes(cfg, info), available_memory(device)
    if free is None or need <= free:
        return
    raise ValueError(f"--buffer-size {cfg.buffer_size} needs {format_bytes(need)} for the replay "
                     f"buffer on {device.type}, but only {format_bytes(free)} is free there; at "
                     f"most {free // _transition_bytes(info)} transitions fit")


def new_replay(cfg: OffPolicyConfig, info: EnvInfo, device: torch.device, *,
               n_step: int = 1) -> ReplayBuffer:
    """The replay buffer of `cfg`: uniform, or prioritized (PER) when cfg.prioritized."""
    check_replay_memory(cfg, info, device)
    args = (cfg.buffer_size, cfg.num_envs, info.obs_shape,
            () if info.discrete else (info.act_dim,))
    kwargs: dict[str, Any] = dict(discrete=info.discrete, device=device, n_step=n_step,
                                  gamma=cfg.gamma)
    if cfg.prioritized:
        return PrioritizedReplayBuffer(*args, **kwargs, alpha=cfg.per_alpha, eps=cfg.per_eps)
    return ReplayBuffer(*args, **kwargs)


def priority_error(q: Tensor, y: Tensor) -> Tensor:
    """|delta| [B] that become the new priorities of an ensemble's batch: the largest of the
    critics' |Q_i(s, a) - y| for q [E, B], y [B], as Fujimoto, Meger, Precup (2020, "An
    Equivalence between Loss Functions and Non-Uniform Sampling in Experience Replay",
    arXiv:2007.06049) prioritize TD3's twin critics."""
    return (q.detach() - y).abs().max(0).values


def adam(params: Iterable[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel: one kernel per step for all parameters, CPU or CUDA."""
    return torch.optim.Adam(params, lr=lr, fused=True)


@torch.no_grad()
def polyak_update(target: list[Tensor], online: list[Tensor], tau: float) -> None:
    """theta' <- (1 - tau) theta' + tau theta for every pair, as one fused foreach op.

    tau is the weight of the online parameters (Lillicrap et al. 2016; Fujimoto et al. 2018);
    CS285's lecture on Q-learning writes the same update with tau' = 1 - tau. tau = 1 is a hard
    copy (DQN).
    """
    torch._foreach_lerp_(target, online, tau)


def check_inputs(cfg: Any, env: str) -> None:
    """Before the run folder exists: a `pretrain` dataset must be readable (pretrain.check)
    and a known model reward must exist for `env` (check_model_reward)."""
    pretrain.check(cfg, env)
    check_model_reward(cfg, env)
