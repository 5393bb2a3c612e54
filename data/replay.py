"""A preallocated replay buffer with vectorized (optionally n-step) sampling.

Transitions of N parallel envs are kept in a ring of `capacity // N` rows of N columns: row t
holds what every env did at the same time, so the successor of (t, e) in time is (t + 1, e)
and n-step returns are gathers, not searches. Terminations and truncations are kept apart:
a time-limit truncation stores the real final observation as `next_obs` (from the vector env's
info["final_obs"]) and bootstraps from it; only termination cuts the bootstrap.

Sampling draws indices with `torch.randint` on the buffer's device from torch's global
generator, whose state is checkpointed, so a resumed run draws the same batches.
`PrioritizedReplayBuffer` draws them in proportion to priorities instead (Schaul et al. 2016),
through a sum tree (data/sum_tree.py) saved with the buffer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from data.sum_tree import SumTree

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
        N = self.num_envs
        valid = self._valid_rows()
        j = torch.randint(valid * N, (batch_size,), device=self.device)
        oldest = self.pos - self.size
        return self._transitions((oldest + j // N) % self.rows, j % N)

    def sequence_starts(self, horizon: int) -> Tensor:
        """Which slots [rows, N] start a window of `horizon` consecutive steps of one episode:
        all written, none of them past the write position (the newest row), and no episode
        end (termination or truncation) before the window's last step."""
        age = (torch.arange(self.rows, device=self.device) - (self.pos - self.size)) % self.rows
        ok = (age <= self.size - horizon)[:, None].expand(-1, self.num_envs)
        ended = self.terminated | self.truncated
        for k in range(horizon - 1):  # an episode ending at step k < horizon - 1 is crossed
            ok = ok & ~ended.roll(-k, 0)
        return ok

    def sample_sequences(self, batch_size: int, horizon: int) -> dict[str, Tensor]:
        """A uniform batch of `horizon`-step sequences that never cross an episode boundary
        (TD-MPC's sub-trajectories, Hansen et al. 2022, section 3):

            obs [H+1, B, *obs_shape]   s_t .. s_{t+H}; the last one is the stored next_obs,
                                       the real final observation if the episode ended there
            actions [H, B, ...], rewards [H, B], terminated [H, B]   (only the last step of a
                                       sequence can have ended its episode)

        Start slots are drawn from torch's global generator, uniformly over the valid ones.
        """
        if not (isinstance(horizon, int) and horizon >= 1):
            raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
        starts = self.sequence_starts(horizon).flatten()
        try:  # no host sync to check first: an all-zero weight vector is refused by torch
            if self.size < horizon:
                raise RuntimeError
            j = torch.multinomial(starts.float(), batch_size, replacement=True)
        except RuntimeError:
            raise ValueError(f"the buffer holds no {horizon}-step sequence within one episode "
                             f"yet ({len(self)} transitions)") from None
        N = self.num_envs
        ts = (j // N + torch.arange(horizon, device=self.device)[:, None]) % self.rows  # [H, B]
        e = (j % N).expand(horizon, -1)
        obs = torch.cat([self.obs[ts, e], self.next_obs[ts[-1], e[-1]].unsqueeze(0)])
        return {"obs": obs, "actions": self.actions[ts, e], "rewards": self.rewards[ts, e],
                "terminated": self.terminated[ts, e]}

    def _valid_rows(self) -> int:
        """Start rows whose n-step window is fully written (refuses an empty buffer)."""
        n, N = self.n_step, self.num_envs
        valid = self.size - n + 1
        if valid < 1:
            raise ValueError(f"the buffer holds {len(self)} transitions; sampling needs at least "
                             f"{n * N} (n_step={n} steps of {N} envs)")
        return valid

    def _transitions(self, t: Tensor, e: Tensor) -> dict[str, Tensor]:
        """The (n-step) transitions starting at rows t [B] of envs e [B]."""
        n, batch_size = self.n_step, t.shape[0]
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


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul, Quan, Antonoglou, Silver 2016, "Prioritized
    Experience Replay", arXiv:1511.05952, section 3.3 and Algorithm 1; CS285 lecture 8).

        p_i  = (|delta_i| + eps)^alpha            after each update, from its TD errors
        P(i) = p_i / sum_k p_k                    sampled through a sum tree (data/sum_tree.py)
        w_i  = (N P(i))^-beta / max_j w_j         importance weights, max over the batch

    A new transition gets the largest priority seen so far, so it is replayed at least once
    soon. Priorities live in a `SumTree` over the ring's slots (slot t * num_envs + e); a slot
    whose n-step window is not yet fully written has priority 0, so it is never drawn, as
    uniform sampling never draws it. The tree's leaves and the running maximum are saved with
    the buffer, and the inner nodes re-summed on load, which gives the same tree bit for bit.
    """

    def __init__(
        self, capacity: int, num_envs: int, obs_shape: tuple[int, ...], act_shape: tuple[int, ...],
        *, discrete: bool, device: torch.device | str = "cpu", n_step: int = 1, gamma: float = 0.99,
        obs_dtype: torch.dtype = torch.float32, alpha: float = 0.6, eps: float = 1e-6,
    ) -> None:
        super().__init__(capacity, num_envs, obs_shape, act_shape, discrete=discrete,
                         device=device, n_step=n_step, gamma=gamma, obs_dtype=obs_dtype)
        if not (alpha >= 0.0 and eps > 0.0):
            raise ValueError(f"prioritized replay needs alpha >= 0 and eps > 0, got alpha={alpha} "
                             f"and eps={eps}")
        self.alpha, self.eps = alpha, eps
        self._tree = SumTree(self.rows * num_envs, self.device)
        self.max_priority = torch.ones((), dtype=torch.float64, device=self.device)
        """The largest |delta| + eps so far (1 before any update), what new transitions get."""
        self._envs = torch.arange(num_envs, device=self.device)
        self._pending: list[int] = []
        """Rows added since the tree was last brought up to date."""

    @property
    def tree(self) -> SumTree:
        """The sum tree over the slots, up to date with every `add`."""
        self._flush()
        return self._tree

    def add(
        self, obs: ArrayLike, actions: ArrayLike, rewards: ArrayLike, next_obs: ArrayLike,
        terminated: ArrayLike, truncated: ArrayLike,
    ) -> None:
        """Store one step of every env; the row just written and the row whose n-step window
        it completes get their priorities at the next read of the tree (one batched update
        per round of env steps, not one per step)."""
        t = self.pos
        super().add(obs, actions, rewards, next_obs, terminated, truncated)
        self._pending.append(t)
        if self.n_step > 1 and self.size >= self.n_step:
            self._pending.append((t - self.n_step + 1) % self.rows)

    def _flush(self) -> None:
        """Rows added since the last flush: the maximal priority if their n-step window is
        written (they are among the oldest size - n + 1 rows), else 0."""
        if not self._pending:
            return
        rows = torch.tensor(sorted(set(self._pending)), device=self.device)
        self._pending.clear()
        age = (rows - (self.pos - self.size)) % self.rows
        drawable = age < self.size - self.n_step + 1
        p = torch.where(drawable, self.max_priority.pow(self.alpha), 0.0)
        N = self.num_envs
        self._tree.update((rows[:, None] * N + self._envs).flatten(), p.repeat_interleave(N))

    def sample(self, batch_size: int, *, beta: float = 1.0) -> dict[str, Tensor]:
        """A prioritized batch: what `ReplayBuffer.sample` returns, plus "weights" [B] (the
        importance weights at exponent `beta`) and "indices" [B] (slots, for
        `update_priorities`)."""
        N = self.num_envs
        valid = self._valid_rows() * N  # the N of w_i: transitions that can be drawn
        index = self.tree.sample(batch_size)
        batch = self._transitions(index // N, index % N)
        prob = self.tree.priorities()[index] / self.tree.total()  # P(i)
        w = (valid * prob).pow(-beta)
        batch["weights"] = (w / w.max()).float()
        batch["indices"] = index
        return batch

    def update_priorities(self, indices: Tensor, td_error: Tensor) -> None:
        """p_i = (|delta_i| + eps)^alpha for the slots `indices` [B] just learned from.

        A slot drawn twice in a batch keeps one of its values (the last written on CPU)."""
        p = td_error.detach().abs().to(torch.float64) + self.eps
        self.tree.update(indices, p.pow(self.alpha))
        self.max_priority = torch.maximum(self.max_priority, p.max())

    def state_dict(self) -> dict[str, Any]:
        """The buffer's state, the priorities of the written rows [size, N] and the running
        maximum (a float: JSON keeps a float64 exactly)."""
        return {**super().state_dict(), "priorities": self._slots()[: self.size],
                "max_priority": float(self.max_priority)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._pending.clear()
        for level in self._tree.levels:
            level.zero_()
        self._slots()[: self.size].copy_(state["priorities"])
        self.tree.rebuild()
        self.max_priority = torch.tensor(float(state["max_priority"]), dtype=torch.float64,
                                         device=self.device)

    def _slots(self) -> Tensor:
        """The leaf priorities as the ring's [rows, N] (a view)."""
        return self.tree.priorities().view(self.rows, self.num_envs)
