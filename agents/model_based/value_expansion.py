"""Model-based value expansion (MVE) of an off-policy critic's target (SAC, TD3/DDPG).

Feinberg, Wan, Stoica, Jordan, Gonzalez, Levine (2018), "Model-Based Value Estimation for
Efficient Model-Free Reinforcement Learning", arXiv:1803.00101, section 3 and Algorithm 1 (the
"TD-k trick"): from a replay transition (s_0, a_0, r_0, s_1) the learned model imagines H - 1
more steps with the current policy, s_{t+1}, r_t ~ f(s_t, a_t), a_t ~ pi(s_t), and the critic is
trained on every expanded state s_0 .. s_{H-1} towards

    y_t = sum_{k=t}^{H-1} gamma^{k-t} r_k + gamma^{H-t} V'(s_H),        t = 0 .. H-1

cut at terminations (the env's known termination function in the model, the stored one at
t = 0): a terminating step's target is its reward, and the states after it drop out of J_Q
(their weight is 0; the others' weights are rescaled so J_Q stays a mean). As a recursion,

    y_{H-1} = r_{H-1} + gamma (1 - d_{H-1}) V'(s_H),
    y_t     = r_t + gamma (1 - d_t) (b_{t+1} + y_{t+1}),

V' is the algorithm's own bootstrap (TD3: min_i Q'_i(s_H, smoothed mu'(s_H)); SAC: the soft
value min_i Q'_i(s_H, a) - alpha log pi(a|s_H)) and b_t the entropy bonus -alpha log pi(a_t|s_t)
of an imagined action (SAC's soft Bellman backup; 0 for TD3). H = 1 is the ordinary one-step
target. The model is agents.model_based.learned_model.LearnedModel, refit on the schedule
MBPO uses (agents.model_based.model_schedule); until its first fit the target is the one-step
target. The imagined actions come from the current policy (TD3: mu(s) without exploration
noise; SAC: a sample), the rollout carries no gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from agents.model_based.model_schedule import ModelSchedule
from sim.registry import EnvInfo

Policy = Callable[[Tensor], tuple[Tensor, Tensor]]
"""s [B, obs] -> (a [B, act] of the current policy, entropy bonus b [B] of that action)."""
Value = Callable[[Tensor], Tensor]
"""s [B, obs] -> V'(s) [B], the bootstrap at the end of the expansion."""


def mve_targets(rewards: Tensor, discounts: Tensor, not_done: Tensor, bonus: Tensor,
                last_value: Tensor) -> Tensor:
    """y [H, B] of the TD-k trick (Feinberg et al. 2018, eq. 3) from rewards, discounts,
    not_done (bool) and bonus [H, B] (bonus[t] the entropy bonus of a_t; bonus[0] is unused,
    a_0 being the data's action) and last_value V'(s_H) [B]. A terminated step's target is its
    reward: what follows it is not used (torch.where, so a non-finite value there stays out)."""
    y = torch.empty_like(rewards)
    after = last_value
    for t in reversed(range(rewards.shape[0])):
        y[t] = rewards[t] + discounts[t] * torch.where(not_done[t], after, 0.0)
        after = bonus[t] + y[t]
    return y


def alive_mask(not_done: Tensor) -> Tensor:
    """m [H, B] (bool): m_0 = 1, m_t = m_{t-1} (1 - d_{t-1}); the states a rollout reached."""
    alive = torch.ones_like(not_done)
    alive[1:] = not_done[:-1].cumprod(0).bool()
    return alive


def soft(actor: nn.Module, critic_target: nn.Module, alpha: Tensor) -> tuple[Policy, Value]:
    """SAC's imagined actions a ~ pi(.|s) with bonus -alpha log pi(a|s), and its soft value
    V'(s) = min_i Q'_i(s, a) - alpha log pi(a|s)."""
    def policy(s: Tensor) -> tuple[Tensor, Tensor]:
        a, logp = actor.sample(s)  # type: ignore[operator]
        return a, -alpha * logp

    def value(s: Tensor) -> Tensor:
        a, logp = actor.sample(s)  # type: ignore[operator]
        return critic_target(s, a).min(0).values - alpha * logp

    return policy, value


def deterministic(actor: nn.Module, critic_target: nn.Module,
                  target_action: Callable[[Tensor], Tensor]) -> tuple[Policy, Value]:
    """TD3/DDPG's imagined actions mu(s) (no bonus), and V'(s) = min_i Q'_i(s, a'(s)) with the
    target policy's (smoothed) action a'(s)."""
    def policy(s: Tensor) -> tuple[Tensor, Tensor]:
        return actor(s), torch.zeros(s.shape[0], device=s.device)

    def value(s: Tensor) -> Tensor:
        return critic_target(s, target_action(s)).min(0).values

    return policy, value


class ValueExpansion:
    """The learned model of an SAC or TD3 agent and its H-step expansion of J_Q's batch."""

    def __init__(self, cfg: Any, info: EnvInfo, device: torch.device) -> None:
        if info.discrete:
            raise ValueError("model-based value expansion needs continuous actions")
        self.horizon, self.gamma = int(cfg.mve_horizon), float(cfg.gamma)
        self.schedule = ModelSchedule(cfg, info, device)

    @torch.no_grad()
    def expand(self, batch: dict[str, Tensor], y: Tensor, weights: Tensor | None,
               policy: Policy, value: Value) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """(obs, actions, y, weights) for J_Q: the batch's [B] with its one-step target `y`
        until the model is fit (or H = 1), else the H expanded states [H B] (t major, so the
        first B rows are the batch's own) with the MVE targets and weights m_t / mean(m)
        (times a prioritized batch's importance weights)."""
        if self.horizon == 1 or not self.schedule.ready:
            return batch["obs"], batch["actions"], y, weights
        model = self.schedule.model
        obs, acts = [batch["obs"]], [batch["actions"]]
        rewards, discounts = [batch["rewards"]], [batch["discount"]]
        not_done, bonus = [~batch["terminated"]], [torch.zeros_like(batch["rewards"])]
        s = batch["next_obs"]
        for _ in range(1, self.horizon):
            a, b = policy(s)
            s_next, r, done = model.step(s, a)
            obs.append(s)
            acts.append(a)
            rewards.append(r)
            discounts.append(torch.full_like(r, self.gamma))
            not_done.append(~done)
            bonus.append(b)
            s = s_next
        nd = torch.stack(not_done)
        targets = mve_targets(torch.stack(rewards), torch.stack(discounts), nd,
                              torch.stack(bonus), value(s))
        alive = alive_mask(nd)
        m = alive.to(targets.dtype)
        w = m / m.mean()
        if weights is not None:
            w = w * weights
        obs_x = torch.where(alive[..., None], torch.stack(obs), 0.0)
        y_x = torch.where(alive, targets, 0.0)
        return obs_x.flatten(0, 1), torch.stack(acts).flatten(0, 1), y_x.flatten(0, 1), \
            w.flatten(0, 1)


def new(cfg: Any, info: EnvInfo, device: torch.device) -> ValueExpansion | None:
    """The value expansion of an actor-critic config (None when mve_horizon is 0)."""
    return ValueExpansion(cfg, info, device) if cfg.mve_horizon > 0 else None
