"""A vectorized sum tree: priorities of a replay buffer, batch updates, batch stratified sampling.

Schaul, Quan, Antonoglou, Silver (2016), "Prioritized Experience Replay", arXiv:1511.05952,
Appendix B.2.1: a tree whose leaves are the priorities and whose every inner node is the sum of
its children, so the root is the total mass, sampling a leaf in proportion to its priority
descends the tree from the root, and changing a leaf re-sums only its path.

Here the whole batch moves at once, a few tensor ops per level, on the buffer's device (no
host sync). The tree is K-ary (`branching`, 32 by default) rather than binary: on a CPU a small
tensor op costs microseconds whatever its size, so 4 levels of 32 children cost far less than
17 levels of 2 for a buffer of 100,000 slots. Level d holds branching^d nodes (the leaves, the
last level, padded with zeros past `capacity`); node i of level d has the children
i*K .. i*K + K - 1 of level d + 1. Sums are float64 (exact enough to descend through a million
leaves) and always the cumulative sum of the children in order, so a tree re-summed from its
leaves equals the incrementally updated one bit for bit.
"""

from __future__ import annotations

import torch
from torch import Tensor


class SumTree:
    """`capacity` non-negative priorities (all 0 at first) and their partial sums, on `device`."""

    def __init__(self, capacity: int, device: torch.device | str = "cpu", *,
                 branching: int = 32) -> None:
        if capacity < 1 or branching < 2:
            raise ValueError(f"a sum tree needs capacity >= 1 and branching >= 2, got capacity "
                             f"{capacity} and branching {branching}")
        self.capacity, self.branching = capacity, branching
        depth = 1
        while branching ** depth < capacity:
            depth += 1
        self.depth = depth
        """Levels below the root."""
        self.device = torch.device(device)
        self.levels = [torch.zeros(branching ** d, dtype=torch.float64, device=self.device)
                       for d in range(depth + 1)]
        """levels[0] is the root [1], levels[depth] the (padded) leaves."""
        self._children = torch.arange(branching, device=self.device)

    def total(self) -> Tensor:
        """The sum of all priorities (a 0-d tensor on the device)."""
        return self.levels[0][0]

    def priorities(self) -> Tensor:
        """The `capacity` leaf priorities [capacity] (a view)."""
        return self.levels[-1][: self.capacity]

    def update(self, index: Tensor, priority: Tensor) -> None:
        """Set the leaves `index` [B] to `priority` [B], then re-sum their paths to the root.

        Of an index repeated in the batch one value is kept (the last on CPU); every parent is
        then recomputed from all its children, so the sums always match the leaves.
        """
        K = self.branching
        node = index.to(device=self.device, dtype=torch.long)
        self.levels[-1][node] = priority.to(device=self.device, dtype=torch.float64)
        for d in range(self.depth - 1, -1, -1):
            node = node // K
            self.levels[d][node] = self.levels[d + 1].view(-1, K)[node].cumsum(-1)[:, -1]

    def rebuild(self) -> None:
        """Recompute every inner node from the leaves (after loading them)."""
        K = self.branching
        for d in range(self.depth - 1, -1, -1):
            self.levels[d].copy_(self.levels[d + 1].view(-1, K).cumsum(-1)[:, -1])

    def find(self, mass: Tensor) -> Tensor:
        """The leaf whose prefix-sum interval holds each of `mass` [B] (in [0, total)): the
        smallest i with sum_{j <= i} p_j > mass. Never a leaf of priority 0, even where float
        rounding puts a mass at or past the end of the last positive leaf."""
        K = self.branching
        u = mass.to(device=self.device, dtype=torch.float64)
        node = torch.zeros(u.shape, dtype=torch.long, device=self.device)
        for d in range(1, self.depth + 1):
            children = self.levels[d].view(-1, K)[node]  # [B, K]
            upto = children.cumsum(-1)
            # the first child whose prefix sum passes u: how many prefix sums are <= u
            j = torch.searchsorted(upto, u[:, None], right=True).squeeze(-1)
            # past the end only by rounding: the last child with mass instead
            last = torch.where(children > 0, self._children, 0).amax(-1)
            j = torch.minimum(j, last)
            u = u - (upto - children).gather(-1, j[:, None]).squeeze(-1)
            node = node * K + j
        return node

    def sample(self, batch_size: int) -> Tensor:
        """Stratified proportional sampling (Schaul et al. 2016, Appendix B.2.1): the total
        mass is cut into batch_size equal segments and one leaf drawn uniformly by mass from
        each, so P(i) = p_i / sum_j p_j with less variance than independent draws. Random
        numbers come from torch's global generator (checkpointed, so resume is exact)."""
        u = torch.rand(batch_size, dtype=torch.float64, device=self.device)
        segment = self.total() / batch_size
        offsets = torch.arange(batch_size, dtype=torch.float64, device=self.device)
        return self.find((offsets + u) * segment)
