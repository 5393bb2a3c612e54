"""Tabular MDPs: finite states and actions with a known model, behind the Gymnasium API.

A `TabularMDP` holds the model that the dynamic-programming methods of CS285 lectures 4 and 7
(and Sutton & Barto 2018, ch. 4) sweep over and that the inverse-RL methods of lecture 20
(Ziebart et al. 2008) differentiate through: the transition tensor P[s, a, s'], the reward
R[s, a, s'] of each transition, the initial distribution p0[s], which states are terminal, and a
state-feature matrix phi[s, f]. `TabularEnv` samples that model with the env's own generator and
observes the state as a one-hot float32 vector, so every agent of the stack (DQN, PPO) runs on
it too.

Entries (tags `tabular`, `state`, `discrete`):
  gridworld-4x4        our GridWorld, deterministic moves, walls, one hazard
  gridworld-slippery   our GridWorld 8x8 with walls and hazards; a move slips with probability
                       0.2 to a perpendicular direction (as FrozenLake's is_slippery)
  frozenlake, frozenlake-8x8, cliffwalking, taxi
                       Gymnasium's toy-text envs; the model is read from their documented
                       transition table `env.unwrapped.P` ({s: {a: [(p, s', r, terminated)]}})

The entries are registered by sim/tabular_envs.py. Conventions: a terminal state is
absorbing with reward 0 (its value is 0); walls are states that are never entered (p0 is 0
there). `sim.tabular.mdp(name)` gives the model of an entry.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

GRID_ACTIONS = ("left", "down", "right", "up")
"""GridWorld's actions, in FrozenLake's order (0 left, 1 down, 2 right, 3 up)."""
_MOVES = {"left": (0, -1), "down": (1, 0), "right": (0, 1), "up": (-1, 0)}


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP. Arrays are read-only float64 (bool for `terminal`)."""

    name: str
    P: np.ndarray
    """[S, A, S'] transition probabilities; each row P[s, a] sums to 1."""
    R: np.ndarray
    """[S, A, S'] reward of the transition s -a-> s' (0 where P is 0)."""
    p0: np.ndarray
    """[S] initial state distribution."""
    terminal: np.ndarray
    """[S] bool: the episode ends on entering the state (absorbing, reward 0 from there)."""
    features: np.ndarray
    """[S, F] state features phi(s) (one-hot states unless the entry defines its own)."""
    feature_names: tuple[str, ...]
    action_names: tuple[str, ...]
    grid: tuple[str, ...] | None = field(default=None)
    """Grid entries: the layout, one character per state in row-major order (S start, G goal,
    H hazard, # wall, . free), for printing values and policies as a grid."""

    def __post_init__(self) -> None:
        S, A = self.P.shape[:2]
        shapes = {"P": (self.P, (S, A, S)), "R": (self.R, (S, A, S)), "p0": (self.p0, (S,)),
                  "terminal": (self.terminal, (S,))}
        for what, (array, shape) in shapes.items():
            if array.shape != shape:
                raise ValueError(f"{self.name}: {what} has shape {array.shape}, expected {shape}")
        if self.features.ndim != 2 or self.features.shape[0] != S:
            raise ValueError(f"{self.name}: features have shape {self.features.shape}, "
                             f"expected [{S}, F]")
        if len(self.feature_names) != self.features.shape[1] or len(self.action_names) != A:
            raise ValueError(f"{self.name}: {len(self.feature_names)} feature names for "
                             f"{self.features.shape[1]} features, {len(self.action_names)} "
                             f"action names for {A} actions")
        if np.any(self.P < 0) or not np.allclose(self.P.sum(-1), 1.0, atol=1e-9):
            raise ValueError(f"{self.name}: rows of P must be distributions over next states")
        if np.any(self.p0 < 0) or not np.isclose(self.p0.sum(), 1.0, atol=1e-9):
            raise ValueError(f"{self.name}: p0 must be a distribution over states")
        if self.grid is not None and sum(len(row) for row in self.grid) != S:
            raise ValueError(f"{self.name}: the grid layout has a cell count other than {S}")
        for array in (self.P, self.R, self.p0, self.terminal, self.features):
            array.setflags(write=False)

    @property
    def n_states(self) -> int:
        return int(self.P.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.P.shape[1])

    @functools.cached_property
    def expected_reward(self) -> np.ndarray:
        """R(s, a) = sum_s' P(s' | s, a) R(s, a, s') [S, A]."""
        r = np.einsum("sat,sat->sa", self.P, self.R)
        r.setflags(write=False)
        return r

    @property
    def grid_shape(self) -> tuple[int, int] | None:
        return None if self.grid is None else (len(self.grid), len(self.grid[0]))


