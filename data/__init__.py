"""Rollout and replay buffers, returns, episode datasets."""

from data.returns import gae
from data.rollout import RolloutBuffer

__all__ = ["RolloutBuffer", "gae"]
