"""Guided cost learning: deep, sample-based maximum-entropy IRL with a PPO sampler.

Finn, Levine, Abbeel (2016), "Guided Cost Learning: Deep Inverse Optimal Control via Policy
Optimization", ICML, arXiv:1603.00448, Algorithm 1; CS285 (Levine, lecture 20: "Inverse
Reinforcement Learning", "guided cost learning"). The demonstrations are modelled as samples of
the maximum-entropy distribution p(tau) = exp(r_psi(tau)) / Z of a neural reward r_psi(s, a)
(the paper's cost c = -r), fitted by maximum likelihood, with the partition function Z estimated
by importance sampling from the current policy q, itself trained by RL (PPO, the generator of
agents.irl.adversarial) on the current r_psi:

    L(psi)    = -E_demo[r_psi(x)] + log Z,   Z ~= (1/M) sum_j w_j,   w_j = exp(r_psi(x_j)) / z(x_j)
    grad L    = -E_demo[grad r_psi] + sum_j w_j grad r_psi(x_j) / sum_j w_j        (section 4.1)

The background samples x_j are the policy's own transitions and the demonstrations mixed in
("demo data sampling", section 4.1), both drawn from the mixture z = 1/2 q + 1/2 p~, where q is
the sampler's density (its log-probabilities; the demonstrations' under the current policy) and
p~ the rough density estimate of the demonstrations, here the current model itself,
p~(x) = exp(r_psi(x)) / Z (as Finn, Christiano, Abbeel, Levine 2016, "A Connection between
Generative Adversarial Networks, Inverse Reinforcement Learning, and Energy-Based Models",
take it, which gives their discriminator D = p~ / (p~ + q)). That makes
w_j = 1 / (1/2 q_j exp(-r_j) + 1/2 / Z) bounded by 2 Z, and Z the fixed point of
Z = (1/M) sum_j w_j(Z), found by iteration (`log_partition`); the weights are constants in the
gradient, as the importance-sampling estimate makes them.

The weights are per transition (the time-factored form of the GAN-GCL discriminator) rather
than per 200-step trajectory, whose products of 200 densities concentrate the weight on a few
samples; the effective sample size (sum w)^2 / sum w^2 of the mixture is logged as `ess`.
Regularizers: the gradient penalty of agents.irl.adversarial (grad_penalty) and an L2 term on
the reward's values (reward_l2) that pins down its free constant (L is invariant to r + c).
The paper's lcr and mono terms are not here: they need consecutive states of one trajectory
(three for lcr), which the adversarial loop's random transition minibatches do not give.

The learned reward r_psi(s, a) is saved as RUN/reward/ (form "gcl"), so `kinema train ALGO
--learned-reward RUN` trains a fresh policy on it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from agents.irl.adversarial import Adversarial, AdversarialConfig, gradient_penalty
from agents.loops.adversarial import train_adversarial
from agents.loops.offline import check_inputs
from agents.model_free import ppo
from agents.protocol import Algorithm
from agents.runs.config import require, require_number, require_positive
from models.discriminator import Discriminator

LOG_HALF = math.log(0.5)


@dataclass(frozen=True)
class GCLConfig(AdversarialConfig):
    """Guided cost learning: the sampler's PPO fields, the reward network's (disc_*: its sizes,
    learning rate, batch of demonstrations and of samples, updates per rollout) and its
    regularizers."""

    reward_l2: float = 1e-3
    """Weight of the L2 term mean(r^2) over demonstrations and samples (0: off)."""
    partition_iters: int = 20
    """Fixed-point iterations of the importance-sampled partition function per update."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_number(self, "reward_l2", low=0.0)
        require_positive(self, "partition_iters")
        require(not self.absorbing, "absorbing", self.absorbing,
                "False for gcl and deep-maxent-irl (gail and airl have an absorbing state)")


# -- the estimator (pure functions) ---------------------------------------------------------------
def log_mixture(r: Tensor, log_q: Tensor, log_Z: Tensor) -> Tensor:
    """log z_j = log(1/2 q_j + 1/2 exp(r_j - log Z)): the density of the background sample x_j
    under the mixture of the sampler and the current model's density of the demonstrations."""
    return LOG_HALF + torch.logaddexp(log_q, r - log_Z)


def log_partition(r: Tensor, log_q: Tensor, iters: int) -> Tensor:
    """log Z, the fixed point of log Z = log mean_j exp(r_j) / z_j(Z) (no gradient).

    The map is increasing with slope < 1 and bounded above by log 2 + log mean exp(r - log q),
    where the iteration starts, so it decreases monotonically to the fixed point."""
    with torch.no_grad():
        log_m = math.log(len(r))
        log_Z = math.log(2.0) + torch.logsumexp(r - log_q, 0) - log_m
        for _ in range(iters):
            log_Z = torch.logsumexp(r - log_mixture(r, log_q, log_Z), 0) - log_m
    return log_Z


