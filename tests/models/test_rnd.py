"""RND's networks: the target is fixed (no gradient, never changes), the predictor learns it."""

import torch

from models.rnd import RNDPredictor, RNDTarget


def test_target_gets_no_gradient_and_never_changes_while_the_predictor_trains():
    torch.manual_seed(0)
    target, predictor = RNDTarget(3), RNDPredictor(3)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    opt = torch.optim.Adam([*predictor.parameters(), *target.parameters()], lr=1e-2)
    x = torch.randn(32, 3)
    for _ in range(5):
        loss = (predictor(x) - target(x)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(not p.requires_grad and p.grad is None for p in target.parameters())
    assert not target(x).requires_grad
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in predictor.parameters())


def test_shapes_and_the_predictor_is_one_layer_deeper():
    target, predictor = RNDTarget(5, hidden=(16, 8), features=4), RNDPredictor(
        5, hidden=(16, 8), features=4)
    x = torch.randn(7, 5)
    assert target(x).shape == predictor(x).shape == (7, 4)
    linear = [m for m in predictor.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear) == len([m for m in target.modules() if isinstance(m, torch.nn.Linear)]) + 1


def test_the_target_is_fixed_by_the_seed():
    torch.manual_seed(4)
    a = RNDTarget(3)
    torch.manual_seed(4)
    b = RNDTarget(3)
    x = torch.randn(2, 3)
    assert torch.equal(a(x), b(x))
