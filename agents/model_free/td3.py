"""Twin Delayed DDPG (TD3), and DDPG as a preset of it.

Fujimoto, van Hoof, Meger (2018), "Addressing Function Approximation Error in Actor-Critic
Methods", arXiv:1802.09477. DDPG: Lillicrap, Hunt, Pritzel et al. (2016), "Continuous control
with deep reinforcement learning", arXiv:1509.02971 (CS285, Levine, lecture 8: Q-learning with
continuous actions).
TD3 adds three things to DDPG, each a setting here, so DDPG is n_critics=1, policy_delay=1,
target_policy_noise=0 (as in Stable-Baselines3):

    a'   = clip(mu'(s') + clip(sigma~ eps, -c, c), -1, 1)        target policy smoothing
    y    = r + gamma (1 - d) min_i Q'_i(s', a')                  clipped double Q
    J_Q  = sum_i E[(Q_i(s, a) - y)^2]
    J_mu = -E[Q_1(s, mu(s))]   every policy_delay critic steps, with the target updates

Exploration adds Gaussian noise N(0, sigma^2) to mu(s) in the normalized action space [-1, 1].
With prioritized replay (`prioritized`, Schaul et al. 2016, arXiv:1511.05952) J_Q weights each
sample by its importance weight, and the largest critic's |Q_i - y| becomes its priority.
With `pretrain` (a dataset of demonstrations, agents/model_free/pretrain.py) the actor is cloned
and the critics TD-trained on the demonstrations before the first env step, the demonstrations
join every batch, and J_mu becomes TD3+BC's (Fujimoto & Gu 2021, arXiv:2106.06860)
-lambda Q_1(s, mu(s)) + w || mu(s) - a ||^2 on them, lambda = alpha / mean |Q_1|.
With `rnd` > 0 (random network distillation, Burda et al. 2019, arXiv:1810.12894; CS285
lecture 13) every batch's rewards become r + rnd * r_i(s') / std(R_i), and the predictor f_hat
takes one step on the batch's next observations after each update.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.loops.off_policy import TD_ERROR, train_off_policy
from agents.model_based import value_expansion
from agents.model_based.model_schedule import nest_optim, unnest_optim
from agents.model_free import off_policy, pretrain, robot_presets
from agents.model_free.off_policy import (
    ActorCriticConfig,
    adam,
    new_replay,
    polyak_update,
    priority_error,
)
from agents.model_free.robot_presets import Preset, Presets
from agents.protocol import Algorithm
from agents.runs.config import require_number, require_positive
from models.actors import DeterministicActor
from models.export_heads import ScaledActionHead
from sim.registry import EnvInfo


@dataclass(frozen=True)
class TD3Config(ActorCriticConfig):
    """TD3 / DDPG hyperparameters (names as in the paper and Stable-Baselines3)."""

    lr: float = 1e-3
    """Adam learning rate of actor and critics."""
    policy_delay: int = 2
    """Critic steps per actor and target step (DDPG: 1)."""
    target_policy_noise: float = 0.2
    """sigma~ of the target policy smoothing noise (DDPG: 0)."""
    target_noise_clip: float = 0.5
    """c: the smoothing noise is clipped to [-c, c]."""
    exploration_noise: float = 0.1
    """sigma of the Gaussian exploration noise, in the [-1, 1] action space."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "policy_delay")
        require_number(self, "target_policy_noise", "target_noise_clip", "exploration_noise",
                       low=0.0)


def target_policy_smoothing(next_action: Tensor, eps: Tensor, sigma: float, clip: float) -> Tensor:
    """a' = clip(mu'(s') + clip(sigma eps, -c, c), -1, 1), eps ~ N(0, 1)."""
    return (next_action + (sigma * eps).clamp(-clip, clip)).clamp(-1.0, 1.0)


def td_target(rewards: Tensor, terminated: Tensor, discount: Tensor, next_q: Tensor) -> Tensor:
    """y = r + discount (1 - d) min_i Q'_i(s', a'), next_q [E, B]."""
    return rewards + discount * (~terminated).to(rewards.dtype) * next_q.min(0).values


