import os

import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(autouse=True)
def _one_thread():
    """Small networks on 2 cores: one torch thread is fastest and keeps results reproducible."""
    torch.set_num_threads(1)
