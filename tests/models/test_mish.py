"""models.mish equals torch's Mish in value and gradient, everywhere, and stays finite."""

import torch
import torch.nn.functional as F

from models.mish import Mish, mish

X = torch.cat([torch.linspace(-100.0, 100.0, 20_001), torch.tensor([-1e4, 1e4, 0.0])])


def test_mish_equals_torch_mish_with_and_without_a_gradient() -> None:
    want = F.mish(X.double())
    with torch.no_grad():
        plain = mish(X)
    x = X.clone().requires_grad_()
    graded = Mish()(x)
    assert graded.grad_fn is not None and "Mish" in type(graded.grad_fn).__name__
    for got in (plain, graded.detach()):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-6)
    assert mish(torch.zeros(1)).item() == 0.0


def test_the_closed_form_gradient_is_mishs_gradient() -> None:
    x = X.clone().requires_grad_()
    (Mish()(x) * torch.linspace(-2.0, 2.0, X.numel())).sum().backward()
    xd = X.double().requires_grad_()
    (F.mish(xd) * torch.linspace(-2.0, 2.0, X.numel(), dtype=torch.double)).sum().backward()
    assert x.grad is not None and xd.grad is not None and torch.isfinite(x.grad).all()
    torch.testing.assert_close(x.grad.double(), xd.grad, rtol=1e-5, atol=1e-5)
    assert torch.autograd.gradcheck(mish, (torch.randn(64, dtype=torch.double,
                                                       requires_grad=True) * 5,))
