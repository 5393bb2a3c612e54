"""Rollout and replay buffers, returns, episode datasets, durable files.

The names below load their module on first use (PEP 562), so `import data` and
`import data.files` load neither torch (the buffers and `gae`) nor h5py (the datasets):
deploy.runtime writes and checks files through data.files on computers without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from data.dataset import Dataset, DatasetWriter
    from data.episode import Episode
    from data.manifest import DatasetError
    from data.replay import ReplayBuffer
    from data.returns import gae
    from data.rollout import RolloutBuffer

_LAZY = {
    "Dataset": "data.dataset", "DatasetWriter": "data.dataset", "Episode": "data.episode",
    "DatasetError": "data.manifest", "ReplayBuffer": "data.replay", "gae": "data.returns",
    "RolloutBuffer": "data.rollout",
}

__all__ = ["Dataset", "DatasetError", "DatasetWriter", "Episode", "ReplayBuffer", "RolloutBuffer",
           "gae"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
