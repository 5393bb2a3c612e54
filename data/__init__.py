"""Rollout and replay buffers, returns, episode datasets."""

from data.dataset import Dataset, DatasetWriter
from data.episode import Episode
from data.manifest import DatasetError
from data.replay import ReplayBuffer
from data.returns import gae
from data.rollout import RolloutBuffer

__all__ = ["Dataset", "DatasetError", "DatasetWriter", "Episode", "ReplayBuffer", "RolloutBuffer",
           "gae"]
