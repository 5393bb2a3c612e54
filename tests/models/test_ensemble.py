"""Batched ensembles equal separately built layers; detached weights pass gradients to inputs
only."""

import torch
from torch import nn

from models.critics import QEnsemble
from models.ensemble import EnsembleLinear


def test_ensemble_linear_equals_one_linear_per_member_for_shared_and_stacked_inputs():
    torch.manual_seed(0)
    layer = EnsembleLinear(3, 5, 4)
    x = torch.randn(7, 5)
    xs = torch.randn(3, 7, 5)
    shared, stacked = layer(x), layer(xs)
    assert shared.shape == stacked.shape == (3, 7, 4)
    for i in range(3):
        ref = nn.Linear(5, 4)
        with torch.no_grad():
            ref.weight.copy_(layer.weight[i].T)
            ref.bias.copy_(layer.bias[i, 0])
        assert torch.allclose(shared[i], ref(x), atol=1e-6)
        assert torch.allclose(stacked[i], ref(xs[i]), atol=1e-6)
        assert torch.allclose(layer(x, member=i), ref(x), atol=1e-6)


def test_members_start_different_and_init_like_nn_linear():
    layer = EnsembleLinear(2, 100, 50)
    assert not torch.equal(layer.weight[0], layer.weight[1])
    assert layer.weight.abs().max() <= 0.1 and layer.weight.std() > 0.05  # U(-1/10, 1/10)


def test_q_ensemble_with_detached_params_sends_gradient_to_the_action_only():
    q = QEnsemble(3, 2, ensemble_size=2, hidden=(8, 8))
    obs, act = torch.randn(4, 3), torch.randn(4, 2, requires_grad=True)
    out = q(obs, act, detach_params=True)
    assert out.shape == (2, 4)
    out.sum().backward()
    assert act.grad is not None and act.grad.abs().sum() > 0
    assert all(p.grad is None for p in q.parameters())
    assert torch.allclose(q(obs, act, member=1), out[1], atol=1e-6)
