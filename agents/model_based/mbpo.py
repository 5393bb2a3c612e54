"""Model-Based Policy Optimization (MBPO): SAC on short branched rollouts of a learned model.

Janner, Fu, Zhang, Levine (2019), "When to Trust Your Model: Model-Based Policy Optimization",
arXiv:1906.08253, Algorithm 2 and appendix C (CS285, Levine, lecture 12: Dyna-style model-based
RL with short rollouts from real states). Per env step:

    every model_train_freq env steps:  train the ensemble p_theta on all of D_env
                                        (agents.model_based.model_schedule, LearnedModel)
                                        k <- the linear rollout schedule at this epoch
                                        for M = rollout_batch_size start states s ~ D_env:
                                            k-step rollout of pi through p_theta (one elite
                                            per row, a sampled step), into D_model
    take a ~ pi(.|s) in the env, add the transition to D_env
    G SAC updates on batches of int(real_ratio B) D_env and the rest D_model transitions

The rollout length follows rollout_schedule = (min_epoch, max_epoch, min_length, max_length):
k = min_length up to min_epoch, then linear to max_length at max_epoch (epochs of
epoch_length env steps), as in the paper's code. Rollouts stop at the env's known termination
(a terminated row adds its last transition and is dropped). D_model holds model_retain_epochs
epochs of rollouts at the current k, rollout_batch_size k (epoch_length / model_train_freq)
model_retain_epochs transitions, so the oldest age out (agents.model_based.mixed_replay).

Paper names and values (appendix C, and its released configs): M = rollout_batch_size (100k
rollouts every 250 env steps, 400 per env step), G = gradient_steps here, the off-policy loop's
name (the paper's num_sac_updates_per_step / n_train_repeat: 20 to 40; 10 here by default, for
CPU), real_ratio 0.05, model_train_freq 250, epoch_length 1000, model_retain_epochs 1, and an
ensemble of 7 (5 elites) of 4 x 200 swish layers. The policy's learner is an unmodified SAC
(agents/model_free/sac.py): MBPO only feeds it the mixed batches, and exports its policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from agents.loops.off_policy import train_off_policy
from agents.model_based.learned_model import ModelConfig, check_model_reward
from agents.model_based.mixed_replay import MixedReplay
from agents.model_based.model_schedule import ModelSchedule, nest_optim, unnest_optim
from agents.model_free import off_policy
from agents.model_free.robot_presets import tuned_on
from agents.model_free.sac import SAC, SACConfig
from agents.model_free.sac import preset as sac_preset
from agents.protocol import Algorithm
from agents.runs.config import require, require_number, require_positive
from sim.registry import EnvInfo


@dataclass(frozen=True)
class MBPOConfig(SACConfig, ModelConfig):
    """MBPO: SAC's settings (gradient_steps is the paper's G), the model's, and the rollouts'."""

    gradient_steps: int = 10
    """G, SAC updates per env step (the paper's num_sac_updates_per_step: 20; 10 for CPU)."""
    rollout_batch_size: int = 20_000
    """M, branched rollouts started every model_train_freq env steps (paper: 100k; 20k for CPU)."""
    rollout_schedule: tuple[int, int, int, int] = (20, 100, 1, 1)
    """(min_epoch, max_epoch, min_length, max_length): the rollout length k is min_length up to
    min_epoch, then linear in the epoch to max_length at max_epoch."""
    epoch_length: int = 1000
    """Env steps per epoch of the rollout schedule."""
    model_retain_epochs: int = 1
    """Epochs of model rollouts D_model keeps (its capacity follows k)."""
    real_ratio: float = 0.05
    """Fraction of every SAC batch drawn from D_env (the rest from D_model)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        ModelConfig.__post_init__(self)
        require_positive(self, "rollout_batch_size", "epoch_length", "model_retain_epochs")
        require_number(self, "real_ratio", low=0.0, high=1.0)
        s = self.rollout_schedule
        require(isinstance(s, tuple | list) and len(s) == 4
                and all(isinstance(v, int) and not isinstance(v, bool) for v in s)
                and 0 <= s[0] < s[1] and s[2] >= 1 and s[3] >= 1, "rollout_schedule", s,
                "four integers (min_epoch, max_epoch, min_length, max_length) with "
                "0 <= min_epoch < max_epoch and lengths >= 1")
        require(self.mve_horizon == 0, "mve_horizon", self.mve_horizon,
                "0 (mbpo learns from model rollouts; sac and td3 take --mve-horizon)")
        require(self.pretrain == "", "pretrain", self.pretrain,
                "'' (mbpo does not pre-train on demonstrations; sac and td3 do)")
        require(self.rnd == 0.0, "rnd", self.rnd, "0 (mbpo has no RND bonus; sac and td3 do)")
        require(not self.prioritized, "prioritized", self.prioritized,
                "False (mbpo samples D_env and D_model uniformly)")

    @property
    def num_sac_updates_per_step(self) -> int:
        """The paper's name for G (gradient_steps, what the off-policy loop reads)."""
        return self.gradient_steps


def rollout_length(schedule: tuple[int, int, int, int], epoch: int) -> int:
    """k at `epoch`: min_length until min_epoch, then int of the linear interpolation to
    max_length at max_epoch, constant after (the paper's code, `_set_rollout_length`)."""
    min_epoch, max_epoch, min_length, max_length = schedule
    if epoch <= min_epoch:
        return min_length
    dx = min((epoch - min_epoch) / (max_epoch - min_epoch), 1.0)
    return int(dx * (max_length - min_length) + min_length)


def model_capacity(cfg: MBPOConfig, k: int) -> int:
    """D_model's capacity at rollout length k: model_retain_epochs epochs of rollouts,
    model_retain_epochs int(k M epoch_length / model_train_freq) (the paper's code)."""
    per_epoch = cfg.rollout_batch_size * cfg.epoch_length / cfg.model_train_freq
    return max(1, cfg.model_retain_epochs * int(k * per_epoch))


Step = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
"""(s, a) -> (s', r, terminated): one model step of every row."""
Store = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], None]
"""(s, a, r, s', terminated) [n, ...] -> None: adds model transitions to D_model."""


