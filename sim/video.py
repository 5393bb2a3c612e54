"""Record any registered env to an mp4 (imageio with its bundled ffmpeg)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

import sim

Policy = Callable[[np.ndarray], Any]


def record_video(
    env_name: str, path: str | Path, policy: Policy | None = None, *, episodes: int = 1,
    max_steps: int | None = None, seed: int = 0, size: int = 240, **options: Any,
) -> dict[str, Any]:
    """Run `policy` (one observation -> one action; None: random actions) in `env_name` and
    write the rendered frames to `path` at the env's control rate.

    Returns {"path", "frames", "episodes", "return_mean", "fps"}. Pixel entries are recorded
    at their observation size; other envs render at `size` x `size` where the backend lets us
    choose (classic control draws at its own size).
    """
    import imageio.v2 as imageio

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"video file must end in .mp4, got {path.name!r}")
    spec = sim.spec(env_name)
    headless_runtime_dir()
    if "pixels" not in spec.tags and spec.backend != "gymnasium":
        options = {"width": size, "height": size, **options}
    env = sim.make(env_name, render_mode="rgb_array", **options)
    fps = max(1, round(1.0 / sim.spec(env_name).info.dt))
    path.parent.mkdir(parents=True, exist_ok=True)
    returns: list[float] = []
    frames = 0
    try:
        env.action_space.seed(seed)
        # macro_block_size=1: keep odd sizes as they are instead of resizing with a warning.
        writer = imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1)
        # Bound before `with`: imageio's stub types __enter__ as the reader/writer base class
        # (at run time it returns the writer itself).
        with writer:
            for episode in range(episodes):
                obs, _ = env.reset(seed=seed + episode)
                total, steps, done = 0.0, 0, False
                writer.append_data(_frame(env))
                frames += 1
                while not done and (max_steps is None or steps < max_steps):
                    action = env.action_space.sample() if policy is None else policy(obs)
                    obs, reward, terminated, truncated, _ = env.step(action)
                    total += float(reward)
                    steps += 1
                    done = terminated or truncated
                    writer.append_data(_frame(env))
                    frames += 1
                returns.append(total)
    finally:
        env.close()
    return {"path": str(path), "frames": frames, "episodes": episodes,
            "return_mean": float(np.mean(returns)), "fps": fps}


def _frame(env: Any) -> np.ndarray:
    frame = env.render()
    if frame is None:
        raise ValueError("this env renders no rgb_array frames")
    return np.ascontiguousarray(np.asarray(frame, dtype=np.uint8)[..., :3])


def headless_runtime_dir(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Point XDG_RUNTIME_DIR at a private folder when it is unset or invalid; returns it.

    SDL (pygame, which draws classic control) asks Wayland for a display first, and libwayland
    prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment." on stderr when
    the variable is missing, as on a headless server: not an error of ours, but it reads like
    one. A valid one (an existing absolute folder) is left as it is. The folder (mode 0700, as
    the XDG spec asks) is removed at exit.
    """
    env = os.environ if environ is None else environ
    current = env.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(current) and os.path.isdir(current):
        return None
    private = tempfile.mkdtemp(prefix="kinema-xdg-")  # created 0700
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    env["XDG_RUNTIME_DIR"] = private
    return private
