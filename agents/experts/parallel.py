"""Parallel collection (`kinema collect --workers N`): N Ray workers record episodes, and one
writer commits them to one dataset, one at a time, in the order of their seeds.

Each worker is a Ray actor with its own env and expert, built from the same expert spec as
`kinema collect --expert` (a trained run is loaded once per worker). The driver hands out the
episode seeds seed + i (i counting discarded attempts too, and continuing an appended dataset's
count, as data.record.record does) and commits episode i as soon as every smaller i has been
committed or discarded. So for a deterministic expert the dataset is the one a single-process
recording writes, episode for episode, and a kill loses only what is not committed yet.
Teleop (a person at one window) stays single-process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sim
from data.episode import Episode
from data.record import RecordResult, open_writer, run_episode

IN_FLIGHT = 2
"""Episodes queued per worker: one running, one waiting, so a worker never idles."""


class _Collector:
    """A Ray actor's state: one env and one expert, reused for every episode it records."""

    def __init__(self, env_name: str, expert: str) -> None:
        from agents.experts.base import make_expert

        self.env = sim.make(env_name)
        self.expert = make_expert(expert, env_name)
        self.discrete = sim.spec(env_name).info.discrete

    def episode(self, seed: int) -> tuple[int, Episode | None]:
        ep, _ = run_episode(self.env, self.expert, seed, discrete=self.discrete)
        return seed, ep


def record_parallel(env_name: str, expert: str, expert_spec: dict[str, Any], episodes: int,
                    out: Path, *, workers: int, seed: int = 0, append: bool = False,
                    on_episode: Callable[[int, float], None] | None = None) -> RecordResult:
    """Record `episodes` episodes of `expert` (a `kinema collect --expert` value, whose
    expert's `spec` is `expert_spec`) with `workers` Ray actors into the dataset `out`."""
    if episodes < 1 or workers < 1:
        raise ValueError(f"episodes and workers must be >= 1, got {episodes} and {workers}")
    if expert == "teleop":
        raise ValueError("--workers needs an expert that runs without a person; teleop "
                         "records in one process (leave --workers out)")
    from agents.runs.cluster import ray_session

    env = sim.make(env_name)
    result = RecordResult(Path(out), 0, 0)
    try:
        with ray_session() as _, open_writer(Path(out), env_name, env, expert_spec,
                                             append=append) as writer:
            _collect(writer, env_name, expert, episodes, workers, seed + writer.episodes,
                     result, on_episode)
    finally:
        env.close()
    return result


def _collect(writer: Any, env_name: str, expert: str, episodes: int, workers: int, first: int,
             result: RecordResult, on_episode: Callable[[int, float], None] | None) -> None:
    import ray

    actor: Any = ray.remote(num_cpus=1)(_Collector)
    pool: list[Any] = [actor.remote(env_name, expert) for _ in range(workers)]
    idle = deque(w for w in pool for _ in range(IN_FLIGHT))
    running: dict[Any, Any] = {}  # object ref -> the worker recording it
    done: dict[int, Episode | None] = {}
    next_seed = next_commit = first
    try:
        while result.episodes < episodes:
            # hand out seeds while more could still be needed: every seed not committed yet
            # may be discarded, so keep the pool busy up to its queue length
            while idle and next_seed - next_commit < episodes - result.episodes + len(pool):
                w = idle.popleft()
                running[w.episode.remote(next_seed)] = w
                next_seed += 1
            (ref,), _ = ray.wait(list(running), num_returns=1)
            idle.append(running.pop(ref))
            s, ep = ray.get(ref)
            done[s] = ep
            while next_commit in done and result.episodes < episodes:
                ep = done.pop(next_commit)
                next_commit += 1
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
        for w in pool:  # episodes still running were not needed (or the driver stops)
            ray.kill(w)
