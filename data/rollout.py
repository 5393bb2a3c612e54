"""A preallocated on-policy rollout buffer."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


class RolloutBuffer:
    """T steps of N envs, preallocated on the training device.

    Observations are stored as the policy saw them (normalized), so the probability ratios of
    the update compare the same inputs the rollout used.
    """

    FIELDS = ("obs", "actions", "logp", "values", "rewards", "next_values", "terminated", "ended")

    def __init__(
        self, num_steps: int, num_envs: int, obs_dim: int, act_shape: tuple[int, ...],
        *, discrete: bool, device: torch.device,
    ) -> None:
        T, N = num_steps, num_envs
        f32 = torch.float32
        self.obs = torch.zeros(T, N, obs_dim, dtype=f32, device=device)
        act_dtype = torch.long if discrete else torch.float32
        self.actions = torch.zeros(T, N, *act_shape, dtype=act_dtype, device=device)
        self.logp = torch.zeros(T, N, dtype=f32, device=device)
        self.values = torch.zeros(T, N, dtype=f32, device=device)
        self.rewards = torch.zeros(T, N, dtype=f32, device=device)
        self.next_values = torch.zeros(T, N, dtype=f32, device=device)
        self.terminated = torch.zeros(T, N, dtype=torch.bool, device=device)
        self.ended = torch.zeros(T, N, dtype=torch.bool, device=device)
        self.num_steps, self.num_envs = T, N

    def minibatches(
        self, advantages: Tensor, returns: Tensor, num_minibatches: int
    ) -> Iterator[dict[str, Tensor]]:
        """Shuffled minibatches over all T*N samples (one permutation per call)."""
        n = self.num_steps * self.num_envs
        flat = {
            "obs": self.obs.reshape(n, -1),
            "actions": self.actions.reshape(n, *self.actions.shape[2:]),
            "logp": self.logp.reshape(n),
            "values": self.values.reshape(n),
            "advantages": advantages.reshape(n),
            "returns": returns.reshape(n),
        }
        perm = torch.randperm(n, device=self.obs.device)
        size = n // num_minibatches
        for i in range(num_minibatches):
            idx = perm[i * size : (i + 1) * size]
            yield {k: v[idx] for k, v in flat.items()}
