"""PETS: probabilistic ensembles with trajectory sampling, and the CS285 MBRL versions 0.5-1.5.

Chua, Calandra, McAllister, Levine (2018), "Deep Reinforcement Learning in a Handful of Trials
using Probabilistic Dynamics Models", arXiv:1805.12114. CS285 (Levine), lecture 11, gives the
ladder the presets follow:

    v0.5  run a base policy pi_0 (uniform random actions), collect D, fit f(s, a) to D, then
          plan through f and execute the whole plan, never refitting
    v1.0  the same, but append what the plans did to D and refit f every `train_every` steps
    v1.5  replan after every step (MPC): execute only the first planned action
    PETS  v1.5 with an ensemble of E probabilistic networks (Gaussian NLL, bootstrapped data,
          learned log-variance bounds; models.dynamics), uncertainty propagated by P particles
          with trajectory sampling (TS-inf or TS-1), and CEM with momentum over K candidates

Versions 0.5 to 1.5 use one deterministic network trained on the squared error
sum_i ||f(s_i, a_i) - s'_i||^2, as the lecture writes them (E = 1, P = 1, loss mse, the
particles follow the mean). The model predicts the normalized state change s' - s; the reward
is the env's own function of (s, a, s') where one is known (agents.model_based.rewards) and a
learned head of the ensemble otherwise (`reward`: auto picks, and the run's config says which).

One iteration of the loop (agents.loops.model_based) is `train_every` env steps of planning,
then a fit of the ensemble to all the data so far (early stopping on a held-out split). The
planner (agents.model_based.mpc) draws its noise from torch's generator, so a resumed run on the
CPU continues bit for bit; evaluation re-seeds a planner generator of its own each time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.loops.model_based import train_model_based
from agents.model_based.dynamics_fit import (
    dynamics_optimizer,
    fit_replay,
    gaussian_nll,
    logvar_bound_loss,
)
from agents.model_based.mpc import (
    CEM_ACTIONS,
    PLANNERS,
    PROPAGATIONS,
    ExportedMPC,
    MPCController,
    MPCSettings,
    Plans,
)
from agents.model_based.rewards import known_reward, names_with_margin, names_with_reward
from agents.protocol import Algorithm
from agents.runs.config import require, require_number, require_positive, require_sizes
from data.replay import ReplayBuffer
from models.dynamics import ProbabilisticEnsemble
from models.mlp import check_activation
from sim.registry import EnvInfo

REWARDS = ("auto", "known", "learned")
LOSSES = ("nll", "mse")
EVAL_PLANNER_SEED = 12345
"""Evaluation plans with a generator re-seeded to this at every evaluation."""


@dataclass(frozen=True)
class PETSConfig:
    """PETS and the MBRL versions (names as in Chua et al. 2018 and mbrl-lib)."""

    num_envs: int = 1
    """Parallel environments; the planner plans for all of them in one batch."""
    buffer_size: int = 1_000_000
    """Transitions kept for fitting the model (all of them, up to this many)."""
    learning_starts: int = 200
    """Env steps of the base policy pi_0 (uniform random actions) before the first fit."""
    train_every: int = 200
    """Env steps between fits of the model; 0 fits once, on pi_0's data (version 0.5)."""
    # -- the dynamics model (models.dynamics) -----------------------------------------------
    ensemble_size: int = 5
    """E, members of the ensemble."""
    hidden: tuple[int, ...] = (200, 200, 200, 200)
    """Hidden layer sizes of each member."""
    activation: str = "silu"
    """Hidden activation (PETS: swish, i.e. silu)."""
    loss: str = "nll"
    """nll: Gaussian negative log-likelihood (probabilistic); mse: squared error of the mean."""
    lr: float = 1e-3
    """Adam learning rate of the model."""
    weight_decay: float = 5e-5
    """Adam weight decay of the model."""
    batch_size: int = 256
    """Transitions per gradient step of a fit."""
    max_epochs: int = 50
    """Most epochs of one fit."""
    patience: int = 5
    """A fit stops after this many epochs in which no member improved its held-out error."""
    holdout: float = 0.2
    """Fraction of the data held out for early stopping and elite selection."""
    bootstrap: bool = True
    """Each member trains on its own resample (with replacement) of the training split."""
    reward: str = "auto"
    """known: the env's reward function; learned: a reward head; auto: known where one is."""
    # -- the planner (agents.model_based.mpc) -------------------------------------------------
    planner: str = "cem"
    """cem or mppi."""
    horizon: int = 30
    """H, planning horizon in env steps."""
    samples: int = 500
    """K, candidate action sequences per iteration."""
    iterations: int = 5
    """Planner iterations per action."""
    elites: int = 50
    """CEM: candidates the Gaussian is refit to."""
    init_std: float = 0.5
    """Std of the candidates at the start of a plan, in [-1, 1] action units."""
    min_std: float = 0.05
    """Lower bound of the refit std."""
    momentum: float = 0.1
    """CEM: alpha, the weight of the old mean and std in each refit."""
    temperature: float = 1.0
    """MPPI: lambda, weights exp(J / lambda)."""
    particles: int = 20
    """P, particles per candidate (a multiple of ensemble_size)."""
    propagation: str = "ts-inf"
    """ts-inf, ts-1 (trajectory sampling), or mean (the members' means, deterministic)."""
    cem_action: str = "mean"
    """CEM's executed plan: mean (the final mean, as Chua et al.'s code) or best (the best
    candidate sampled)."""
    margin_weight: float = 0.0
    """w: the planner adds w * m(s') per step, m in [0, 1] the env's distance from failure
    (agents.model_based.mpc; envs whose known reward states one). 0: the env's reward alone."""
    replan_every: int = 1
    """Env steps between plans: 1 is MPC (version 1.5, PETS); horizon executes whole plans."""

    def __post_init__(self) -> None:
        require_positive(self, "num_envs", "buffer_size", "ensemble_size", "batch_size",
                         "max_epochs", "patience", "horizon", "samples", "iterations",
                         "elites", "particles", "replan_every")
        for name in ("learning_starts", "train_every"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= 0, name, v,
                    "an integer >= 0")
        require(self.learning_starts >= 1 or self.train_every >= 1, "learning_starts",
                self.learning_starts, ">= 1 when train_every is 0 (the one fit needs data)")
        require_sizes(self, "hidden", allow_empty=False)
        check_activation(self.activation)
        for name, options in (("loss", LOSSES), ("reward", REWARDS), ("planner", PLANNERS),
                              ("propagation", PROPAGATIONS), ("cem_action", CEM_ACTIONS)):
            require(getattr(self, name) in options, name, getattr(self, name),
                    f"one of {', '.join(options)}")
        require(self.elites <= self.samples, "elites", self.elites,
                f"<= samples ({self.samples})")
        require(self.particles % self.ensemble_size == 0, "particles", self.particles,
                f"a multiple of ensemble_size ({self.ensemble_size})")
        require(self.replan_every <= self.horizon, "replan_every", self.replan_every,
                f"<= horizon ({self.horizon})")
        require_number(self, "lr", "init_std", low=0.0, low_open=True)
        require_number(self, "weight_decay", "min_std", "margin_weight", low=0.0)
        require_number(self, "holdout", low=0.0, high=1.0, low_open=True, high_open=True)
        require_number(self, "momentum", low=0.0, high=1.0, high_open=True)
        require_number(self, "temperature", low=0.0, low_open=True)
        require(isinstance(self.bootstrap, bool), "bootstrap", self.bootstrap, "True or False")

    def settings(self) -> MPCSettings:
        return MPCSettings(planner=self.planner, horizon=self.horizon, samples=self.samples,
                           iterations=self.iterations, elites=self.elites,
                           init_std=self.init_std, min_std=self.min_std,
                           momentum=self.momentum, temperature=self.temperature,
                           particles=self.particles, propagation=self.propagation,
                           cem_action=self.cem_action, margin_weight=self.margin_weight)


