"""Ensembles of small networks evaluated as one batched computation.

An ensemble of E MLPs is E stacked weight tensors: each layer is one batched matmul over all
members instead of a Python loop over E modules (twin critics of TD3/SAC, dynamics ensembles).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from models.mlp import ACTIVATIONS, check_activation, check_sizes


class EnsembleLinear(nn.Module):
    """E independent linear layers: x [B, in] (shared input) or [E, B, in] -> [E, B, out].

    Each member is initialized as `nn.Linear` initializes itself (uniform in +-1/sqrt(in) for
    weight and bias), so an ensemble starts exactly like E separately built layers would.
    """

    def __init__(self, ensemble_size: int, in_features: int, out_features: int) -> None:
        super().__init__()
        check_sizes(ensemble_size=ensemble_size, in_features=in_features,
                    out_features=out_features)
        self.ensemble_size, self.in_features, self.out_features = (
            ensemble_size, in_features, out_features)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features)
                                   .uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features)
                                 .uniform_(-bound, bound))

    def forward(
        self, x: Tensor, *, detach_params: bool = False, member: int | None = None
    ) -> Tensor:
        """`detach_params`: use the weights as constants, so gradients reach only the input.
        `member`: only that member's layer, [B, in] -> [B, out]."""
        weight: Tensor = self.weight
        bias: Tensor = self.bias
        if detach_params:
            weight, bias = weight.detach(), bias.detach()
        if member is not None:
            return torch.addmm(bias[member], x, weight[member])
        if x.dim() == 2:  # a shared input: broadcast it (a view, no copy); the members are
            # the weight's (a functional call may pass a subset of them)
            x = x.expand(weight.shape[0], *x.shape)
        if self.out_features == 1:
            # A one-column bmm takes a slow path on CPU; multiply-and-sum is 3x faster there.
            return (x * weight.transpose(1, 2)).sum(-1, keepdim=True) + bias
        return torch.baddbmm(bias, x, weight)

    def extra_repr(self) -> str:
        return f"ensemble_size={self.ensemble_size}, in={self.in_features}, out={self.out_features}"


def ensemble_mlp(
    ensemble_size: int, in_dim: int, hidden: Sequence[int], out_dim: int, *,
    activation: str = "relu",
) -> nn.Sequential:
    """E MLPs in_dim -> hidden... -> out_dim as stacked layers: [B, in] -> [E, B, out]."""
    check_activation(activation)
    check_sizes(ensemble_size=ensemble_size, in_dim=in_dim, hidden=hidden, out_dim=out_dim)
    dims = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(EnsembleLinear(ensemble_size, a, b))
        if i < len(dims) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)
