"""Multi-layer perceptrons."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU}


def check_sizes(**sizes: int | Sequence[int]) -> None:
    """Refuse a layer size (or a list of them) that is not an integer >= 1, naming it:
    a zero-width layer trains silently to nothing, a negative one fails deep inside torch."""
    for name, v in sizes.items():
        values = list(v) if isinstance(v, Sequence) else [v]
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in values):
            what = "layer sizes that are integers" if isinstance(v, Sequence) else "an integer"
            raise ValueError(f"{name} must be {what} >= 1, got {v!r}")


def check_activation(name: str) -> None:
    """Refuse an activation name the networks do not know, naming those they do."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not one of {sorted(ACTIVATIONS)}")


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
    check_activation(activation)
    check_sizes(in_dim=in_dim, hidden=hidden, out_dim=out_dim)
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


def trunk(in_dim: int, hidden: Sequence[int], activation: str) -> nn.Sequential:
    """in_dim -> hidden..., with the activation after the last hidden layer too."""
    if not hidden:
        raise ValueError("an actor needs at least one hidden layer")
    check_activation(activation)
    check_sizes(in_dim=in_dim, hidden=hidden)
    body = mlp(in_dim, hidden[:-1], hidden[-1], activation=activation, orthogonal=False)
    return nn.Sequential(*body, ACTIVATIONS[activation]())
