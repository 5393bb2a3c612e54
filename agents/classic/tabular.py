"""What the tabular methods share: the discount, the env check, the model as tensors, the
greedy policy and its export, and the value table as values.json and as text.

Dynamic programming (agents/classic/dynamic_programming.py) and TD control
(agents/classic/td_control.py) both hold Q(s, a) for the states of a `sim.tabular.TabularMDP`,
which every tabular env observes as a one-hot vector: state = argmax(obs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.loops.tabular import VALUES_FILE
from agents.runs.config import require_number
from models.export_heads import ArgmaxActionHead
from sim import tabular


@dataclass(frozen=True)
class TabularConfig:
    """What every tabular method has."""

    gamma: float = 0.99
    """Discount factor, in [0, 1) (the value-iteration error bound needs gamma < 1)."""

    def __post_init__(self) -> None:
        require_number(self, "gamma", low=0.0, high=1.0, high_open=True)


def check_tabular(algo: str, env: str) -> None:
    """Refuse, in one line, an env without a known tabular model."""
    if env not in tabular.names():
        raise ValueError(f"{algo} runs on tabular environments only; {env!r} is not one; "
                         f"tabular environments: {', '.join(tabular.names())}")


@dataclass(frozen=True)
class Model:
    """A TabularMDP as float64 tensors on the training device, for the Bellman backups."""

    P: Tensor
    """[S, A, S'] transition probabilities."""
    R: Tensor
    """[S, A] expected reward R(s, a) = sum_s' P(s'|s, a) R(s, a, s')."""
    live: Tensor
    """[S] 1 for non-terminal states, 0 for terminal ones (whose value is 0)."""
    p0: Tensor
    """[S] initial state distribution."""

    @classmethod
    def of(cls, mdp: tabular.TabularMDP, device: torch.device) -> Model:
        def t(a: np.ndarray) -> Tensor:
            return torch.tensor(np.asarray(a, np.float64), device=device)

        return cls(t(mdp.P), t(mdp.expected_reward), t(~mdp.terminal), t(mdp.p0))


def states(obs: Tensor | np.ndarray, device: torch.device) -> Tensor:
    """State indices [B] of one-hot observations [B, S]."""
    return torch.as_tensor(obs, device=device).argmax(-1)


def greedy(Q: Tensor) -> Tensor:
    """pi(s) = argmax_a Q(s, a) [S] (the first of equal values)."""
    return Q.argmax(-1)


def policy_module(policy: Tensor, n_actions: int) -> nn.Module:
    """The lookup bundle's module: one-hot obs [B, S] -> greedy action index as float [B, 1].

    A bias-free linear layer holds the one-hot of pi(s) (not Q, whose float32 rounding could
    tie actions the float64 table tells apart), so the argmax head picks exactly pi(s).
    """
    table = torch.nn.functional.one_hot(policy.cpu(), n_actions).float()  # [S, A]
    lookup = nn.Linear(table.shape[0], n_actions, bias=False)
    with torch.no_grad():
        lookup.weight.copy_(table.T)
    return ArgmaxActionHead(None, lookup).cpu().eval()


def values_record(Q: Tensor, V: Tensor, policy: Tensor, gamma: float, **how: Any
                  ) -> dict[str, Any]:
    """values.json: V [S], Q [S][A], the greedy policy [S], gamma, and `how` they were reached
    (tolerance, bound, sweeps, steps)."""
    return {"V": V.cpu().tolist(), "Q": Q.cpu().tolist(), "policy": policy.cpu().tolist(),
            "gamma": gamma, **how}


_ARROWS = {"left": "←", "down": "↓", "right": "→", "up": "↑"}
_CELLS = {"#": "#", "G": "G", "H": "H"}


def format_values(values: dict[str, Any], env: str, *, max_rows: int = 20) -> str:
    """The value table and the greedy policy as text: grids with arrows for grid envs, a
    state table otherwise (the first `max_rows` reachable non-terminal states)."""
    mdp = tabular.mdp(env)
    V, policy = np.asarray(values["V"]), np.asarray(values["policy"], np.int64)
    names = mdp.action_names
    if mdp.grid is not None:
        cells = "".join(mdp.grid)
        w = len(mdp.grid[0])
        vals, arrows = [], []
        for s, c in enumerate(cells):
            vals.append("#" if c == "#" else f"{V[s]:.3g}")
            arrows.append(_CELLS.get(c) or _ARROWS.get(names[policy[s]], names[policy[s]][0]))
        width = max(len(v) for v in vals)
        rows_v = [" ".join(v.rjust(width) for v in vals[i:i + w]) for i in range(0, len(vals), w)]
        rows_p = [" ".join(arrows[i:i + w]) for i in range(0, len(arrows), w)]
        return "V(s):\n" + "\n".join(rows_v) + "\n\npolicy (G goal, H hazard, # wall):\n" + (
            "\n".join(rows_p))
    shown = np.flatnonzero(tabular.reachable(mdp.P, mdp.p0, mdp.terminal) & ~mdp.terminal)
    lines = ["state        V(s)  pi(s)"]
    lines += [f"{s:5d} {V[s]:11.4g}  {names[policy[s]]}" for s in shown[:max_rows]]
    if len(shown) > max_rows:
        lines.append(f"... {len(shown) - max_rows} more reachable states in {VALUES_FILE}")
    return "\n".join(lines)
