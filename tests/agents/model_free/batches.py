"""Random replay batches shared by the SAC and TD3 tests."""

import torch


def random_batch(info, B=32, seed=0):
    """A replay batch of random transitions for an env's continuous spaces."""
    g = torch.Generator().manual_seed(seed)
    obs_dim, a_dim = info.obs_shape[0], info.action_shape[0]
    return {"obs": torch.randn(B, obs_dim, generator=g),
            "actions": torch.rand(B, a_dim, generator=g) * 2 - 1,
            "rewards": torch.randn(B, generator=g),
            "next_obs": torch.randn(B, obs_dim, generator=g),
            "terminated": torch.rand(B, generator=g) < 0.2,
            "discount": torch.full((B,), 0.99)}

