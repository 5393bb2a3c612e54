"""Multi-layer perceptrons."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU}


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    *,
    activation: str = "tanh",
    out_gain: float = 1.0,
    orthogonal: bool = True,
) -> nn.Sequential:
    """in_dim -> hidden... -> out_dim, activation between layers, none at the output.

    Orthogonal init with gain sqrt(2) on hidden layers and `out_gain` on the last one follows
    the PPO implementation study of Engstrom et al. (2020) / Andrychowicz et al. (2021): a small
    policy-output gain (0.01) starts the policy near uniform.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    dims = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        linear = nn.Linear(a, b)
        if orthogonal:
            last = i == len(dims) - 2
            nn.init.orthogonal_(linear.weight, out_gain if last else math.sqrt(2))
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(dims) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)