def critic_loss(q: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
    """J_Q = sum_i mean_B (Q_i(s, a) - y)^2 for q [E, B], y [B]; with prioritized replay
    each sample's error is scaled by its importance weight w [B]."""
    sq = (q - y).square()
    if weights is not None:
        sq = sq * weights
    return sq.mean(1).sum()


def actor_loss(q1_pi: Tensor) -> Tensor:
    """J_mu = -mean Q_1(s, mu(s)): the deterministic policy gradient (Silver et al. 2014)."""
    return -q1_pi.mean()


class TD3:
    """TD3 (or DDPG) agent: act, learn from replay batches, save/load, export."""

    def __init__(self, cfg: TD3Config, info: EnvInfo, device: torch.device) -> None:
        if info.discrete:
            raise ValueError("TD3 and DDPG need continuous actions")
        self.cfg, self.info, self.device = cfg, info, device
        obs_dim, a_dim = info.obs_dim, info.act_dim
        self.actor = DeterministicActor(obs_dim, a_dim, hidden=cfg.hidden,
                                        activation=cfg.activation).to(device)
        self.critic, self.critic_target = off_policy.twin_critics(cfg, info, device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        # One optimizer: on critic-only steps the actor's grads are None and Adam skips them.
        self.opt = adam([*self.actor.parameters(), *self.critic.parameters()], cfg.lr)
        self.replay = new_replay(cfg, info, device)
        self.demos = pretrain.Demonstrations(cfg, info, device) if cfg.pretrain else None
        self.rnd = off_policy.new_bonus(cfg, info, device)  # random network distillation
        if self.rnd is not None:
            self.rnd_opt = self.rnd.opt  # an attribute, so checkpoint checks see both optimizers
        self.mve = value_expansion.new(cfg, info, device)  # model-based value expansion
        if self.mve is not None:
            self.model_opt = self.mve.schedule.model.opt  # seen by the checkpoint checks
        self.updates = 0
        self._targets: list[Tensor] = [*self.actor_target.parameters(),
                                       *self.critic_target.parameters()]
        self._online: list[Tensor] = [*self.actor.parameters(), *self.critic.parameters()]
        self._last_actor_loss = torch.zeros((), device=device)
        self._last_bc_loss = torch.zeros((), device=device)

    # -- acting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """mu(s) in [-1, 1] for observations [B, obs_dim], plus exploration noise unless
        deterministic."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        a = self.actor(obs)
        if deterministic:
            return a
        return (a + self.cfg.exploration_noise * torch.randn_like(a)).clamp(-1.0, 1.0)

    def explore(self, obs: Tensor, step: int) -> Tensor:
        """mu(s) plus exploration noise (pre-trained on the demonstrations first, with
        `pretrain`)."""
        if self.demos is not None and not self.demos.pretrained:
            self.demos.pretrain(self)
        if self.mve is not None:  # MVE's model is refit every model_train_freq env steps
            self.mve.schedule.refit_when_due(self.replay, step)
        return self.act(obs)

    # -- learning -------------------------------------------------------------------------------
    def losses(self, batch: dict[str, Tensor], *, with_actor: bool = True,
               demo: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """J_Q and (with_actor) J_mu on one batch, each reaching only its own parameters; with a
        demonstration batch, on both, and J_mu with TD3+BC's term on the demonstrations."""
        n_online = batch["obs"].shape[0]
        if demo is not None:
            batch = pretrain.concat(batch, demo)
        cfg, obs, next_obs = self.cfg, batch["obs"], batch["next_obs"]
        with torch.no_grad():
            y = td_target(batch["rewards"], batch["terminated"], batch["discount"],
                          self.critic_target(next_obs, self._target_action(next_obs)))
        obs_q, act_q, weights = obs, batch["actions"], batch.get("weights")
        if self.mve is not None:  # J_Q on the model-expanded states and their H-step targets
            pv = value_expansion.deterministic(self.actor, self.critic_target, self._target_action)
            obs_q, act_q, y, weights = self.mve.expand(batch, y, weights, *pv)
        q = self.critic(obs_q, act_q)
        out = {"critic_loss": critic_loss(q, y, weights)}
        if "weights" in batch:  # prioritized replay: the new priorities
            out[TD_ERROR] = priority_error(q, y)[:n_online]
        if with_actor:
            pi = self.actor(obs)
            q1_pi = self.critic(obs, pi, detach_params=True, member=0)
            out["actor_loss"] = actor_loss(q1_pi)
            if demo is not None:  # the demonstrations are the last rows of the batch
                pi_demo = pi[n_online:]
                out["actor_loss"] = pretrain.td3_bc_actor_loss(
                    out["actor_loss"], q1_pi, pi_demo, demo["actions"],
                    pretrain.bc_weight_at(cfg, self.updates), cfg.bc_alpha)
                self._last_bc_loss = pretrain.bc_loss(pi_demo, demo["actions"]).detach()
        out["q"] = q.detach().mean()
        return out

    def _target_action(self, next_obs: Tensor) -> Tensor:
        """a' = mu'(s'), with target policy smoothing when target_policy_noise > 0."""
        next_a = self.actor_target(next_obs)
        if self.cfg.target_policy_noise > 0:
            next_a = target_policy_smoothing(next_a, torch.randn_like(next_a),
                                             self.cfg.target_policy_noise,
                                             self.cfg.target_noise_clip)
        return next_a

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One critic step; every policy_delay steps also an actor step and the target update."""
        delayed = (self.updates + 1) % self.cfg.policy_delay == 0
        demo = None
        if self.demos is not None:
            if not self.demos.pretrained:
                self.demos.pretrain(self)
            demo = self.demos.sample()
        if self.rnd is not None:  # r + rnd * r_i / std(R_i) on the online transitions
            batch = batch | {"rewards": off_policy.intrinsic_rewards(self.rnd, batch,
                                                                     self.cfg.rnd)}
        terms = self.losses(batch, with_actor=delayed, demo=demo)
        total = terms["critic_loss"] + terms["actor_loss"] if delayed else terms["critic_loss"]
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        self.updates += 1
        if delayed:
            polyak_update(self._targets, self._online, self.cfg.tau)
            self._last_actor_loss = terms["actor_loss"].detach()
        terms["actor_loss"] = self._last_actor_loss
        if demo is not None:
            terms["bc_loss"] = self._last_bc_loss
        if self.rnd is not None:
            terms["rnd_loss"] = self.rnd.step(self.rnd.inputs(batch["next_obs"]))
        if self.mve is not None:
            terms |= self.mve.schedule.terms
        return {k: v.detach() for k, v in terms.items()}

    def pretrain_update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One pre-training step on demonstrations: || mu(s) - a ||^2 for the actor and J_Q for
        the critics, then the target update of both."""
        bc = pretrain.bc_loss(self.actor(batch["obs"]), batch["actions"])
        critic = self.losses(batch, with_actor=False)["critic_loss"]
        self.opt.zero_grad(set_to_none=True)
        (critic + bc).backward()
        self.opt.step()
        polyak_update(self._targets, self._online, self.cfg.tau)
        return {"critic_loss": critic.detach(), "bc_loss": bc.detach()}

    # -- state and export -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                 "actor_target": self.actor_target.state_dict(),
                 "critic_target": self.critic_target.state_dict(), "updates": self.updates,
                 "last_actor_loss": self._last_actor_loss, "optim": self.opt.state_dict()}
        if self.rnd is not None:  # two optimizers, filed as PPO files them
            state |= {"rnd": self.rnd.state_dict(),
                      "optim": {"agent": state["optim"], "rnd": self.rnd_opt.state_dict()}}
        if self.demos is not None:
            state["demos"] = self.demos.state_dict() | {"last_bc_loss": self._last_bc_loss}
        return state if self.mve is None else nest_optim(state, "mve", self.mve.schedule)

    def load_state_dict(self, state: dict) -> None:
        if self.mve is not None:
            state = unnest_optim(state, "mve", self.mve.schedule)
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        self.updates = int(state["updates"])
        self._last_actor_loss = state["last_actor_loss"].to(self.device)
        if self.rnd is None:
            self.opt.load_state_dict(state["optim"])
        else:
            self.opt.load_state_dict(state["optim"]["agent"])
            self.rnd_opt.load_state_dict(state["optim"]["rnd"])
            self.rnd.load_state_dict(state["rnd"])
        if self.demos is not None:
            self.demos.load_state_dict(state["demos"])
            self._last_bc_loss = state["demos"]["last_bc_loss"].to(self.device)

    def inference_module(self) -> nn.Module:
        """obs -> mu(s) scaled to the robot's units, on CPU, for export."""
        low, high = torch.tensor(self.info.action_low), torch.tensor(self.info.action_high)
        return ScaledActionHead(None, self.actor, low, high).cpu().eval()


DDPG: dict[str, Any] = dict(n_critics=1, policy_delay=1, target_policy_noise=0.0)
"""What turns TD3 into DDPG (one critic, no delay, no target smoothing)."""


_TUNED = Presets({
    # RL-Zoo's gamma and lr, but 64x64 networks (cheap on CPU) and 1k instead of 10k random
    # steps before learning (BENCHMARKS.md).
    "pendulum": Preset(dict(gamma=0.98, hidden=(64, 64), buffer_size=200_000,
                            learning_starts=1_000),
                       "RL-Zoo td3.yml Pendulum, retuned here (BENCHMARKS.md)", 20_000),
    "inverted-pendulum": Preset(dict(buffer_size=100_000, learning_starts=1_000),
                                "measured here (BENCHMARKS.md)", 50_000),
} | robot_presets.TD3)


def preset(env: str) -> TD3Config:
    """Per-env defaults: the small envs tuned here, the robots from
    agents/model_free/robot_presets.py; see BENCHMARKS.md for how they compare with SB3."""
    return TD3Config(**_TUNED.fields(env))


def ddpg_preset(env: str) -> TD3Config:
    """DDPG: the TD3 preset for `env` with TD3's three additions turned off."""
    return replace(preset(env), **DDPG)


ALGORITHMS = (
    Algorithm(
        name="td3", config_cls=TD3Config, preset=preset, make_agent=TD3, loop=train_off_policy,
        actions=("continuous",), default_steps=_TUNED.steps(off_policy.continuous_control_steps),
        preset_source=_TUNED.source,
        description="Twin Delayed DDPG (Fujimoto et al. 2018), off-policy, deterministic.",
        check=off_policy.check_inputs,
    ),
    Algorithm(
        name="ddpg", config_cls=TD3Config, preset=ddpg_preset, make_agent=TD3,
        loop=train_off_policy, actions=("continuous",),
        default_steps=_TUNED.steps(off_policy.continuous_control_steps),
        preset_source=_TUNED.source,
        description="Deep Deterministic Policy Gradient (Lillicrap et al. 2016): TD3's preset "
                    "with one critic, no delay, no target smoothing.",
        check=off_policy.check_inputs,
    ),
)