class PETS:
    """A dynamics ensemble, a reward, and the MPC controller planning through them."""

    def __init__(self, cfg: PETSConfig, info: EnvInfo, device: torch.device) -> None:
        if info.discrete:
            raise ValueError("PETS plans continuous actions")
        self.cfg, self.info, self.device = cfg, info, device
        self.reward_source = resolve_reward(cfg.reward, info.name)
        reward_fn = known_reward(info.name) if self.reward_source == "known" else None
        self.model = ProbabilisticEnsemble(
            info.obs_dim, info.act_dim, ensemble_size=cfg.ensemble_size, hidden=cfg.hidden,
            activation=cfg.activation, reward=reward_fn is None).to(device)
        margin = reward_fn.margin if reward_fn is not None and reward_fn.has_margin else None
        self.controller = MPCController(self.model, None if reward_fn is None
                                        else reward_fn.to(device), cfg.settings(), margin)
        self.opt = dynamics_optimizer(self.model, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.replay = ReplayBuffer(cfg.buffer_size, cfg.num_envs, info.obs_shape,
                                   (info.act_dim,), discrete=False, device=device)
        self.fits = 0
        self.plan_s = 0.0  # wall time spent planning (the loop reports ms per step)
        self.plans = 0
        self._train = Plans(cfg.num_envs, cfg.horizon, info.act_dim, device)
        self._eval: Plans | None = None
        self._eval_gen = torch.Generator(device=device)

    # -- acting -------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """Planned actions in [-1, 1] for observations [B, obs_dim].

        Deterministic (evaluation): the evaluation planner's own generator and warm starts,
        which `reset_evaluation` re-seeds and clears, so every evaluation plans alike.
        Otherwise one fresh plan per observation from torch's generator (no warm start; the
        training envs' plans are `explore`'s).
        """
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        B = obs.shape[0]
        if not deterministic:
            return self._act(obs, Plans(B, self.cfg.horizon, self.info.act_dim, self.device),
                             None)
        if self._eval is None or self._eval.warm.shape[0] != B:
            self._eval = Plans(B, self.cfg.horizon, self.info.act_dim, self.device)
        return self._act(obs, self._eval, self._eval_gen)

    @torch.no_grad()
    def explore(self, obs: Tensor, step: int) -> Tensor:
        """The training envs' actions: the planner itself explores (its sampling), with warm
        starts and open-loop plans carried from step to step."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if obs.shape[0] != self.cfg.num_envs:
            raise ValueError(f"exploring {obs.shape[0]} observations; this agent steps "
                             f"{self.cfg.num_envs} envs")
        return self._act(obs, self._train, None)

    def reset_evaluation(self) -> None:
        """Before an evaluation: fresh warm starts, and the planner's evaluation seed."""
        self._eval = None
        self._eval_gen.manual_seed(EVAL_PLANNER_SEED)

    def episodes_ended(self, ended: np.ndarray) -> None:
        """Training envs whose episode ended start their next one without a warm start."""
        if ended.any():
            self._train.reset(torch.as_tensor(ended, device=self.device))

    def _act(self, obs: Tensor, plans: Plans, generator: torch.Generator | None) -> Tensor:
        due = plans.t < 0
        if bool(due.any()):
            t0 = time.perf_counter()
            noise = self.controller.draw_noise(obs.shape[0], generator, self.device)
            _, warm, chosen = self.controller(obs, plans.warm, **noise)
            plans.start(due, warm, chosen, self.cfg.replan_every)
            self.plan_s += time.perf_counter() - t0
            self.plans += 1
        return plans.next_action(self.cfg.replan_every)

    # -- learning -------------------------------------------------------------------------------
    def fit_model(self) -> dict[str, float]:
        """Fit the ensemble to every stored transition (models.dynamics.fit); its statistics."""
        stats = fit_replay(self.model, self.replay, optimizer=self.opt,
                           batch_size=self.cfg.batch_size, max_epochs=self.cfg.max_epochs,
                           holdout=self.cfg.holdout, patience=self.cfg.patience,
                           bootstrap=self.cfg.bootstrap, loss=self.cfg.loss)
        self.fits += 1
        return {f"model_{self.cfg.loss}": stats.train_loss, "holdout_mse": stats.holdout_mse,
                "model_epochs": float(stats.epochs)}

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One gradient step of every member on `batch` (the loop fits with `fit_model`); a
        model that has seen no data takes its normalizers from this batch."""
        m = self.model
        rew = batch["rewards"] if m.reward else None
        if int(m.input_norm.count) == 0:
            m.fit_normalizers(batch["obs"], batch["actions"], batch["next_obs"], rew)
        x = m.input_norm(torch.cat([batch["obs"], batch["actions"]], -1))
        y = m.target_norm(m.targets(batch["obs"], batch["next_obs"], rew))
        mean, logvar = m(x)
        loss = gaussian_nll(mean, logvar, y) + logvar_bound_loss(m.max_logvar, m.min_logvar)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"model_nll": loss.detach()}

    # -- state and export -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "fits": self.fits,
                "plans": self._train.state_dict(), "optim": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.fits = int(state["fits"])
        self._train.load_state_dict(state["plans"])
        self.opt.load_state_dict(state["optim"])

    def inference_module(self) -> nn.Module:
        """The whole MPC controller (normalizers, ensemble, reward, CEM) for export, on CPU;
        open-loop versions execute each plan for replan_every steps, as `act` does."""
        low, high = torch.tensor(self.info.action_low), torch.tensor(self.info.action_high)
        controller = MPCController(self.model, self.controller.reward, self.cfg.settings(),
                                   self.controller.margin)
        return ExportedMPC(controller, low, high, self.cfg.replan_every).cpu().eval()


def resolve_reward(choice: str, env: str) -> str:
    """known or learned, for `choice` (auto, known, learned) on `env`."""
    if choice == "learned" or (choice == "auto" and known_reward(env) is None):
        return "learned"
    if known_reward(env) is None:
        raise ValueError(f"--reward known: no known reward function for {env!r}; envs that "
                         f"have one: {', '.join(names_with_reward())} (or use --reward auto, "
                         "which learns the reward elsewhere)")
    return "known"


def check(cfg: PETSConfig, env: str) -> None:
    """Before the run folder exists: the reward choice must be possible on `env`, and a
    planning margin needs the env's known reward to state one."""
    reward = resolve_reward(cfg.reward, env)
    if cfg.margin_weight > 0 and (reward != "known" or env not in names_with_margin()):
        raise ValueError(f"--margin-weight {cfg.margin_weight:g}: {env!r} with the {reward} "
                         f"reward has no planning margin; envs with one (known reward): "
                         f"{', '.join(names_with_margin())} (or --margin-weight 0)")


