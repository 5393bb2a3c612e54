"""Stochastic value gradients: the policy learns by backpropagating the H-step return of a
learned model (SVG(H); CS285's model-based RL "version 2.0").

Heess, Wayne, Silver, Lillicrap, Erez, Tassa (2015), "Learning Continuous Control Policies by
Stochastic Value Gradients", arXiv:1510.09142: with reparameterised policy a = pi(s, eta) and
model s' = f(s, a, xi), the return is a differentiable function of the policy parameters, and
SVG(H) unrolls it H steps before a learned value closes it. CS285 (Levine, lecture 11, model-
based RL v2.0: "backpropagate directly into the policy") and Clavera, Fu, Abbeel (2020), "Model-
Augmented Actor-Critic: Backpropagating through Paths", arXiv:2005.08068 (the same objective
with a probabilistic ensemble, from replay states, and a soft critic), in the notation here:

    J_pi(s_0) = sum_{t<H} gamma^t m_t (r_t - alpha log pi(a_t|s_t)) + gamma^H m_H V(s_H)
    a_t = tanh(mu(s_t) + sigma(s_t) eps_t)                 (reparameterised, eps_t ~ N(0, I))
    s_{t+1}, r_t, d_t = f_e(s_t, a_t, xi_t)                (one elite e per row, xi_t ~ N(0, I))
    m_0 = 1,  m_{t+1} = m_t (1 - d_t)                      (cut by the env's termination)
    V(s_H) = min_i Q_i(s_H, a_H) - alpha log pi(a_H|s_H),   a_H ~ pi(.|s_H)

starting from real states s_0 of the replay buffer, and the actor descends -mean J_pi. The model
is agents.model_based.learned_model.LearnedModel (its samples are reparameterised, so dJ/dtheta
flows through f); the model's and the critics' weights are constants in J_pi. Heess et al. infer
the noise xi of real transitions for SVG(inf); here, as in MAAC, the model's own noise is drawn
forward. The entropy bonus (alpha log pi, with SAC's learned temperature) makes V the soft value
that SAC's critics learn, so the critics, the temperature and their targets are SAC's: TD on
real transitions only (agents/model_free/sac.py; SVG is SAC with this actor objective).
The model is fit to the whole replay buffer every model_train_freq env steps (MBPO's schedule,
agents/model_based/model_schedule.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from agents.loops.off_policy import train_off_policy
from agents.model_based.model_schedule import ModelSchedule, nest_optim, unnest_optim
from agents.model_free import off_policy
from agents.model_free.sac import SAC, SACConfig
from agents.model_free.sac import preset as sac_preset
from agents.protocol import Algorithm
from agents.runs.config import require, require_positive
from sim.registry import EnvInfo

Policy = Callable[[Tensor], tuple[Tensor, Tensor]]
"""s [B, obs] -> (a [B, act] reparameterised, log pi(a|s) [B])."""
Model = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
"""(s, a) -> (s' [B, obs], r [B], terminated [B] bool), differentiable in s and a."""
Value = Callable[[Tensor], Tensor]
"""s [B, obs] -> V(s) [B]."""


@dataclass(frozen=True)
class SVGConfig(SACConfig):
    """SVG(H): SAC's critics, temperature and loop settings, the model's settings (MBPO's
    agents.model_based.learned_model.ModelConfig, which ActorCriticConfig holds), and H."""

    horizon: int = 3
    """H, model steps the return is backpropagated through before V closes it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(self, "horizon")
        require(self.pretrain == "", "pretrain", self.pretrain,
                "'' (svg does not pre-train on demonstrations; sac and td3 do)")
        require(self.rnd == 0.0, "rnd", self.rnd, "0 (svg has no RND bonus; sac and td3 do)")
        require(self.mve_horizon == 0, "mve_horizon", self.mve_horizon,
                "0 (svg's critics learn from real transitions; sac and td3 take mve_horizon)")


def model_return(s0: Tensor, policy: Policy, model: Model, value: Value, *, horizon: int,
                 gamma: float, alpha: Tensor | float) -> Tensor:
    """J(s_0) [B] = sum_{t<H} gamma^t m_t (r_t - alpha log pi(a_t|s_t)) + gamma^H m_H V(s_H)
    (Heess et al. 2015, SVG(H); the soft return of MAAC, Clavera et al. 2020).

    m_t is 1 until the model's first termination and 0 from the step after it: the reward of
    the terminating step counts, nothing after it does.
    """
    s, alive = s0, torch.ones(s0.shape[0], dtype=s0.dtype, device=s0.device)
    J = torch.zeros_like(alive)
    for t in range(horizon):
        a, logp = policy(s)
        s, r, done = model(s, a)
        J = J + gamma**t * alive * (r - alpha * logp)
        alive = alive * (~done).to(alive.dtype)
    return J + gamma**horizon * alive * value(s)


class SVG(SAC):
    """SAC whose actor follows the analytic gradient of the learned model's H-step return."""

    cfg: SVGConfig

    def __init__(self, cfg: SVGConfig, info: EnvInfo, device: torch.device) -> None:
        if info.discrete:
            raise ValueError("svg needs continuous actions")
        super().__init__(cfg, info, device)
        self.schedule = ModelSchedule(cfg, info, device)
        """The model and its fit schedule (MBPO's, agents/model_based/model_schedule.py)."""
        self.model = self.schedule.model
        self.model_opt = self.model.opt  # an attribute, so checkpoint checks see both optimizers

    def explore(self, obs: Tensor, step: int) -> Tensor:
        """A sample of pi(.|s), after refitting the model when model_train_freq env steps have
        passed since the last fit (MBPO's schedule, Janner et al. 2019, Algorithm 2)."""
        self.schedule.refit_when_due(self.replay, step)
        return super().explore(obs, step)

    # -- learning -------------------------------------------------------------------------------
    def losses(self, batch: dict[str, Tensor], demo: dict[str, Tensor] | None = None
               ) -> dict[str, Tensor]:
        """SAC's J_Q and J(alpha) on the real batch, and J_pi = -mean J(s_0) of `model_return`
        from the batch's states, whose gradient reaches the actor only."""
        out = super().losses(batch, demo)
        alpha = self.log_alpha.detach().exp()

        def value(s: Tensor) -> Tensor:
            a, logp = self.actor.sample(s)
            return self.critic(s, a, detach_params=True).min(0).values - alpha * logp

        def model(s: Tensor, a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            return self.model.step(s, a)

        self.model.ensemble.requires_grad_(False)  # the model's weights are constants here
        try:
            J = model_return(batch["obs"], self.actor.sample, model, value,
                             horizon=self.cfg.horizon, gamma=self.cfg.gamma, alpha=alpha)
        finally:
            self.model.ensemble.requires_grad_(True)
        return out | {"actor_loss": -J.mean(), "model_return": J.detach().mean()}

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One step of critics, temperature and actor. The loop's first update comes at the
        end of the warm-up, before the first policy step: the model's first fit is then."""
        if not self.schedule.ready:
            self.schedule.fit(self.replay, self.cfg.learning_starts)
        return super().update(batch) | self.schedule.terms

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return nest_optim(super().state_dict(), "model", self.schedule)

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(unnest_optim(state, "model", self.schedule))


def preset(env: str) -> SVGConfig:
    """SAC's preset for the env (networks, learning rate, updates per env step), with a model
    small enough for CPU runs: 5 members of 128 x 128, 3 elites (BENCHMARKS.md)."""
    model = dict(ensemble_size=5, num_elites=3, model_hidden=(128, 128), model_train_freq=250)
    if env == "pendulum":  # the first fit wants a few episodes of random data
        model["learning_starts"] = 250
    return SVGConfig(**vars(sac_preset(env)) | model)


ALGORITHMS = (
    Algorithm(
        name="svg", config_cls=SVGConfig, preset=preset, make_agent=SVG, loop=train_off_policy,
        actions=("continuous",), default_steps=off_policy.continuous_control_steps,
        description="Stochastic value gradients, SVG(H) (Heess et al. 2015): the policy "
                    "backpropagates the H-step return of a learned model.",
        check=off_policy.check_inputs,
    ),
)
