"""Discrete regression of scalars: a two-hot distribution over bins in symlog space.

Hafner, Pasukonis, Ba, Lillicrap (2023), "Mastering Diverse Domains through World Models"
(DreamerV3, arXiv:2301.04104, section 3 "Robust predictions"), as TD-MPC2 (Hansen, Su, Wang
2024, arXiv:2310.16828, section 3.3 and appendix) predicts rewards and values:

    symlog(x) = sign(x) log(1 + |x|),           symexp(y) = sign(y) (exp(|y|) - 1)
    two_hot(x): y = clamp(symlog(x), vmin, vmax) spread over its two neighbouring bins b_k,
                b_{k+1} of linspace(vmin, vmax, num_bins), with weights that sum to 1 and whose
                mean is y
    decode(logits) = symexp(sum_k softmax(logits)_k b_k)
    loss = cross-entropy of softmax(logits) against two_hot(x)

A network predicting logits over the bins learns targets of any scale with the same loss, and
the decoded value of the two-hot target itself is x again (for |symlog x| <= vmax).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def symlog(x: Tensor) -> Tensor:
    """sign(x) log(1 + |x|)."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(y: Tensor) -> Tensor:
    """sign(y) (exp(|y|) - 1), the inverse of symlog."""
    return torch.sign(y) * torch.expm1(y.abs())


def check_bins(num_bins: int, vmin: float, vmax: float) -> None:
    """Refuse a support the regression cannot use, naming the bad value."""
    if not (isinstance(num_bins, int) and num_bins >= 2):
        raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}")
    if not vmin < vmax:
        raise ValueError(f"vmin must be < vmax, got vmin={vmin!r}, vmax={vmax!r}")


def two_hot(x: Tensor, num_bins: int, vmin: float, vmax: float) -> Tensor:
    """x [...] -> two-hot weights [..., num_bins] over linspace(vmin, vmax, num_bins) of
    symlog(x), clamped to the support."""
    bin_size = (vmax - vmin) / (num_bins - 1)
    pos = (symlog(x).clamp(vmin, vmax) - vmin) / bin_size  # in [0, num_bins - 1]
    low = pos.floor().clamp(max=num_bins - 2)  # so the upper neighbour exists at vmax
    upper_w = (pos - low).unsqueeze(-1)
    low_i = low.long().unsqueeze(-1)
    out = torch.zeros(*x.shape, num_bins, dtype=x.dtype, device=x.device)
    out = out.scatter(-1, low_i, 1.0 - upper_w)
    return out.scatter(-1, low_i + 1, upper_w)


def two_hot_inv(logits: Tensor, vmin: float, vmax: float) -> Tensor:
    """The decoded scalar [...] of logits [..., num_bins]: symexp of the expected bin."""
    bins = torch.linspace(vmin, vmax, logits.shape[-1], dtype=logits.dtype,
                          device=logits.device)
    return symexp((F.softmax(logits, dim=-1) * bins).sum(-1))


def soft_ce(logits: Tensor, x: Tensor, vmin: float, vmax: float) -> Tensor:
    """Cross-entropy [...] of softmax(logits [..., num_bins]) against two_hot(x [...])."""
    target = two_hot(x, logits.shape[-1], vmin, vmax)
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1)
