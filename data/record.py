"""Record demonstrations from any expert on any registered env into a verified dataset.

The expert follows the protocol of agents/experts.py (duck-typed here: data does not import
agents). Each episode is collected in memory and committed on its own when it ends, so a kill at
any moment loses at most the episode in progress. Episode i is reset with seed `seed + i`,
counting discarded attempts too, so a recording is reproducible for deterministic experts.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import sim
from data.dataset import DatasetWriter, is_dataset
from data.episode import Episode, EpisodeBuilder
from data.files import kinema_version
from data.manifest import DatasetError


@dataclass
class RecordResult:
    path: Path
    episodes: int
    """Episodes committed by this recording."""
    steps: int
    returns: list[float] = field(default_factory=list)
    discarded: int = 0
    quit: bool = False

    def summary(self) -> dict[str, Any]:
        r = np.asarray(self.returns, dtype=np.float64)
        return {"dataset": str(self.path), "episodes": self.episodes, "steps": self.steps,
                "return_mean": float(r.mean()) if r.size else None,
                "return_std": float(r.std()) if r.size else None, "discarded": self.discarded}


def env_metadata(env_name: str) -> dict[str, Any]:
    """Our metadata about the env: name, registry spec, measured spaces, control period."""
    spec = sim.spec(env_name)
    info = dataclasses.asdict(spec.info)
    return {"env": env_name, "control_dt": spec.info.dt,
            "env_spec": {"backend": spec.backend, "tags": list(spec.tags),
                         "max_episode_steps": spec.max_episode_steps, **info}}


def open_writer(out: Path, env_name: str, env: gym.Env, expert_spec: dict[str, Any],
                *, append: bool = False) -> DatasetWriter:
    """A writer on `out`: a new dataset, or with `append` an existing one of the same env (a
    new one when `out` holds none yet). `out` is checked before anything is written
    (data.dataset.check_new_folder): a file, or a folder holding anything but a Kinema
    dataset, is refused."""
    out = Path(out)
    if append and is_dataset(out):
        w = DatasetWriter.append(out)
        env_of = w.metadata["env"]
        if env_of != env_name:
            w.close()
            raise DatasetError(f"dataset {out} holds {env_of!r} episodes; cannot append "
                               f"{env_name!r} ones")
        return w
    kind = str(expert_spec.get("kind", "expert"))
    kinema = env_metadata(env_name) | {
        "expert": expert_spec, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "kinema_version": kinema_version()}
    return DatasetWriter.create(out, observation_space=env.observation_space,
                                action_space=env.action_space, kinema=kinema,
                                dataset_id=f"kinema/{env_name}-{kind}-v0", algorithm_name=kind)


def run_episode(env: gym.Env, expert: Any, seed: int, *, discrete: bool,
                learner: Callable[[np.ndarray], np.ndarray] | None = None,
                beta: float = 1.0, rng: np.random.Generator | None = None,
                ) -> tuple[Episode | None, str | None]:
    """One episode driven by `expert`, or with a `learner` the DAgger mixture (Ross et al. 2011).

    With a learner, each step executes the expert's action with probability beta and the
    learner's otherwise, and always records the expert's action as the label. Returns
    (episode or None when discarded or empty, the expert's last signal).
    """
    obs, _ = env.reset(seed=seed)
    if not expert.begin(env, obs):
        return None, "quit"
    b = EpisodeBuilder(obs, seed=seed, discrete=discrete)
    while True:
        sig = expert.signal()
        if sig == "stop" and len(b):
            b.truncate_last()
            break
        if sig in ("stop", "discard", "quit"):
            return None, sig
        label = np.asarray(expert.act(obs, env))
        action = label
        if learner is not None and not (rng is not None and rng.random() < beta):
            action = np.asarray(learner(obs))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        b.add(action, float(reward), terminated, truncated, next_obs,
              label=label if learner is not None else None)
        obs = next_obs
        if terminated or truncated:
            break
    return b.build(), None


def record(env_name: str, expert: Any, episodes: int, out: Path, *, seed: int = 0,
           append: bool = False,
           on_episode: Callable[[int, float], None] | None = None) -> RecordResult:
    """Record `episodes` complete episodes of `expert` on `env_name` into the dataset `out`."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = sim.make(env_name, render_mode=getattr(expert, "render_mode", None))
    discrete = sim.spec(env_name).info.discrete
    result = RecordResult(Path(out), 0, 0)
    try:
        with open_writer(Path(out), env_name, env, expert.spec, append=append) as writer:
            attempt = writer.episodes  # appending continues the seed sequence
            while result.episodes < episodes:
                ep, sig = run_episode(env, expert, seed + attempt, discrete=discrete)
                attempt += 1
                if sig == "quit":
                    result.quit = True
                    break
                if ep is None:
                    result.discarded += 1
                    continue
                writer.add(ep)  # the commit: from here on this episode survives a crash
                result.episodes += 1
                result.steps += ep.steps
                result.returns.append(ep.total_return)
                if on_episode:
                    on_episode(result.episodes, ep.total_return)
    finally:
        env.close()
    return result