def maxent_irl_loss(r_demo: Tensor, r_bg: Tensor, log_z: Tensor) -> Tensor:
    """-E_demo[r] + log sum_j exp(r_j) / z_j with the sampling densities z_j held fixed: its
    gradient is -E_demo[grad r] + sum_j w_j grad r_j / sum_j w_j (GCL, section 4.1)."""
    return -r_demo.mean() + torch.logsumexp(r_bg - log_z.detach(), 0)


def effective_sample_size(log_w: Tensor) -> Tensor:
    """(sum w)^2 / sum w^2 of importance weights given by their logs."""
    return (2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)).exp()


class GCL(Adversarial):
    """r_psi(s, a) fitted by sample-based MaxEnt IRL; PPO on r_psi as the sampler."""

    cfg: GCLConfig
    disc: Discriminator
    reward_form = "gcl"

    def make_discriminator(self) -> Discriminator:
        info, cfg = self.info, self.cfg
        return Discriminator(info.obs_dim, info.act_dim, discrete=info.discrete,
                             hidden=cfg.disc_hidden, activation=cfg.disc_activation)

    def logits(self, batch: dict[str, Tensor], prefix: str) -> Tensor:
        """r_psi [B] of the batch's `prefix` transitions."""
        return self.disc(batch[prefix + "obs"], batch[prefix + "actions"])

    def penalty_inputs(self, batch: dict[str, Tensor]) -> tuple[Callable[[Tensor], Tensor],
                                                                 Tensor, Tensor]:
        d = self.disc
        return (d.logits_of, d.inputs(batch["expert_obs"], batch["expert_actions"]),
                d.inputs(batch["obs"], batch["actions"]))

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One step on psi from sampled transitions (with the sampler's "logp") and as many
        demonstrations ("expert_"); the background set is both."""
        r_demo, r_samp = self.logits(batch, "expert_"), self.logits(batch, "")
        r_bg = torch.cat([r_samp, r_demo])
        log_q = torch.cat([batch["logp"], self.log_pi(batch["expert_obs"],
                                                      batch["expert_actions"])])
        log_Z = log_partition(r_bg.detach(), log_q, self.cfg.partition_iters)
        log_z = log_mixture(r_bg.detach(), log_q, log_Z)
        loss = maxent_irl_loss(r_demo, r_bg, log_z)
        terms: dict[str, Tensor] = {}
        if self.cfg.reward_l2 > 0:
            loss = loss + self.cfg.reward_l2 * r_bg.square().mean()
        if self.cfg.grad_penalty > 0:
            logits_of, xe, xp = self.penalty_inputs(batch)
            gp = gradient_penalty(logits_of, xe, xp, torch.rand(len(xe), 1, device=xe.device))
            loss = loss + self.cfg.grad_penalty * gp
            terms["grad_penalty"] = gp.detach()
        self.disc_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.disc_opt.step()
        lw = r_bg.detach() - log_z  # log w_j
        n = len(r_samp)
        return terms | {"irl_loss": loss.detach(), "log_partition": log_Z,
                        "ess": effective_sample_size(lw),
                        "demo_weight": torch.softmax(lw, 0)[n:].sum(),
                        "reward_demo": r_demo.detach().mean(),
                        "reward_sample": r_samp.detach().mean()}

    @torch.no_grad()
    def reward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.disc(batch["obs"], batch["actions"])


def preset(env: str) -> GCLConfig:
    """PPO's preset for the env as the sampler, with the reward network's defaults."""
    return GCLConfig(**vars(ppo.preset(env)))


def default_steps(env: str) -> int:
    return {"cartpole": 100_000, "pendulum": 200_000}.get(env, 1_000_000)


_GCL = Algorithm(
    name="gcl", config_cls=GCLConfig, preset=preset, make_agent=GCL,
    loop=train_adversarial, actions=("discrete", "continuous"), default_steps=default_steps,
    description="Guided cost learning (Finn et al. 2016): deep sample-based MaxEnt IRL "
                "from a dataset, PPO sampler.",
    check=check_inputs,
)
ALGORITHMS = (
    _GCL,
    dataclasses.replace(_GCL, name="deep-maxent-irl",
                        description="Deep MaxEnt IRL for continuous states: gcl under the "
                                    "name of what it does."),
)
