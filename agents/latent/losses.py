"""TD-MPC2's loss terms as pure functions (agents/latent/tdmpc.py writes out the equations).

Hansen, Su, Wang (2024), "TD-MPC2", arXiv:2310.16828, eq. 3-5 and appendix A: every term
weights step t of the H-step latent rollout by rho^t and averages over the steps; rewards and
values are two-hot cross-entropies in symlog space (models.two_hot). The termination loss of
the `episodic` option (TD-MPC2's code) is a plain binary cross-entropy over steps and batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.two_hot import soft_ce


def rho_weights(rho: float, n: int, like: Tensor) -> Tensor:
    """rho^t for t = 0..n-1."""
    return rho ** torch.arange(n, dtype=like.dtype, device=like.device)


def td_target(rewards: Tensor, terminated: Tensor, gamma: float, next_q: Tensor) -> Tensor:
    """y = r + gamma (1 - d) Q'(z', p(z')) for [H, B] inputs."""
    return rewards + gamma * (~terminated).to(rewards.dtype) * next_q


def consistency_loss(z_pred: Tensor, z_target: Tensor, rho: float) -> Tensor:
    """1/H sum_t rho^t mean_{B, latent} (z_pred - z_target)^2 for [H, B, latent]."""
    per_step = (z_pred - z_target).square().mean((1, 2))
    return (rho_weights(rho, len(per_step), per_step) * per_step).mean()


def reward_loss(logits: Tensor, rewards: Tensor, rho: float, vmin: float, vmax: float) -> Tensor:
    """1/H sum_t rho^t mean_B CE(R(z_t, a_t), r_t) for logits [H, B, bins], rewards [H, B]."""
    per_step = soft_ce(logits, rewards, vmin, vmax).mean(1)
    return (rho_weights(rho, len(per_step), per_step) * per_step).mean()


def value_loss(q_logits: Tensor, y: Tensor, rho: float, vmin: float, vmax: float) -> Tensor:
    """1/(H E) sum_t rho^t sum_i mean_B CE(Q_i(z_t, a_t), y_t), q_logits [E, H, B, bins]."""
    per_step = soft_ce(q_logits, y.expand(q_logits.shape[:-1]), vmin, vmax).mean((0, 2))
    return (rho_weights(rho, len(per_step), per_step) * per_step).mean()


def termination_loss(logits: Tensor, terminated: Tensor) -> Tensor:
    """mean_{H, B} BCE(D(z_{t+1}), d_t) for logits [H, B] of the rollout's next latents and the
    stored terminations d_t [H, B] (bool): TD-MPC2's episodic termination head, unweighted by
    rho as in its code."""
    return F.binary_cross_entropy_with_logits(logits, terminated.to(logits.dtype))


def policy_loss(logp: Tensor, q: Tensor, scale: Tensor, rho: float, entropy_coef: float
                ) -> Tensor:
    """1/(H+1) sum_t rho^t mean_B (entropy_coef log p(a|z_t) - Q(z_t, a) / S), [H+1, B]; the
    agent passes TD-MPC2's action-dimension-scaled log p (models.world_model.scaled_log_prob)."""
    per_step = (entropy_coef * logp - q / scale).mean(1)
    return (rho_weights(rho, len(per_step), per_step) * per_step).mean()


def updated_scale(scale: Tensor, q: Tensor, tau: float) -> Tensor:
    """S <- (1 - tau) S + tau max(1, P95(q) - P5(q)): TD-MPC2's running value scale."""
    p5, p95 = torch.quantile(q.detach().flatten(), q.new_tensor([0.05, 0.95]))
    return torch.lerp(scale, (p95 - p5).clamp(min=1.0), tau)
