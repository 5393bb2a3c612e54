"""The agent protocols: what every loop may rely on, and how an algorithm registers itself.

Structural types (PEP 544): an agent satisfies a protocol by having its members, not by
inheriting from it, so an algorithm file stays one readable class (agents/model_free/sac.py).
A loop is annotated with the protocol it needs and uses nothing else of the agent; a test
checks every registered algorithm against the protocol of its loop.

    Agent             act, update, state_dict / load_state_dict, inference_module
    OnPolicyAgent     + a rollout buffer and the pieces of a rollout (PPO-style)
    OffPolicyAgent    + a replay buffer, exploration, and an OffPolicyConfig (loop settings)
    ImitationAgent    + observation statistics, validation and early stopping (BC, DAgger)
    ModelBasedAgent   + a replay buffer, a model fit on all of it, and a planner (PETS)
    TabularAgent      + a value table over a tabular MDP's states (DP, TD control, MaxEnt IRL)
    AdversarialAgent  OnPolicyAgent + a discriminator of expert transitions (GAIL, AIRL)
    LatentPlanningAgent  OffPolicyAgent + a latent planner reset for evaluation (TD-MPC)

The configs named here are imported for annotations only: at run time this module depends on
nothing of agents/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from sim.registry import EnvInfo

if TYPE_CHECKING:
    from agents.classic.tabular import TabularConfig
    from agents.imitation.bc import BCConfig
    from agents.irl.adversarial import AdversarialConfig
    from agents.model_based.pets import PETSConfig
    from agents.model_free.off_policy import OffPolicyConfig
    from data.replay import ReplayBuffer
    from data.rollout import RolloutBuffer


@runtime_checkable
class Agent(Protocol):
    """What every loop, `kinema eval` and `kinema export` use."""

    info: EnvInfo
    device: torch.device

    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """Actions in the env's units ([-1, 1] or indices) for a batch of raw observations."""
        ...

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One update from a batch of data; the named loss terms, as tensors (no host sync)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Nets, counters and normalizers, with the optimizers' state under "optim"."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def inference_module(self) -> nn.Module:
        """obs (robot units) -> action (robot units), on CPU, for export."""
        ...


@runtime_checkable
class OnPolicyAgent(Agent, Protocol):
    """An agent that learns from its own fresh rollouts (agents.loops.on_policy)."""

    @property
    def buffer(self) -> RolloutBuffer:
        """The preallocated rollout buffer the loop fills."""
        ...

    def normalize(self, obs: Tensor, *, update: bool = False) -> Tensor:
        """The observation as the networks see it; `update` folds it into the statistics."""
        ...

    def explore(self, obs_n: Tensor) -> tuple[Tensor, Tensor]:
        """(a ~ pi(.|s), log pi(a|s)) for normalized observations."""
        ...

    def value(self, obs_n: Tensor) -> Tensor:
        """V(s) [B] for normalized observations."""
        ...

    def scale_reward(self, reward: Tensor, ended: Tensor) -> Tensor: ...

    def set_lr_fraction(self, frac: float) -> None:
        """Learning-rate annealing: the fraction of the budget left (a no-op when not annealed)."""
        ...

    def learn(self) -> dict[str, Tensor]:
        """All updates on the filled rollout buffer; the mean loss terms."""
        ...


@runtime_checkable
class OffPolicyAgent(Agent, Protocol):
    """An agent that learns from a replay buffer of past transitions (agents.loops.off_policy)."""

    @property
    def cfg(self) -> OffPolicyConfig:
        """The loop reads num_envs, batch_size, learning_starts, train_freq, gradient_steps."""
        ...

    @property
    def replay(self) -> ReplayBuffer: ...

    def explore(self, obs: Tensor, step: int) -> Tensor:
        """The behaviour policy's actions at env step `step` (noise, epsilon-greedy, sampling)."""
        ...


@runtime_checkable
class ImitationAgent(Agent, Protocol):
    """A supervised learner of expert actions (agents.loops.offline, agents.loops.dagger)."""

    @property
    def cfg(self) -> BCConfig:
        """The loops read dataset, max_episodes, batch_size, val_frac, val_every."""
        ...

    @property
    def stopped(self) -> bool:
        """Early stopping has ended training (validation loss stopped improving)."""
        ...

    @property
    def val_loss(self) -> float | None:
        """The latest validation loss, None before the first check."""
        ...

    @property
    def updates(self) -> int:
        """Gradient updates so far (validation runs every cfg.val_every of them)."""
        ...

    def set_statistics(self, obs: Tensor) -> None:
        """Observation statistics from the training split (what the exported policy uses)."""
        ...

    def validate(self, obs: Tensor, actions: Tensor) -> None:
        """A validation check: keep the best weights, count checks without improvement."""
        ...

    def restore_best(self) -> None:
        """Act with the best-validation weights; training weights are set aside."""
        ...

    def resume_training(self) -> None:
        """Undo restore_best before more updates."""
        ...

    def reset_early_stopping(self) -> None:
        """A new fit (DAgger's next round) starts its own early-stopping record."""
        ...

    def reinitialize(self) -> None:
        """Fresh weights and optimizer, as a new learner would start."""
        ...