# -- presets ------------------------------------------------------------------------------------

def _paper_scaled(env: str) -> PETSConfig:
    """PETS per env: the paper's settings scaled to what a CPU plans in real time (BENCHMARKS.md
    measures them against the paper's population 500, horizon 30, 20 particles, 5 iterations)."""
    if env == "pendulum":
        # One refit per 50 steps: -200 by 300-400 env steps on seeds 0-2 (every 200: ~1,000),
        # executing CEM's best sample (its final mean: -244 at 300 then -587 at 400, seed 0)
        return PETSConfig(learning_starts=100, train_every=50, hidden=(64, 64), horizon=15,
                          samples=100, iterations=3, elites=10, particles=5, max_epochs=25,
                          cem_action="best")
    if env == "inverted-pendulum":
        # The reward counts steps alive, so every candidate that survives the horizon ties;
        # with the env's reward alone the cart drifts into the end of its rail and the pole
        # falls (300-460 by 3k steps in tuning). The margin keeps the pole upright and the
        # cart, placed 1 s ahead at its velocity, off the rail's ends: 1,000 in all 10
        # evaluation episodes by 1,250-1,750 env steps on seeds 0-2 (BENCHMARKS.md). Fits run
        # to convergence (patience 20 of up to 200 epochs; 25 underfit).
        return PETSConfig(learning_starts=250, train_every=250, hidden=(64, 64), horizon=10,
                          samples=100, iterations=3, elites=10, particles=5, max_epochs=200,
                          patience=20, margin_weight=1.5)
    if env == "cartpole-swingup":
        return PETSConfig(learning_starts=1000, train_every=1000, hidden=(200, 200, 200),
                          horizon=25, samples=200, iterations=3, elites=20, particles=10)
    return PETSConfig(learning_starts=1000, train_every=1000, hidden=(200, 200, 200),
                      horizon=30, samples=200, iterations=3, elites=20, particles=10)


