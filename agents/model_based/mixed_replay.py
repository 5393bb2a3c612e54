"""MBPO's two buffers: D_env of real transitions and D_model of model rollouts, mixed per batch.

Janner, Fu, Zhang, Levine (2019), "When to Trust Your Model: Model-Based Policy Optimization",
Algorithm 2 and appendix C: the policy is trained on batches with a fraction `real_ratio` (0.05)
of real transitions from D_env and the rest from D_model, which holds only recent model data:
its capacity is the model transitions of `model_retain_epochs` epochs at the current rollout
length, so as rollouts go on, the oldest are dropped (the paper's code reallocates D_model,
keeping the newest, whenever the rollout length changes its size).

`MixedReplay` is D_env (a data.replay.ReplayBuffer, which the off-policy loop fills and
checkpoints) with D_model (another ReplayBuffer, one column) beside it: its `sample` is the
mixed batch, `sample_real` a batch of D_env alone, and its state holds both buffers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from data.replay import ReplayBuffer


def store(buffer: ReplayBuffer, rows: dict[str, Tensor]) -> None:
    """Append n transitions [n, ...] (the ReplayBuffer fields) to a one-column ring `buffer`
    in one copy per field; when n exceeds its capacity only the newest are kept."""
    n = rows["obs"].shape[0]
    keep = min(n, buffer.rows)
    slots = (buffer.pos + torch.arange(n - keep, n, device=buffer.device)) % buffer.rows
    for name in ReplayBuffer.FIELDS:
        dst = getattr(buffer, name)
        dst[slots, 0] = rows[name][n - keep:].to(dst.dtype)
    buffer.pos = (buffer.pos + n) % buffer.rows
    buffer.size = min(buffer.size + n, buffer.rows)


def chronological(buffer: ReplayBuffer) -> dict[str, Tensor]:
    """Every stored transition of a one-column ring, oldest first."""
    t = (buffer.pos - buffer.size + torch.arange(buffer.size, device=buffer.device)) % buffer.rows
    return {name: getattr(buffer, name)[t, 0] for name in ReplayBuffer.FIELDS}


class MixedReplay(ReplayBuffer):
    """D_env (this buffer) and D_model (`self.model`); `sample` draws int(real_ratio B) real
    transitions and the rest model ones (all real while D_model is empty)."""

    def __init__(self, capacity: int, num_envs: int, obs_shape: tuple[int, ...], act_dim: int,
                 *, device: torch.device, gamma: float, real_ratio: float,
                 model_capacity: int) -> None:
        super().__init__(capacity, num_envs, obs_shape, (act_dim,), discrete=False,
                         device=device, gamma=gamma)
        self.real_ratio = real_ratio
        self.model = self._model_buffer(model_capacity)

    def _model_buffer(self, capacity: int) -> ReplayBuffer:
        return ReplayBuffer(capacity, 1, tuple(self.obs.shape[2:]), tuple(self.actions.shape[2:]),
                            discrete=False, device=self.device, gamma=self.gamma)

    def real_rows(self, batch_size: int) -> int:
        """Real transitions in a batch of `batch_size`: int(real_ratio B), as the paper's code
        rounds; all of them while D_model is empty."""
        return batch_size if self.model.size == 0 else int(batch_size * self.real_ratio)

    def sample(self, batch_size: int) -> dict[str, Tensor]:
        """A batch of real_rows(B) transitions of D_env followed by B - real_rows(B) of D_model."""
        n_real = self.real_rows(batch_size)
        real = super().sample(n_real)
        if n_real == batch_size:
            return real
        fake = self.model.sample(batch_size - n_real)
        return {k: torch.cat([v, fake[k]]) for k, v in real.items()}

    def sample_real(self, batch_size: int) -> dict[str, Tensor]:
        """A uniform batch of D_env alone (the start states of branched rollouts)."""
        return super().sample(batch_size)

    def add_model(self, obs: Tensor, actions: Tensor, rewards: Tensor, next_obs: Tensor,
                  terminated: Tensor) -> None:
        """Store model transitions [n, ...] in D_model (a model step is never truncated)."""
        store(self.model, {"obs": obs, "actions": actions, "rewards": rewards,
                           "next_obs": next_obs, "terminated": terminated,
                           "truncated": torch.zeros_like(terminated)})

    def resize_model(self, capacity: int) -> None:
        """Give D_model `capacity` slots, keeping its newest transitions (the oldest beyond the
        new capacity are dropped)."""
        if capacity == self.model.rows:
            return
        old, self.model = self.model, self._model_buffer(capacity)
        store(self.model, chronological(old))

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        model = state["model"]
        if int(model["rows"]) != self.model.rows:
            self.model = self._model_buffer(int(model["rows"]))
        self.model.load_state_dict(model)