class TabularEnv(gym.Env[np.ndarray, np.int64]):
    """Samples a TabularMDP: s0 ~ p0, s' ~ P(. | s, a), reward R(s, a, s'); obs one-hot [S].

    info["state"] is the state index. Stepping a terminal state stays there with reward 0.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 20}
    _state_exclude = ("mdp", "_cdf", "_p0_cdf")  # constants of the model (sim.state skips)

    def __init__(self, mdp: TabularMDP, render_mode: str | None = None) -> None:
        modes = ("ansi", "rgb_array") if mdp.grid is not None else ("ansi",)
        if render_mode not in (None, *modes):
            raise ValueError(f"{mdp.name} renders as {' or '.join(modes)} (or None), not "
                             f"{render_mode!r}")
        self.mdp, self.render_mode = mdp, render_mode
        S = mdp.n_states
        self.observation_space = gym.spaces.Box(0.0, 1.0, (S,), np.float32)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        # Cumulative rows, normalized so the last state of positive probability is exactly 1
        # (x / x == 1 in IEEE arithmetic): a uniform draw in [0, 1) never picks a p = 0 state.
        cdf = np.cumsum(mdp.P, axis=-1)
        self._cdf = cdf / cdf[..., -1:]
        self._p0_cdf = np.cumsum(mdp.p0) / mdp.p0.sum()
        self.s: int | None = None

    def _draw(self, cdf: np.ndarray) -> int:
        return int(np.searchsorted(cdf, self.np_random.random(), side="right"))

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.mdp.n_states, np.float32)
        obs[self.s] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.s = self._draw(self._p0_cdf)
        return self._obs(), {"state": self.s}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.s is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not one of the {self.mdp.n_actions} "
                             f"actions 0..{self.mdp.n_actions - 1}")
        s, a = self.s, int(action)
        if self.mdp.terminal[s]:
            return self._obs(), 0.0, True, False, {"state": s}
        s2 = self._draw(self._cdf[s, a])
        self.s = s2
        return self._obs(), float(self.mdp.R[s, a, s2]), bool(self.mdp.terminal[s2]), False, {
            "state": s2}

    def render(self) -> Any:
        """ansi: the layout with the agent as A; rgb_array (grids): 16-pixel cells, the agent
        blue, goals green, hazards red, walls grey."""
        grid = self.mdp.grid
        if self.render_mode == "rgb_array" and grid is not None:
            cells = "".join(grid)
            colours = np.array([_COLOURS[c] for c in cells], np.uint8)
            if self.s is not None:
                colours[self.s] = (40, 90, 220)
            image = colours.reshape(len(grid), len(grid[0]), 3)
            return np.repeat(np.repeat(image, 16, axis=0), 16, axis=1)
        if self.render_mode != "ansi":
            return None
        if grid is None or self.s is None:
            return f"state {self.s}\n"
        text = list("".join(grid))
        text[self.s] = "A"
        w = len(grid[0])
        return "\n".join("".join(text[i:i + w]) for i in range(0, len(text), w)) + "\n"


_COLOURS = {".": (245, 245, 245), "S": (200, 220, 255), "G": (60, 180, 75), "H": (220, 50, 50),
            "#": (110, 110, 110)}


# -- grid worlds ---------------------------------------------------------------------------------
def grid_features(layout: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """phi(s) for a grid: [goal, hazard, wall, distance, step]: indicators of the cell kind,
    the Manhattan distance to the nearest goal over (rows + cols), and a constant 1 (its weight
    is a cost per step: matching its count matches the demonstrations' length). The features
    IRL recovers a grid reward from."""
    cells = "".join(layout)
    H, W = len(layout), len(layout[0])
    rc = np.array([divmod(i, W) for i in range(len(cells))], dtype=np.float64)
    goals = rc[[c == "G" for c in cells]]
    dist = np.abs(rc[:, None, :] - goals[None]).sum(-1).min(1) / (H + W)
    kinds = [np.array([c == k for c in cells], np.float64) for k in "GH#"]
    return (np.stack([*kinds, dist, np.ones(len(cells))], axis=1),
            ("goal", "hazard", "wall", "distance", "step"))


def grid_world(name: str, layout: Sequence[str], *, slip: float = 0.0, goal_reward: float = 1.0,
               hazard_reward: float = -1.0, step_reward: float = 0.0) -> TabularMDP:
    """A grid world from layout rows (S start, G goal, H hazard, # wall, . free).

    A move goes to the neighbouring cell in its direction with probability 1 - slip, and to
    each perpendicular one with slip / 2; a move into a wall or off the grid stays put.
    Entering G (reward goal_reward) or H (hazard_reward) ends the episode; any other move
    earns step_reward. The episode starts on an S cell (uniformly among them).
    """
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must be a probability in [0, 1], got {slip!r}")
    rows = [r for r in layout]
    W = len(rows[0])
    if not rows or any(len(r) != W for r in rows) or set("".join(rows)) - set("SGH#."):
        raise ValueError(f"{name}: layout rows must have equal lengths and only the "
                         "characters S G H # .")
    cells = "".join(rows)
    S, A = len(cells), len(GRID_ACTIONS)
    if "S" not in cells or "G" not in cells:
        raise ValueError(f"{name}: a layout needs a start S and a goal G")
    terminal = np.array([c in "GH" for c in cells])
    reward_in = np.array([goal_reward if c == "G" else hazard_reward if c == "H" else step_reward
                          for c in cells])

    def moved(s: int, direction: str) -> int:
        r, c = divmod(s, W)
        dr, dc = _MOVES[direction]
        r2, c2 = r + dr, c + dc
        if not (0 <= r2 < len(rows) and 0 <= c2 < W) or cells[r2 * W + c2] == "#":
            return s
        return r2 * W + c2

    P = np.zeros((S, A, S))
    for s in range(S):
        for a, direction in enumerate(GRID_ACTIONS):
            if terminal[s] or cells[s] == "#":
                P[s, a, s] = 1.0  # absorbing (walls are never entered)
                continue
            sides = [GRID_ACTIONS[(a - 1) % A], GRID_ACTIONS[(a + 1) % A]]  # perpendicular
            for d, p in ((direction, 1.0 - slip), (sides[0], slip / 2), (sides[1], slip / 2)):
                P[s, a, moved(s, d)] += p
    R = np.where(P > 0, reward_in[None, None, :], 0.0)
    R[terminal] = 0.0
    p0 = np.array([c == "S" for c in cells], np.float64)
    features, names = grid_features(rows)
    return TabularMDP(name, P, R, p0 / p0.sum(), terminal, features, names, GRID_ACTIONS,
                      tuple(rows))


GRIDS: dict[str, tuple[tuple[str, ...], float, int, str]] = {
    "gridworld-4x4": (("S..#", ".#..", "..#.", "H..G"), 0.0, 50,
                      "4x4 grid world, deterministic moves, walls and a hazard; +1 at the goal."),
    "gridworld-slippery": (("S.......", ".##..H..", "...#....", ".H...##.", "...H....",
                            ".#...#H.", "...#....", "H.....#G"), 0.2, 200,
                           "8x8 grid world with walls and hazards (-1); a move slips to a "
                           "perpendicular direction with probability 0.2; +1 at the goal."),
}
"""name -> (layout, slip, max episode steps, description)."""


def reachable(P: np.ndarray, p0: np.ndarray, terminal: np.ndarray) -> np.ndarray:
    """[S] bool: states some policy reaches from p0 (an episode stops at a terminal state)."""
    seen = p0 > 0
    while True:
        grown = seen | (P[seen & ~terminal] > 0).any(axis=(0, 1))
        if np.array_equal(grown, seen):
            return seen
        seen = grown


# -- Gymnasium's toy-text envs -------------------------------------------------------------------
def from_gymnasium(name: str, env_id: str, **kwargs: Any) -> TabularMDP:
    """The model of a Gymnasium toy-text env, read from its transition table env.unwrapped.P.

    A state is terminal when a transition into it ends the episode; gymnasium's table goes on
    past termination (Taxi's delivered states move around), so terminal rows become absorbing
    here. Refuses a table whose termination or reward is not a function of (s, a, s').
    """
    env = gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped
    table: dict[int, dict[int, list[tuple[float, int, float, bool]]]] = env.P  # type: ignore
    S, A = int(env.observation_space.n), int(env.action_space.n)  # type: ignore[attr-defined]
    P, R = np.zeros((S, A, S)), np.zeros((S, A, S))
    ends = np.zeros((S, A, S), dtype=np.int8)  # 1: a transition that terminates, -1: does not
    terminal = np.zeros(S, dtype=bool)
    for s, by_action in table.items():
        for a, outcomes in by_action.items():
            for p, s2, r, done in outcomes:
                if p > 0 and P[s, a, s2] > 0 and (R[s, a, s2] != r or (ends[s, a, s2] > 0) != done):
                    raise ValueError(f"{env_id}: two outcomes of ({s}, {a}) -> {s2} differ")
                P[s, a, s2] += p
                R[s, a, s2] = r
                ends[s, a, s2] = 1 if done else -1
                terminal[s2] |= bool(done)
    p0 = np.asarray(env.initial_state_distrib, np.float64)  # type: ignore[attr-defined]
    live = reachable(P, p0, terminal) & ~terminal
    if np.any((P[live] > 0) & ((ends[live] > 0) != terminal[None, None, :])):
        raise ValueError(f"{env_id}: termination is not a property of the next state")
    P[terminal], R[terminal] = 0.0, 0.0
    for t in np.flatnonzero(terminal):
        P[t, :, t] = 1.0
    grid, features, names = None, np.eye(S), tuple(f"s{i}" for i in range(S))
    kind = env_id.split("-")[0]
    if kind == "FrozenLake":  # F frozen, H hole, S start, G goal
        desc = env.desc  # type: ignore[attr-defined]
        grid = tuple(row.tobytes().decode().replace("F", ".") for row in desc)
    elif kind == "CliffWalking":  # the cliff as hazards, the goal bottom right
        h, w = env.shape  # type: ignore[attr-defined]
        cells = np.full((h, w), ".")
        cells[env._cliff] = "H"  # type: ignore[attr-defined]
        cells[np.unravel_index(env.start_state_index, (h, w))] = "S"  # type: ignore[attr-defined]
        cells[h - 1, w - 1] = "G"
        grid = tuple("".join(row) for row in cells)
    if grid is not None:
        features, names = grid_features(grid)
    actions = {"FrozenLake": GRID_ACTIONS, "CliffWalking": ("up", "right", "down", "left"),
               "Taxi": ("south", "north", "east", "west", "pickup", "dropoff")}
    env.close()
    return TabularMDP(name, P, R, p0, terminal, features, names,
                      actions[kind], grid)


GYMNASIUM: dict[str, tuple[str, dict[str, Any], int, str]] = {
    "frozenlake": ("FrozenLake-v1", {"map_name": "4x4", "is_slippery": True}, 100,
                   "Gymnasium FrozenLake 4x4, slippery: cross the ice to the goal, holes end it."),
    "frozenlake-8x8": ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": True}, 200,
                       "Gymnasium FrozenLake 8x8, slippery."),
    "cliffwalking": ("CliffWalking-v1", {}, 200,
                     "Gymnasium CliffWalking 4x12: -1 a step, -100 and back to start at the "
                     "cliff (Sutton & Barto 2018, example 6.6)."),
    "taxi": ("Taxi-v4", {}, 200, "Gymnasium Taxi 5x5 (Dietterich 2000): pick up and drop off "
             "a passenger; 500 states, 6 actions."),
}
"""name -> (Gymnasium id, its options, max episode steps, description)."""


@functools.cache
def mdp(name: str) -> TabularMDP:
    """The model of tabular entry `name` (sim.names(tag="tabular") lists them)."""
    if name in GRIDS:
        layout, slip, _, _ = GRIDS[name]
        return grid_world(name, layout, slip=slip)
    if name in GYMNASIUM:
        env_id, kwargs, _, _ = GYMNASIUM[name]
        return from_gymnasium(name, env_id, **kwargs)
    known = ", ".join([*GRIDS, *GYMNASIUM])
    raise ValueError(f"{name!r} is not a tabular environment; tabular environments: {known}")


def names() -> list[str]:
    """The tabular entries (sim/tabular_envs.py registers them), importing no other backend."""
    return sorted([*GRIDS, *GYMNASIUM])