def preset(env: str) -> PETSConfig:
    """The env's PETS settings, with the reward it will plan with written out (known where
    agents.model_based.rewards has the env's function, else learned), so the run's config
    says which."""
    cfg = _paper_scaled(env)
    return replace(cfg, reward=resolve_reward(cfg.reward, env))


def _deterministic(cfg: PETSConfig) -> PETSConfig:
    """The lecture's one deterministic network: E = 1, squared error, the mean propagated."""
    return replace(cfg, ensemble_size=1, particles=1, loss="mse", propagation="mean",
                   bootstrap=False)


def preset_v05(env: str) -> PETSConfig:
    """Version 0.5: fit once on pi_0's data, execute whole plans."""
    cfg = _deterministic(preset(env))
    return replace(cfg, train_every=0, replan_every=cfg.horizon)


def preset_v10(env: str) -> PETSConfig:
    """Version 1.0: refit on the growing data, execute whole plans."""
    cfg = _deterministic(preset(env))
    return replace(cfg, replan_every=cfg.horizon)


def preset_v15(env: str) -> PETSConfig:
    """Version 1.5: refit, and replan after every step (MPC)."""
    return _deterministic(preset(env))


def default_steps(env: str) -> int:
    """A handful of trials: 10 episodes on the small envs, 100k steps elsewhere."""
    return {"pendulum": 2_000, "inverted-pendulum": 5_000, "cartpole-swingup": 20_000}.get(
        env, 100_000)


def _algorithm(name: str, preset_fn: Any, description: str) -> Algorithm:
    return Algorithm(name=name, config_cls=PETSConfig, preset=preset_fn, make_agent=PETS,
                     loop=train_model_based, actions=("continuous",), default_steps=default_steps,
                     description=description, check=check)


ALGORITHMS = (
    _algorithm("pets", preset, "PETS (Chua et al. 2018): probabilistic ensemble, trajectory "
               "sampling, CEM model-predictive control."),
    _algorithm("mbrl-v0.5", preset_v05, "Model-based RL v0.5 (CS285): fit a model to random "
               "data once, execute plans through it."),
    _algorithm("mbrl-v1.0", preset_v10, "Model-based RL v1.0 (CS285): plan, execute, "
               "aggregate the data, refit."),
    _algorithm("mbrl-v1.5", preset_v15, "Model-based RL v1.5 (CS285): refit, and replan "
               "after every step (MPC)."),
)
