"""Soft Actor-Critic with twin critics and automatic entropy tuning.

Haarnoja, Zhou, Abbeel, Levine (2018), "Soft Actor-Critic: Off-Policy Maximum Entropy Deep
Reinforcement Learning with a Stochastic Actor", arXiv:1801.01290; Haarnoja, Zhou, Hartikainen
et al. (2018), "Soft Actor-Critic Algorithms and Applications", arXiv:1812.05905 (twin critics,
learned temperature). CS285 (Levine, lectures 18-19) derives it as soft Q-learning from
control as inference.

    y          = r + gamma (1 - d) (min_i Q'_i(s', a') - alpha log pi(a'|s')),   a' ~ pi(.|s')
    J_Q        = 1/2 sum_i E[(Q_i(s, a) - y)^2]
    J_pi       = E[alpha log pi(a~|s) - min_i Q_i(s, a~)],   a~ = tanh(mu + sigma eps)
    J(alpha)   = E[-alpha (log pi(a~|s) + H_target)],        H_target = -dim(A)

The twin critics are one batched ensemble (models.ensemble.QEnsemble); targets follow by Polyak
averaging. As in the paper's Algorithm 1, the three gradient steps of an update are taken from
the same parameters: the three losses have disjoint parameters (the actor's loss sees the
critics' weights as constants, the temperature's loss sees log pi as a constant), so one
backward pass and one fused Adam step do all three. With prioritized replay (`prioritized`,
Schaul et al. 2016, arXiv:1511.05952) J_Q weights each sample by its importance weight, and
the largest critic's |Q_i - y| becomes the sample's priority. With `pretrain` (a dataset of
demonstrations, agents/model_free/pretrain.py) the actor is cloned and the critics TD-trained on
the demonstrations before the first env step, the demonstrations join every batch, and J_pi
becomes TD3+BC's lambda J_pi + w || tanh(mu(s)) - a ||^2 on them (Fujimoto & Gu 2021).
With `rnd` > 0 (random network distillation, Burda et al. 2019, arXiv:1810.12894; CS285
lecture 13) every batch's rewards become r + rnd * r_i(s') / std(R_i), and the predictor f_hat
takes one step on the batch's next observations after each update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
from agents.runs.config import require_number, require_positive, require_sizes
from models.actors import SquashedGaussianActor
from models.export_heads import ScaledActionHead
from sim.registry import EnvInfo


@dataclass(frozen=True)
class SACConfig(ActorCriticConfig):
    """SAC hyperparameters (names as in the paper and Stable-Baselines3)."""

    init_alpha: float = 1.0
    """Initial temperature alpha."""
    autotune: bool = True
    """Learn alpha to keep the policy's entropy near target_entropy; else alpha = init_alpha."""
    target_entropy: float | None = None
    """Entropy target H_target (default -dim(A), the paper's heuristic)."""
    target_update_interval: int = 1
    """Gradient steps between target updates."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "target_update_interval")
        require_number(self, "init_alpha", low=0.0, low_open=True)
        require_number(self, "target_entropy", optional=True)
        require_sizes(self, "hidden", allow_empty=False)  # the actor's trunk needs a layer


def soft_td_target(
    rewards: Tensor, terminated: Tensor, discount: Tensor, next_q: Tensor, next_logp: Tensor,
    alpha: Tensor | float,
) -> Tensor:
    """y = r + discount (1 - d) (min_i Q'_i(s', a') - alpha log pi(a'|s')); next_q is [E, B]."""
    soft_v = next_q.min(0).values - alpha * next_logp
    return rewards + discount * (~terminated).to(rewards.dtype) * soft_v


def critic_loss(q: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
    """J_Q = 1/2 sum_i mean_B (Q_i(s, a) - y)^2 for q [E, B], y [B]; with prioritized replay
    each sample's error is scaled by its importance weight w [B]."""
    sq = (q - y).square()
    if weights is not None:
        sq = sq * weights
    return 0.5 * sq.mean(1).sum()


def actor_loss(logp: Tensor, q_pi: Tensor, alpha: Tensor | float) -> Tensor:
    """J_pi = mean(alpha log pi(a~|s) - min_i Q_i(s, a~)) for logp [B], q_pi [E, B]."""
    return (alpha * logp - q_pi.min(0).values).mean()


def temperature_loss(log_alpha: Tensor, logp: Tensor, target_entropy: float) -> Tensor:
    """J(alpha) = mean(-alpha (log pi + H_target)), on log alpha (positive alpha, better steps).

    log pi is detached: this loss moves the temperature only.
    """
    return -(log_alpha * (logp.detach() + target_entropy)).mean()


class SAC:
    """SAC agent: act, learn from replay batches, save/load, export."""

    def __init__(self, cfg: SACConfig, info: EnvInfo, device: torch.device) -> None:
        if info.discrete:
            raise ValueError("SAC needs continuous actions")
        self.cfg, self.info, self.device = cfg, info, device
        obs_dim, a_dim = info.obs_dim, info.act_dim
        self.actor = SquashedGaussianActor(obs_dim, a_dim, hidden=cfg.hidden,
                                           activation=cfg.activation).to(device)
        self.critic, self.critic_target = off_policy.twin_critics(cfg, info, device)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.init_alpha), device=device),
                                      requires_grad=cfg.autotune)
        self.target_entropy = (cfg.target_entropy if cfg.target_entropy is not None
                               else -float(a_dim))
        params = [*self.actor.parameters(), *self.critic.parameters()]
        self.opt = adam(params + [self.log_alpha] if cfg.autotune else params, cfg.lr)
        self.replay = new_replay(cfg, info, device)
        self.demos = pretrain.Demonstrations(cfg, info, device) if cfg.pretrain else None
        self.rnd = off_policy.new_bonus(cfg, info, device)  # random network distillation
        if self.rnd is not None:
            self.rnd_opt = self.rnd.opt  # an attribute, so checkpoint checks see both optimizers
        self.mve = value_expansion.new(cfg, info, device)  # model-based value expansion
        if self.mve is not None:
            self.model_opt = self.mve.schedule.model.opt  # seen by the checkpoint checks
        self.updates = 0
        self._targets: list[Tensor] = list(self.critic_target.parameters())
        self._online: list[Tensor] = list(self.critic.parameters())

    # -- acting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """Actions in [-1, 1] for observations [B, obs_dim]: tanh(mu(s)) or a sample."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        return self.actor(obs) if deterministic else self.actor.sample(obs)[0]

    def explore(self, obs: Tensor, step: int) -> Tensor:
        """A sample of pi(.|s): SAC explores through its own stochastic policy (pre-trained on
        the demonstrations first, with `pretrain`)."""
        if self.demos is not None and not self.demos.pretrained:
            self.demos.pretrain(self)
        if self.mve is not None:  # MVE's model is refit every model_train_freq env steps
            self.mve.schedule.refit_when_due(self.replay, step)
        return self.act(obs)

    # -- learning -------------------------------------------------------------------------------
    def losses(self, batch: dict[str, Tensor], demo: dict[str, Tensor] | None = None
               ) -> dict[str, Tensor]:
        """J_Q, J_pi and J(alpha) on one batch, each reaching only its own parameters; with a
        demonstration batch, on both, and J_pi with TD3+BC's term on the demonstrations."""
        n_online = batch["obs"].shape[0]
        if demo is not None:
            batch = pretrain.concat(batch, demo)
        obs, next_obs = batch["obs"], batch["next_obs"]
        B = obs.shape[0]
        alpha = self.log_alpha.detach().exp()
        # One actor pass over s and s' (small nets on CPU are bound by op count, not FLOPs);
        # the s' half only feeds the no-grad target, so it adds nothing to the actor's gradient.
        a_all, logp_all = self.actor.sample(torch.cat([obs, next_obs]))
        a_pi, logp_pi = a_all[:B], logp_all[:B]
        with torch.no_grad():
            next_a, next_logp = a_all[B:].detach(), logp_all[B:].detach()
            y = soft_td_target(batch["rewards"], batch["terminated"], batch["discount"],
                               self.critic_target(next_obs, next_a), next_logp, alpha)
        obs_q, act_q, weights = obs, batch["actions"], batch.get("weights")
        if self.mve is not None:  # J_Q on the model-expanded states and their H-step targets
            obs_q, act_q, y, weights = self.mve.expand(
                batch, y, weights, *value_expansion.soft(self.actor, self.critic_target, alpha))
        q = self.critic(obs_q, act_q)
        q_pi = self.critic(obs, a_pi, detach_params=True)
        out = {"critic_loss": critic_loss(q, y, weights),
               "actor_loss": actor_loss(logp_pi, q_pi, alpha)}
        if demo is not None:
            pi_demo = self.actor(demo["obs"])  # tanh(mu(s)), the policy's deterministic action
            out["actor_loss"] = pretrain.td3_bc_actor_loss(
                out["actor_loss"], q_pi.min(0).values, pi_demo, demo["actions"],
                pretrain.bc_weight_at(self.cfg, self.updates), self.cfg.bc_alpha)
            out["bc_loss"] = pretrain.bc_loss(pi_demo, demo["actions"]).detach()
        if self.cfg.autotune:
            out["alpha_loss"] = temperature_loss(self.log_alpha, logp_pi, self.target_entropy)
        out |= {"alpha": alpha, "entropy": -logp_pi.detach().mean(), "q": q.detach().mean()}
        if "weights" in batch:  # prioritized replay: the new priorities
            out[TD_ERROR] = priority_error(q, y)[:n_online]
        return out

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One gradient step of critics, actor and temperature; terms as tensors (no sync)."""
        demo = None
        if self.demos is not None:
            if not self.demos.pretrained:
                self.demos.pretrain(self)
            demo = self.demos.sample()
        if self.rnd is not None:  # r + rnd * r_i / std(R_i) on the online transitions
            batch = batch | {"rewards": off_policy.intrinsic_rewards(self.rnd, batch,
                                                                     self.cfg.rnd)}
        terms = self.losses(batch, demo)
        total = terms["critic_loss"] + terms["actor_loss"] + terms.get("alpha_loss", 0.0)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        self.updates += 1
        if self.updates % self.cfg.target_update_interval == 0:
            polyak_update(self._targets, self._online, self.cfg.tau)
        if self.rnd is not None:
            terms["rnd_loss"] = self.rnd.step(self.rnd.inputs(batch["next_obs"]))
        if self.mve is not None:
            terms |= self.mve.schedule.terms
        return {k: v.detach() for k, v in terms.items()}

    def pretrain_update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One pre-training step on demonstrations: || tanh(mu(s)) - a ||^2 for the actor and
        J_Q for the critics (the temperature is left as it is), then the target update."""
        bc = pretrain.bc_loss(self.actor(batch["obs"]), batch["actions"])
        critic = self.losses(batch)["critic_loss"]
        self.opt.zero_grad(set_to_none=True)
        (critic + bc).backward()
        self.opt.step()
        polyak_update(self._targets, self._online, self.cfg.tau)
        return {"critic_loss": critic.detach(), "bc_loss": bc.detach()}

    # -- state and export -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                 "critic_target": self.critic_target.state_dict(),
                 "log_alpha": self.log_alpha.detach(), "updates": self.updates,
                 "optim": self.opt.state_dict()}
        if self.rnd is not None:  # two optimizers, filed as PPO files them
            state |= {"rnd": self.rnd.state_dict(),
                      "optim": {"agent": state["optim"], "rnd": self.rnd_opt.state_dict()}}
        if self.demos is not None:
            state["demos"] = self.demos.state_dict()
        return state if self.mve is None else nest_optim(state, "mve", self.mve.schedule)

    def load_state_dict(self, state: dict) -> None:
        if self.mve is not None:
            state = unnest_optim(state, "mve", self.mve.schedule)
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.updates = int(state["updates"])
        if self.rnd is None:
            self.opt.load_state_dict(state["optim"])
        else:
            self.opt.load_state_dict(state["optim"]["agent"])
            self.rnd_opt.load_state_dict(state["optim"]["rnd"])
            self.rnd.load_state_dict(state["rnd"])
        if self.demos is not None:
            self.demos.load_state_dict(state["demos"])

    def inference_module(self) -> nn.Module:
        """obs -> tanh(mu(s)) scaled to the robot's units, on CPU, for export."""
        low, high = torch.tensor(self.info.action_low), torch.tensor(self.info.action_high)
        return ScaledActionHead(None, self.actor, low, high).cpu().eval()