@runtime_checkable
class ModelBasedAgent(Agent, Protocol):
    """A learned dynamics model planned through (agents.loops.model_based)."""

    fits: int
    """Model fits so far."""
    plan_s: float
    """Wall seconds spent planning so far."""
    plans: int
    """Plans made so far (each for every env of the batch)."""

    @property
    def cfg(self) -> PETSConfig:
        """The loop reads num_envs, learning_starts and train_every."""
        ...

    @property
    def replay(self) -> ReplayBuffer:
        """Every transition so far: what the model is fitted to."""
        ...

    def explore(self, obs: Tensor, step: int) -> Tensor:
        """The planner's actions for the training envs at env step `step`."""
        ...

    def fit_model(self) -> dict[str, float]:
        """Fit the model to the replay buffer; its statistics (raises FloatingPointError)."""
        ...

    def episodes_ended(self, ended: np.ndarray) -> None:
        """Training envs in `ended` start a new episode: forget their warm starts."""
        ...

    def reset_evaluation(self) -> None:
        """Before an evaluation: the evaluation planner's seed and fresh warm starts."""
        ...


@runtime_checkable
class TabularAgent(Agent, Protocol):
    """A value table over the states of a tabular MDP (agents.loops.tabular).

    Dynamic programming (the loop steps no env): `update({})` is one sweep of the known model
    (or one policy-improvement step) until `converged`. TD control: `update(batch)` learns from
    env transitions (obs, actions, rewards, next_obs, terminated, next_actions). Inverse RL
    (MaxEnt): `update({"visits": ...})` is one gradient step from the demonstrations' state
    visits per episode [S].
    """

    @property
    def cfg(self) -> TabularConfig:
        """The loop reads num_envs (TD control) and dataset (inverse RL), when present."""
        ...

    @property
    def converged(self) -> bool:
        """The stopping rule is met (dynamic programming; TD control: never)."""
        ...

    def explore(self, obs: Tensor, step: int) -> Tensor:
        """The behaviour policy's actions at env step `step` (epsilon-greedy)."""
        ...

    def values(self) -> dict[str, Any]:
        """V, Q, the greedy policy and how they were reached, for the run's values.json."""
        ...


class Loop(Protocol):
    """A training loop: runs until the schedule's budget or target, returns its final state."""

    def __call__(self, agent: Any, envs: Any, run: Any, schedule: Any, *,
                 resume: dict[str, Any] | None = None,
                 on_progress: Callable[[Any], None] | None = None) -> Any: ...


@dataclass(frozen=True)
class Algorithm:
    """One entry of `kinema train`, declared by its algorithm module beside the preset."""

    name: str
    config_cls: type
    preset: Callable[[str], Any]
    """env name -> default config for that env."""
    make_agent: Callable[[Any, EnvInfo, torch.device], Agent]
    """(config, EnvInfo, torch.device) -> agent."""
    loop: Loop
    actions: tuple[str, ...]
    """Action spaces it handles: 'discrete', 'continuous'."""
    default_steps: Callable[[str], int]
    """env name -> step budget when --steps is not given."""
    description: str
    vector_envs: bool = True
    """The loop steps `config.num_envs` training envs (False: it builds what it needs itself)."""
    tabular: bool = False
    """Runs on the tabular MDPs only (the sim tag `tabular`: it needs their model or states)."""
    pixels: bool = False
    """Trains from pixel observations too (it has an image encoder); the others refuse the
    envs tagged `pixels`."""
    check: Callable[[Any, str], None] | None = None
    """(config, env) -> None; raises ValueError on inputs the loop would refuse later (run
    before the run folder is created, so a mistake leaves nothing behind)."""
    preset_source: Callable[[str], str | None] = lambda env: None
    """env name -> where its preset comes from (a tuned source or a measurement), or None
    where the preset is the algorithm's generic fallback (`kinema envs` shows it)."""


@runtime_checkable
class AdversarialAgent(OnPolicyAgent, Protocol):
    """A generator (an OnPolicyAgent) and a discriminator of expert transitions
    (agents.loops.adversarial: GAIL, AIRL); `update` is one discriminator step."""

    @property
    def cfg(self) -> AdversarialConfig:
        """The loop reads dataset, max_episodes, disc_batch_size, disc_updates."""
        ...

    def set_expert_statistics(self, obs: Tensor) -> None:
        """Fit the discriminator's observation normalizer to the expert observations."""
        ...

    def reward(self, batch: dict[str, Tensor]) -> Tensor:
        """The generator's learned reward [B] of policy transitions (obs, actions, next_obs,
        terminated, logp)."""
        ...

    def learned_reward(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """(weights, description) of the learned reward, as RUN/reward/ holds them."""
        ...


@runtime_checkable
class LatentPlanningAgent(OffPolicyAgent, Protocol):
    """An off-policy agent that plans in a learned latent space (agents.loops.latent: TD-MPC):
    the off-policy loop's members, and a planner whose evaluation starts afresh."""

    def reset_evaluation(self) -> None:
        """Before an evaluation: the evaluation planner's seed and fresh warm starts."""
        ...
