"""A preallocated replay buffer with vectorized (optionally n-step) sampling.

Transitions of N parallel envs are kept in a ring of `capacity // N` rows of N columns: row t
holds what every env did at the same time, so the successor of (t, e) in time is (t + 1, e)
and n-step returns are gathers, not searches. Terminations and truncations are kept apart:
a time-limit truncation stores the real final observation as `next_obs` (from the vector env's
info["final_obs"]) and bootstraps from it; only termination cuts the bootstrap.

Sampling draws indices with `torch.randint` on the buffer's device from torch's global
generator, whose state is checkpointed, so a resumed run draws the same batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray


class ReplayBuffer:
    """Ring buffer of (s, a, r, s', terminated, truncated) for N envs, on `device`."""

    FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")

    def __init__(
        self, capacity: int, num_envs: int, obs_shape: tuple[int, ...], act_shape: tuple[int, ...],
        *, discrete: bool, device: torch.device | str = "cpu", n_step: int = 1, gamma: float = 0.99,
        obs_dtype: torch.dtype = torch.float32,
    ) -> None:
        if num_envs < 1 or n_step < 1:
            raise ValueError(f"num_envs and n_step must be >= 1, got {num_envs} and {n_step}")
        rows = capacity // num_envs
        if rows < n_step:
            raise ValueError(f"capacity {capacity} holds {rows} steps of {num_envs} envs; "
                             f"n_step={n_step} needs at least {n_step}")
        self.rows, self.num_envs, self.n_step, self.gamma = rows, num_envs, n_step, gamma
        self.device = torch.device(device)
        R, N, dev = rows, num_envs, self.device
        self.obs = torch.zeros(R, N, *obs_shape, dtype=obs_dtype, device=dev)
        self.next_obs = torch.zeros(R, N, *obs_shape, dtype=obs_dtype, device=dev)
        act_dtype = torch.long if discrete else torch.float32
        self.actions = torch.zeros(R, N, *act_shape, dtype=act_dtype, device=dev)
        self.rewards = torch.zeros(R, N, dtype=torch.float32, device=dev)
        self.terminated = torch.zeros(R, N, dtype=torch.bool, device=dev)
        self.truncated = torch.zeros(R, N, dtype=torch.bool, device=dev)
        # gamma^k for k = 0..n-1, the weights of an n-step return
        self._powers = gamma ** torch.arange(n_step, dtype=torch.float32, device=dev)
        self.pos = 0
        """Row the next `add` writes."""
        self.size = 0
        """Rows written so far, at most `rows`."""

    def __len__(self) -> int:
        """Stored transitions (all envs)."""
        return self.size * self.num_envs

    def can_sample(self) -> bool:
        """Whether at least one n-step window is fully written, so `sample` has data."""
        return self.size >= self.n_step

    def add(
        self, obs: ArrayLike, actions: ArrayLike, rewards: ArrayLike, next_obs: ArrayLike,
        terminated: ArrayLike, truncated: ArrayLike,
    ) -> None:
        """Store one step of every env, each argument batched over envs [N, ...].

        `next_obs` must be the observation the step led to: for an episode that ended, the final
        observation, not the first one of the next episode.
        """
        t = self.pos
        values = (obs, actions, rewards, next_obs, terminated, truncated)
        for name, value in zip(self.FIELDS, values, strict=True):
            dst = getattr(self, name)[t]
            dst.copy_(torch.as_tensor(value).reshape(dst.shape))
        self.pos = (t + 1) % self.rows
        self.size = min(self.size + 1, self.rows)

    def sample(self, batch_size: int) -> dict[str, Tensor]:
        """A uniform batch: obs, actions, rewards, next_obs, terminated, discount.

        With n-step, `rewards` is sum_k gamma^k r_{t+k} over the first n steps or up to the end
        of the episode, `next_obs` the observation after the last of those steps, `terminated`
        whether that step terminated, and `discount` gamma^(steps taken), so every algorithm's
        target is rewards + discount * (1 - terminated) * V(next_obs).
        """
        n, N = self.n_step, self.num_envs
        valid = self.size - n + 1  # start rows whose n-step window is fully written
        if valid < 1:
            raise ValueError(f"the buffer holds {len(self)} transitions; sampling needs at least "
                             f"{n * N} (n_step={n} steps of {N} envs)")
        j = torch.randint(valid * N, (batch_size,), device=self.device)
        oldest = self.pos - self.size
        t, e = (oldest + j // N) % self.rows, j % N
        obs, actions = self.obs[t, e], self.actions[t, e]
        if n == 1:
            return {"obs": obs, "actions": actions, "rewards": self.rewards[t, e],
                    "next_obs": self.next_obs[t, e], "terminated": self.terminated[t, e],
                    "discount": self._powers.new_full((batch_size,), self.gamma)}
        ts = (t[:, None] + torch.arange(n, device=self.device)) % self.rows  # [B, n]
        es = e[:, None].expand(-1, n)
        ended = self.terminated[ts, es] | self.truncated[ts, es]  # [B, n]
        # step k counts while no earlier step of the window ended the episode
        alive = torch.ones(ended.shape, dtype=torch.float32, device=self.device)
        alive[:, 1:] = (~ended[:, :-1]).float()
        alive = alive.cumprod(1)
        rewards = (self.rewards[ts, es] * self._powers * alive).sum(1)
        taken = alive.sum(1)  # 1..n steps
        last = (t + taken.long() - 1) % self.rows
        return {"obs": obs, "actions": actions, "rewards": rewards,
                "next_obs": self.next_obs[last, e], "terminated": self.terminated[last, e],
                "discount": self.gamma ** taken}

    def state_dict(self) -> dict[str, Any]:
        """The written rows and the ring position (tensors stay on the device until saved)."""
        return {"pos": self.pos, "size": self.size, "rows": self.rows, "num_envs": self.num_envs,
                **{name: getattr(self, name)[: self.size] for name in self.FIELDS}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state["rows"], state["num_envs"]) != (self.rows, self.num_envs):
            raise ValueError(f"saved buffer has {state['rows']} rows of {state['num_envs']} envs; "
                             f"this one has {self.rows} rows of {self.num_envs}")
        size = int(state["size"])
        for name in self.FIELDS:
            getattr(self, name)[:size].copy_(state[name])
        self.pos, self.size = int(state["pos"]), size