_TUNED = Presets({
    # Small networks are 4x cheaper per update on CPU than SB3's 256x256, and two updates per
    # env step reach the target in fewer env steps (BENCHMARKS.md).
    "pendulum": Preset(dict(lr=1e-3, hidden=(64, 64), gradient_steps=2, buffer_size=20_000),
                       "measured here beside RL-Zoo's Pendulum-v1 (BENCHMARKS.md)", 20_000),
    # 128x128 at lr 1e-3: ~3x cheaper per update than 256x256 and no slower to learn here.
    "inverted-pendulum": Preset(dict(lr=1e-3, hidden=(128, 128), buffer_size=100_000),
                                "measured here (BENCHMARKS.md)", 50_000),
} | robot_presets.SAC)


def preset(env: str) -> SACConfig:
    """Per-env defaults: the small envs tuned here, the robots from
    agents/model_free/robot_presets.py; see BENCHMARKS.md for how they compare with SB3."""
    return SACConfig(**_TUNED.fields(env))


ALGORITHMS = (
    Algorithm(
        name="sac", config_cls=SACConfig, preset=preset, make_agent=SAC, loop=train_off_policy,
        actions=("continuous",), default_steps=_TUNED.steps(off_policy.continuous_control_steps),
        preset_source=_TUNED.source,
        description="Soft Actor-Critic (Haarnoja et al. 2018), off-policy, maximum entropy.",
        check=off_policy.check_inputs,
    ),
)
