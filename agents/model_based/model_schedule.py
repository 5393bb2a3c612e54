"""When the learned model is refit, and what it is measured on: one schedule for MBPO and MVE.

Janner, Fu, Zhang, Levine (2019), "When to Trust Your Model: Model-Based Policy Optimization",
Algorithm 2 and appendix C: the model is trained on all of D_env every `model_train_freq` (250)
env steps. Here the first fit comes at the end of the random warm-up (`learning_starts`), and
each later one `model_train_freq` env steps after the previous.
Before each fit the model's error is measured on the transitions collected since the last fit,
real data it has not been fit to (LearnedModel.error), so the metrics show how far the model can
be trusted on fresh states. The off-policy loop calls the agent's `explore(obs, step)` before
every policy step, which is where MBPO and SAC/TD3 with `mve_horizon` call `refit_when_due`
(MBPO also before its first update, which comes before the first policy step).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from agents.model_based.learned_model import LearnedModel, ModelConfig
from data.replay import ReplayBuffer
from sim.registry import EnvInfo

TERMS = ("model_error_obs", "model_error_reward", "model_nll", "model_holdout_mse",
         "model_epochs")
"""The latest fit's statistics, logged with every update until the next fit."""


def newest(replay: ReplayBuffer, n: int) -> dict[str, Tensor]:
    """The newest n transitions of `replay` (n counts transitions of all envs, at least one
    row): obs, actions, next_obs, rewards [n', ...]."""
    rows = max(1, min(n, len(replay)) // replay.num_envs)
    t = (replay.pos - 1 - torch.arange(rows, device=replay.device)) % replay.rows
    return {k: getattr(replay, k)[t].flatten(0, 1)
            for k in ("obs", "actions", "next_obs", "rewards")}


class ModelSchedule:
    """A LearnedModel and its fit schedule: refit to all of the replay every model_train_freq
    env steps, with its error on the data since the previous fit measured before each fit."""

    def __init__(self, cfg: ModelConfig, info: EnvInfo, device: torch.device) -> None:
        self.model = LearnedModel(cfg, info, device)
        self.every = cfg.model_train_freq
        self.fitted_at = -1
        """The env step of the latest fit (-1: none yet)."""
        self.terms = {k: torch.zeros((), device=device) for k in TERMS}

    @property
    def ready(self) -> bool:
        """The model has been fit at least once (before that, nothing may use it)."""
        return self.model.fitted

    def due(self, replay: ReplayBuffer, step: int) -> bool:
        """A fit is due at env step `step`: none yet, or model_train_freq steps since the last
        (and the replay holds the two transitions a fit with a held-out split needs)."""
        return len(replay) >= 2 and (self.fitted_at < 0 or step - self.fitted_at >= self.every)

    def fit(self, replay: ReplayBuffer, step: int) -> None:
        """Measure the error on the transitions since the last fit (at the first fit: all of
        them, on the untrained model), then fit to the whole replay."""
        fresh = newest(replay, len(replay) if self.fitted_at < 0 else step - self.fitted_at)
        stats = self.model.error(fresh) | self.model.fit(replay)
        dev = self.terms["model_nll"].device
        self.terms = {k: torch.tensor(float(stats[k]), device=dev) for k in TERMS}
        self.fitted_at = step

    def refit_when_due(self, replay: ReplayBuffer, step: int) -> bool:
        """Fit if one is due at env step `step`; whether it did."""
        if not self.due(replay, step):
            return False
        self.fit(replay, step)
        return True

    # -- state: the model's optimizer goes under the owner's "optim" -------------------------------
    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict() | {"fitted_at": self.fitted_at, "terms": dict(self.terms)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)
        self.fitted_at = int(state["fitted_at"])
        self.terms = {k: v.clone() for k, v in state["terms"].items()}


def nest_optim(state: dict[str, Any], key: str, schedule: ModelSchedule) -> dict[str, Any]:
    """An agent's state with `schedule` under `key` and the optimizers filed as
    {"agent": the agent's, "model": the model's} (a checkpoint keeps every optimizer under
    "optim")."""
    model = schedule.state_dict()
    return state | {key: {k: v for k, v in model.items() if k != "optim"},
                    "optim": {"agent": state["optim"], "model": model["optim"]}}


def unnest_optim(state: dict[str, Any], key: str, schedule: ModelSchedule) -> dict[str, Any]:
    """Load `schedule` from what `nest_optim` filed; the agent's state with its own optimizer
    back under "optim"."""
    schedule.load_state_dict(state[key] | {"optim": state["optim"]["model"]})
    return state | {"optim": state["optim"]["agent"]}
