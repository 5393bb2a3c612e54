"""A person as the expert: keyboard (or gamepad) input in a rendered window.

Keymap (also printed by `kinema collect --expert teleop`):

    Enter          start the next episode (recording begins with its first step)
    S              stop the episode now and keep it (recorded as truncated)
    Backspace      discard the episode in progress; Enter starts a fresh one
    Esc or Q       quit; the episode in progress is discarded, committed ones are kept
    continuous actions, one key pair per dimension (held: -1 / +1, neither: 0):
        dim 0 Left/Right   dim 1 Down/Up   dim 2 J/L   dim 3 K/I
        dim 4 F/H          dim 5 G/T       dim 6 Z/X   dim 7 C/V
    discrete actions: digits 0-9 pick the action, Left/Right pick the first/last one;
        with no key held the last picked action repeats (initially action 0)
    gamepad (when one is plugged in): sticks drive dims 0-3; A start, X stop, B discard,
        Back quit

Input goes through an `InputSource`: `KeyboardInput` shows the env's frames in a pygame window
and paces the episode at the env's control rate so a person can follow; `ScriptedInput` replays
a list of polls, so tests and scripted corrections run headless through the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

import sim

AXIS_KEYS = (("left", "right"), ("down", "up"), ("j", "l"), ("k", "i"), ("f", "h"), ("g", "t"),
             ("z", "x"), ("c", "v"))
COMMAND_KEYS = {"return": "start", "s": "stop", "backspace": "discard", "escape": "quit",
                "q": "quit"}


@dataclass(frozen=True)
class Poll:
    """What the person does at one step: the keys held and at most one command."""

    keys: frozenset[str] = field(default_factory=frozenset)
    command: str | None = None  # "start" | "stop" | "discard" | "quit"
    axes: tuple[float, ...] | None = None  # gamepad sticks, overriding keys when given


class InputSource(Protocol):
    def poll(self) -> Poll: ...

    def show(self, frame: np.ndarray | None, rate_hz: float) -> None: ...

    def close(self) -> None: ...


class ScriptedInput:
    """Replays `polls` in order; after the last one, quits (so a script cannot hang a test)."""

    def __init__(self, polls: Iterable[Poll | str | Sequence[str]]) -> None:
        self._polls = [p if isinstance(p, Poll) else _poll_from(p) for p in polls]
        self._i = 0
        self.frames_shown = 0

    def poll(self) -> Poll:
        self._i += 1
        return self._polls[self._i - 1] if self._i <= len(self._polls) else Poll(command="quit")

    def show(self, frame: np.ndarray | None, rate_hz: float) -> None:
        self.frames_shown += frame is not None

    def close(self) -> None:
        pass


def _poll_from(p: str | Sequence[str]) -> Poll:
    """'start' -> Poll(command='start'); 'right' or ['j', 'up'] -> keys held."""
    keys = [p] if isinstance(p, str) else list(p)
    commands = [COMMAND_KEYS.get(k, k) for k in keys if COMMAND_KEYS.get(k, k) in
                ("start", "stop", "discard", "quit")]
    held = frozenset(k for k in keys if COMMAND_KEYS.get(k, k) not in commands)
    return Poll(held, commands[0] if commands else None)


class KeyboardInput:
    """pygame window: shows frames, reads the keyboard (and a gamepad when present)."""

    def __init__(self, scale: int = 2) -> None:
        try:
            import pygame

            pygame.display.init()
            pygame.joystick.init()
            self._screen: Any = None  # a pygame Surface once the window opens
        except Exception as e:  # pygame raises its own error type when there is no display
            raise ValueError(f"teleop needs a display for its window ({e}); on a headless "
                             "machine use a scripted input source") from None
        self.pg, self.scale = pygame, scale
        self._clock = pygame.time.Clock()
        self._pad = pygame.joystick.Joystick(0) if pygame.joystick.get_count() else None

    def poll(self) -> Poll:
        pg, command = self.pg, None
        names = {pg.K_RETURN: "return", pg.K_s: "s", pg.K_BACKSPACE: "backspace",
                 pg.K_ESCAPE: "escape", pg.K_q: "q"}
        pad_cmd = {0: "start", 2: "stop", 1: "discard", 6: "quit"}  # A, X, B, Back (SDL layout)
        for ev in pg.event.get():
            if ev.type == pg.QUIT:
                command = "quit"
            elif ev.type == pg.KEYDOWN and ev.key in names:
                command = command or COMMAND_KEYS[names[ev.key]]
            elif ev.type == pg.JOYBUTTONDOWN and ev.button in pad_cmd:
                command = command or pad_cmd[ev.button]
        pressed = pg.key.get_pressed()
        keys = {pg.key.name(k) for k in range(len(pressed)) if pressed[k]}
        axes = None
        if self._pad is not None:  # sticks: left x, left y (up = +), right x, right y
            raw = [self._pad.get_axis(i) for i in range(min(4, self._pad.get_numaxes()))]
            axes = tuple(-v if i % 2 else v for i, v in enumerate(raw))
            axes = axes if any(abs(v) > 0.15 for v in axes) else None  # dead zone
        return Poll(frozenset(keys), command, axes)

    def show(self, frame: np.ndarray | None, rate_hz: float) -> None:
        pg = self.pg
        if frame is not None:
            h, w = frame.shape[:2]
            if self._screen is None:
                self._screen = pg.display.set_mode((w * self.scale, h * self.scale))
                pg.display.set_caption("kinema teleop: Enter start, S stop, Backspace discard, "
                                       "Esc quit")
            surf = pg.surfarray.make_surface(np.ascontiguousarray(frame[..., :3].swapaxes(0, 1)))
            screen = self._screen
            screen.blit(pg.transform.scale(surf, screen.get_size()), (0, 0))
            pg.display.flip()
        self._clock.tick(rate_hz)  # the person acts at the env's control rate

    def close(self) -> None:
        self.pg.display.quit()


class Teleop:
    """The expert protocol (agents/experts/base.py) over an input source."""

    render_mode: str | None = "rgb_array"

    def __init__(self, env: str, source: InputSource | None = None) -> None:
        info = sim.spec(env).info
        self.discrete, self.n = info.discrete, info.n_actions
        self.act_dim = 0 if info.discrete else int(np.prod(info.action_shape))
        if self.act_dim > len(AXIS_KEYS):
            raise ValueError(f"teleop maps at most {len(AXIS_KEYS)} action dims to keys; "
                             f"{env!r} has {self.act_dim}")
        self.rate_hz = info.rate_hz
        self.source = source if source is not None else KeyboardInput()
        self.name, self.spec = "teleop", {"kind": "teleop", "env": env,
                                          "source": type(self.source).__name__}
        self._last = Poll()
        self._choice = 0

    def begin(self, env: gym.Env, obs: np.ndarray) -> bool:
        """Show the first frame and wait for Enter (True) or quit (False)."""
        self._choice = 0
        while True:
            self.source.show(_frame(env), self.rate_hz)
            p = self.source.poll()
            if p.command in ("start", "quit"):
                self._last = Poll()
                return p.command == "start"

    def signal(self) -> str | None:
        self._last = self.source.poll()
        return self._last.command if self._last.command in ("stop", "discard", "quit") else None

    def act(self, obs: np.ndarray, env: gym.Env) -> np.ndarray:
        self.source.show(_frame(env), self.rate_hz)
        keys = self._last.keys
        if self.discrete:
            assert self.n is not None
            digits = [int(k) for k in keys if k.isdigit() and int(k) < self.n]
            if digits:
                self._choice = digits[0]
            elif "left" in keys or "right" in keys:
                self._choice = 0 if "left" in keys else self.n - 1
            return np.array(self._choice, dtype=np.int64)
        a = np.zeros(self.act_dim, dtype=np.float32)
        for i, (neg, pos) in enumerate(AXIS_KEYS[: self.act_dim]):
            a[i] = float(pos in keys) - float(neg in keys)
        if self._last.axes is not None:
            n = min(self.act_dim, len(self._last.axes))
            a[:n] = np.clip(self._last.axes[:n], -1.0, 1.0)
        return a

    def close(self) -> None:
        self.source.close()


def _frame(env: gym.Env) -> np.ndarray | None:
    return np.asarray(env.render()) if env.render_mode == "rgb_array" else None