@torch.no_grad()
def branched_rollouts(start: Tensor, k: int, policy: Callable[[Tensor], Tensor], step: Step,
                      store: Store) -> int:
    """k-step rollouts of `policy` through the model `step` from the real states `start`
    [M, obs], every transition stored; a row that terminates stores its last transition and
    stops. Returns the number of transitions stored."""
    s, added = start, 0
    for _ in range(k):
        a = policy(s)
        s_next, r, done = step(s, a)
        store(s, a, r, s_next, done)
        added += s.shape[0]
        s = s_next[~done]
        if s.shape[0] == 0:
            break
    return added


class MBPO:
    """MBPO agent: an SAC learner, a learned model on MBPO's schedule, and D_env + D_model."""

    def __init__(self, cfg: MBPOConfig, info: EnvInfo, device: torch.device) -> None:
        if info.discrete:
            raise ValueError("mbpo needs continuous actions")
        self.cfg, self.info, self.device = cfg, info, device
        self.sac = SAC(cfg, info, device)
        self.schedule = ModelSchedule(cfg, info, device)
        self.rollout_length = rollout_length(cfg.rollout_schedule, 0)
        self.replay = MixedReplay(cfg.buffer_size, cfg.num_envs, info.obs_shape, info.act_dim,
                                  device=device, gamma=cfg.gamma, real_ratio=cfg.real_ratio,
                                  model_capacity=model_capacity(cfg, self.rollout_length))
        self.sac.replay = self.replay  # one D_env (SAC's own buffer is dropped)
        self.opt, self.model_opt = self.sac.opt, self.schedule.model.opt  # checkpoint checks
        self._terms = self._rollout_terms(0)

    # -- acting ---------------------------------------------------------------------------------
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        return self.sac.act(obs, deterministic=deterministic)

    def explore(self, obs: Tensor, step: int) -> Tensor:
        """pi's action, after the model's refit and new branched rollouts when model_train_freq
        env steps have passed (the loop calls this before every policy step)."""
        self._model_data(step)
        return self.sac.explore(obs, step)

    def _model_data(self, step: int) -> None:
        """Refit the model and roll it out when due at env step `step` (never when every batch
        is real: real_ratio 1 is SAC)."""
        if self.cfg.real_ratio < 1.0 and self.schedule.refit_when_due(self.replay, step):
            self.rollout(step)

    # -- model data -----------------------------------------------------------------------------
    def rollout(self, step: int) -> int:
        """Set k for the epoch of env step `step`, size D_model for it, and add
        rollout_batch_size branched k-step rollouts from real states; transitions added."""
        cfg = self.cfg
        self.rollout_length = rollout_length(cfg.rollout_schedule, step // cfg.epoch_length)
        self.replay.resize_model(model_capacity(cfg, self.rollout_length))
        start = self.replay.sample_real(cfg.rollout_batch_size)["obs"]
        added = branched_rollouts(start, self.rollout_length, self.sac.act,
                                  self.schedule.model.step, self.replay.add_model)
        self._terms = self._rollout_terms(added)
        return added

    def _rollout_terms(self, added: int) -> dict[str, Tensor]:
        """The rollouts' metrics, logged with every update until the next rollouts."""
        B, dev = self.cfg.batch_size, self.device
        real = self.replay.real_rows(B) / B
        return {k: torch.tensor(float(v), device=dev) for k, v in {
            "rollout_length": self.rollout_length,
            "mean_rollout_length": added / self.cfg.rollout_batch_size,
            "model_buffer_size": self.replay.model.size, "real_ratio": real}.items()}

    # -- learning -------------------------------------------------------------------------------
    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One SAC update on a mixed batch (MixedReplay.sample), with the model's and the
        rollouts' latest metrics. The loop's first updates come at learning_starts, before its
        first policy step: the first fit and rollouts come first (D_env holds every env step so
        far, len(replay) of them)."""
        if not self.schedule.ready:
            self._model_data(len(self.replay))
        return self.sac.update(batch) | self.schedule.terms | self._terms

    # -- state and export -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """SAC's and the model's state (D_env and D_model are the loop's replay entry)."""
        sac = self.sac.state_dict()
        state = {"sac": {k: v for k, v in sac.items() if k != "optim"},
                 "rollout_length": self.rollout_length, "rollout_terms": dict(self._terms),
                 "optim": sac["optim"]}
        return nest_optim(state, "model", self.schedule)

    def load_state_dict(self, state: dict) -> None:
        state = unnest_optim(state, "model", self.schedule)
        self.sac.load_state_dict(state["sac"] | {"optim": state["optim"]})
        self.rollout_length = int(state["rollout_length"])
        self._terms = {k: v.clone() for k, v in state["rollout_terms"].items()}

    def inference_module(self) -> nn.Module:
        """SAC's policy: obs -> tanh(mu(s)) in the robot's units, on CPU, for export."""
        return self.sac.inference_module()


def preset(env: str) -> MBPOConfig:
    """SAC's preset for the env with MBPO's schedule, sized for CPU runs (BENCHMARKS.md)."""
    base = SACConfig()
    sac = {k: v for k, v in vars(sac_preset(env)).items() if v != getattr(base, k)}
    if env == "pendulum":
        # one-step rollouts and a fifth of every batch real: in tuning (single seeds, 1.2k env
        # steps), real_ratio 0.05 and k up to 5 had not learned yet where 0.2 and k = 1 had;
        # refits every 100 steps of at most 20 epochs keep the model near the policy's states
        return MBPOConfig(**sac | dict(
            learning_starts=200, epoch_length=200, model_train_freq=100, model_max_epochs=20,
            rollout_batch_size=10_000, rollout_schedule=(1, 10, 1, 1), gradient_steps=10,
            real_ratio=0.2, ensemble_size=7, num_elites=5, model_hidden=(200, 200)))
    if env == "inverted-pendulum":
        # the paper's inverted-pendulum config: epochs of 250 steps, 500 random steps, k = 1,
        # G = 10, target entropy -0.05
        return MBPOConfig(**sac | dict(
            learning_starts=500, epoch_length=250, rollout_schedule=(1, 15, 1, 1),
            target_entropy=-0.05, gradient_steps=10, model_hidden=(200, 200, 200)))
    if env in PAPER_GYM:
        # the paper's config for the robot (target entropy, k schedule), sized for CPU: G = 10
        # (paper 20-40), M = 20k rollouts per refit and refits every 500 env steps of at most 20
        # epochs (paper: 100k every 250 steps, to convergence): in a hopper pilot a fit to
        # convergence cost 25-30 s at 5k transitions, and it grows with D_env
        entropy, schedule = PAPER_GYM[env]
        return MBPOConfig(**sac | dict(
            learning_starts=5_000, target_entropy=entropy, rollout_schedule=schedule,
            model_train_freq=500, model_max_epochs=20))
    return MBPOConfig(**sac | dict(learning_starts=5_000))


PAPER_GYM = {"hopper": (-1.0, (20, 150, 1, 15)), "halfcheetah": (-3.0, (20, 150, 1, 1)),
             "walker2d": (-3.0, (20, 150, 1, 1)), "ant": (-4.0, (20, 100, 1, 25))}
"""The paper's MuJoCo configs (its released examples/config/<env>/0.py): env -> (target_entropy,
rollout_schedule), with 5,000 initial random steps and epochs of 1,000; its G (20, and 40 on
halfcheetah) is 10 here, for CPU."""


def default_steps(env: str) -> int:
    """MBPO's budget: a tenth of SAC's on the small envs (it learns from far fewer steps)."""
    return {"pendulum": 5_000, "inverted-pendulum": 10_000}.get(
        env, off_policy.continuous_control_steps(env))


ALGORITHMS = (
    Algorithm(
        name="mbpo", config_cls=MBPOConfig, preset=preset, make_agent=MBPO,
        loop=train_off_policy, actions=("continuous",),
        default_steps=default_steps, check=check_model_reward,
        preset_source=tuned_on("MBPO's paper configs, retuned here (BENCHMARKS.md)",
                               "pendulum", "inverted-pendulum"),
        description="Model-Based Policy Optimization (Janner et al. 2019): SAC on short "
                    "branched rollouts of a learned ensemble.",
    ),
)
