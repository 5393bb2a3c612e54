"""MPPI in the latent space of a TD-MPC2 world model, guided by its policy prior.

Hansen, Su, Wang (2024), "TD-MPC2", arXiv:2310.16828, section 3.2 and Algorithm 1 (after
TD-MPC, Hansen et al. 2022, section 3.2). For each of B latents z_0 = h(s):

    num_pi_trajs sequences come from the prior, rolled out through d:  a_t ~ p(z_t)
    the rest, K - num_pi_trajs, from N(mu, sigma^2) clipped to [-1, 1]    (mu: warm start)
    J(a_{0:H}) = sum_{t<H} gamma^t R(z_t, a_t) + gamma^H Q(z_H, p(z_H))  (Q: mean of 2 heads)
    episodic models: every term after the first predicted termination D(z_t) > 0.5 is cut
    mu, sigma <- the exp(temperature (J - max J))-weighted mean and spread of the
                 num_elites best sequences, sigma clamped to [min_std, max_std]
    repeated `iterations` times; sigma starts at max_std

The reweighting is agents.model_based.planners.mppi_update applied to the elites, with its
lambda = 1 / temperature (TD-MPC2 multiplies by its temperature where Williams et al. divide).
The module is a pure function of its inputs: every random draw is an argument (`draw_noise`
gives standard normal noise of `noise_shapes`; the two Q heads are the first two of an argsort
of normal noise, a uniformly random pair), so torch and an exported graph plan alike on the
same noise. Loops over iterations and horizon steps unroll when traced.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from agents.model_based.mpc import tie_breaker
from agents.model_based.planners import mppi_update, shift
from models.world_model import WorldModel


@dataclass(frozen=True)
class LatentMPPISettings:
    """The planner's sizes (validated by the agent's config)."""

    horizon: int
    iterations: int
    num_samples: int
    num_elites: int
    num_pi_trajs: int
    min_std: float
    max_std: float
    temperature: float
    gamma: float


@dataclass(frozen=True)
class LatentPlan:
    """One planning call for B latents."""

    mean: Tensor
    """The final Gaussian mean [B, H, A]: the plan (its first action is the deterministic one)."""
    std: Tensor
    """The final std [B, H, A]."""
    elites: Tensor
    """The last iteration's elite sequences [num_elites, B, H, A]."""
    weights: Tensor
    """Their MPPI weights [num_elites, B] (sum to 1 over the elites)."""
    value: Tensor
    """The weighted mean return of the elites [B]."""


class LatentMPPI(nn.Module):
    """Plans through `model` with the prior's trajectories mixed into every population."""

    def __init__(self, model: WorldModel, settings: LatentMPPISettings) -> None:
        super().__init__()
        self.model, self.s = model, settings

    def noise_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        s, A = self.s, self.model.act_dim
        return {"sample_noise": (s.iterations, s.num_samples - s.num_pi_trajs, batch,
                                 s.horizon, A),
                "pi_noise": (s.horizon, s.num_pi_trajs, batch, A),
                "value_noise": (s.iterations, s.num_samples, batch, A),
                "member_noise": (s.iterations, self.model.num_q)}

    def draw_noise(self, batch: int, generator: torch.Generator | None = None,
                   device: torch.device | None = None) -> dict[str, Tensor]:
        """Standard normal noise of `noise_shapes(batch)`, from `generator` (None: torch's)."""
        return {name: torch.randn(shape, generator=generator, device=device)
                for name, shape in self.noise_shapes(batch).items()}

    def forward(self, z: Tensor, warm: Tensor, sample_noise: Tensor, pi_noise: Tensor,
                value_noise: Tensor, member_noise: Tensor) -> LatentPlan:
        """z [B, latent], warm (the previous plan shifted by one) [B, H, A] -> the plan."""
        s = self.s
        prior = self.prior_sequences(z, pi_noise)  # [P, B, H, A]
        mean = warm
        std = torch.full_like(mean, s.max_std)
        K = s.num_samples
        zk = z.unsqueeze(0).expand(K, *z.shape)
        weights = value = elites = torch.empty(0)
        for i in range(s.iterations):
            sampled = (mean + std * sample_noise[i]).clamp(-1.0, 1.0)  # [K - P, B, H, A]
            seqs = torch.cat([prior, sampled])  # [K, B, H, A]
            members = member_noise[i].argsort()[:2]
            returns = self.returns(zk, seqs, value_noise[i], members).nan_to_num(0.0)  # [K, B]
            # exact ties (an untrained model's zero heads) are broken by index, as torch and
            # onnxruntime break them alike (agents.model_based.mpc.tie_breaker)
            top = (returns - tie_breaker(returns)).topk(s.num_elites, dim=0).indices
            top_ret = returns.gather(0, top)
            elites = seqs.gather(0, top[..., None, None].expand(-1, -1, *seqs.shape[2:]))
            mean, std, value = mppi_update(elites, top_ret, 1.0 / s.temperature, s.min_std)
            std = std.clamp(max=s.max_std)
            weights = torch.softmax((top_ret - top_ret.amax(0)) * s.temperature, dim=0)
        return LatentPlan(mean=mean, std=std, elites=elites, weights=weights, value=value)

    def prior_sequences(self, z: Tensor, pi_noise: Tensor) -> Tensor:
        """num_pi_trajs action sequences of the prior rolled out from z: [P, B, H, A]."""
        P = self.s.num_pi_trajs
        zp = z.unsqueeze(0).expand(P, *z.shape)
        actions = []
        for t in range(self.s.horizon):
            a, _ = self.model.pi(zp, pi_noise[t])
            actions.append(a)
            if t < self.s.horizon - 1:
                zp = self.model.next(zp, a)
        return torch.stack(actions, dim=2)

    def returns(self, z: Tensor, seqs: Tensor, value_noise: Tensor, members: Tensor) -> Tensor:
        """J of seqs [K, B, H, A] from latents z [K, B, latent]: discounted predicted rewards
        over the horizon and gamma^H Q(z_H, p(z_H)) -> [K, B]. An episodic model (TD-MPC2's
        `episodic`) counts R(z_t, a_t) and the value only while no z_1..z_t was predicted
        terminal: `alive` is 1 - that."""
        m, gamma = self.model, self.s.gamma
        total = torch.zeros(seqs.shape[:2], device=seqs.device)
        alive = torch.ones_like(total) if m.episodic else None
        discount = 1.0
        for t in range(seqs.shape[2]):
            a = seqs[:, :, t]
            r = m.reward(z, a)
            total = total + discount * (r if alive is None else alive * r)
            z = m.next(z, a)
            if alive is not None:
                alive = alive * (1.0 - m.terminated(z))
            discount *= gamma
        a_H, _ = m.pi(z, value_noise)
        value = m.Q(z, a_H, "avg", members=members)
        return total + discount * (value if alive is None else alive * value)


def shift_plan(mean: Tensor) -> Tensor:
    """The warm start of the next step: plan [B, H, A] shifted by one, padded with 0."""
    return shift(mean.transpose(0, 1), torch.zeros_like(mean[:, 0])).transpose(0, 1)
