"""Checks that a checkpoint fits the agent it is loaded into, before any of it is used.

A checkpoint whose files are intact (their SHA-256s match) may still not fit: config.json was
edited (another network size), the files came from another run, or a buggy writer made them.
Loading such a tree fails deep inside torch (a many-line size-mismatch report) or, worse, does
not fail: `copy_` casts dtypes, and Adam takes moments of any shape until its first step. So:

  - every tensor of the agent's own state must be in the checkpoint at the same place, with the
    same shape and dtype, and the checkpoint may hold no tensor the agent lacks (optimizer
    state aside, which is empty before a first step);
  - every optimizer moment must have the shape and dtype of its parameter;
  - a replay buffer's counters and tensors must fit the buffer the config built;
  - a resumed tree must have the loop counters, RNG and env states a loop restores.

Each fault is one CheckpointError naming the file and the entry, and what was expected.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from agents.loops.core import LoopState
from agents.protocol import Agent
from agents.runs.checkpoint import MODEL_FILE, OPTIM_FILE, STATE_FILE, CheckpointError

_LOADING_ERRORS = (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError)
_NEEDS = "the network config.json describes"


def restore_agent(agent: Agent, tree: dict[str, Any], folder: Path) -> None:
    """Check that checkpoint `tree` (read from `folder`) fits `agent`, then load it."""
    for key in ("agent", "optim"):
        if not isinstance(tree.get(key), dict):
            raise CheckpointError(f"{folder / STATE_FILE} has no {key!r} entry (an object); "
                                  "it is not the checkpoint of an agent")
    fresh = agent.state_dict()
    _match(tree["agent"], {k: v for k, v in fresh.items() if k != "optim"}, ("agent",),
           folder / MODEL_FILE)
    optimizers = [v for v in vars(agent).values() if isinstance(v, torch.optim.Optimizer)]
    if len(optimizers) == 1 and "param_groups" in fresh.get("optim", {}):
        _match_optimizer(tree["optim"], optimizers[0], folder / OPTIM_FILE)
    try:
        agent.load_state_dict(tree["agent"] | {"optim": tree["optim"]})
    except _LOADING_ERRORS as e:
        raise CheckpointError(f"{folder} does not fit {_NEEDS}: {_one_line(e)}") from None
    for opt in optimizers:  # whatever the optimizer's layout: no moment of a wrong shape is used
        for i, p, key, v in _moments(opt):
            if v.shape != p.shape:
                raise CheckpointError(f"{folder / OPTIM_FILE} holds optim/state/{i}/{key} of "
                                      f"shape {_shape(v)}, but its parameter has {_shape(p)}")


def check_resume_tree(tree: dict[str, Any], folder: Path, agent: Agent,
                      num_envs: int | None) -> None:
    """What a loop restores besides the agent: loop counters, RNG, env states (of `num_envs`
    training envs; None: a loop that steps none), replay."""
    state = folder / STATE_FILE
    loop = tree.get("loop")
    known = {f.name for f in dataclasses.fields(LoopState)} | {"next_obs"}
    if not isinstance(loop, dict) or "next_obs" not in loop or set(loop) - known:
        raise CheckpointError(f"{state} has no valid 'loop' entry; expected the counters "
                              f"{sorted(known)}")
    rng = tree.get("rng")
    ref = torch.get_rng_state()
    if not (isinstance(rng, dict) and isinstance(rng.get("torch"), torch.Tensor)
            and rng["torch"].dtype == ref.dtype and rng["torch"].shape == ref.shape):
        raise CheckpointError(f"{folder / MODEL_FILE} has no valid rng/torch entry; expected "
                              f"the {ref.dtype} tensor of shape {_shape(ref)} torch saves")
    terms = tree.get("terms")
    if terms is not None and not (
            isinstance(terms, dict) and _is_int(terms.get("count")) and terms["count"] >= 0
            and isinstance(terms.get("sums"), dict)
            and all(isinstance(v, torch.Tensor | float | int) for v in terms["sums"].values())):
        raise CheckpointError(f"{state} has an invalid 'terms' entry; expected a count and the "
                              "sums of the loss terms since the last log point")
    envs = tree.get("envs")
    if num_envs is not None and (not isinstance(envs, list) or len(envs) != num_envs):
        n = len(envs) if isinstance(envs, list) else "no"
        raise CheckpointError(f"{state} holds {n} env states; the config runs {num_envs} "
                              "training envs")
    replay = getattr(agent, "replay", None)
    if replay is not None and hasattr(replay, "state_dict"):
        check_replay(tree.get("replay"), replay, folder)


def check_replay(saved: Any, replay: Any, folder: Path) -> None:
    """A checkpointed replay buffer must fit `replay`: its rows, envs, counters and tensors."""
    state, model = folder / STATE_FILE, folder / MODEL_FILE
    fresh = replay.state_dict()
    counters = ("rows", "num_envs", "size", "pos")
    if not isinstance(saved, dict) or not all(_is_int(saved.get(k)) for k in counters):
        raise CheckpointError(f"{state} has no valid 'replay' entry; expected the integers "
                              f"{', '.join(counters)} and the buffer's tensors")
    rows, n, size, pos = (saved[k] for k in counters)
    if (rows, n) != (fresh["rows"], fresh["num_envs"]):
        raise CheckpointError(f"{state} records a replay buffer of {rows} rows of {n} envs, but "
                              f"buffer_size and num_envs of config.json make {fresh['rows']} "
                              f"rows of {fresh['num_envs']}")
    if not (0 <= size <= rows and 0 <= pos < rows and (size == rows or pos == size)):
        raise CheckpointError(f"{state} records replay size {size} and position {pos}; expected "
                              f"0 <= size <= {rows} rows and position = size until the buffer "
                              "is full")
    for name, ref in fresh.items():
        if not isinstance(ref, torch.Tensor):
            continue
        want = (size, *ref.shape[1:])
        t = saved.get(name)
        if not (isinstance(t, torch.Tensor) and tuple(t.shape) == want and t.dtype == ref.dtype):
            got = (f"{_dtype(t)} of shape {_shape(t)}" if isinstance(t, torch.Tensor)
                   else "nothing")
            raise CheckpointError(f"{model} holds {got} for replay/{name}; the {size} stored "
                                  f"rows need {_dtype(ref)} of shape {list(want)}")


def _match(saved: Any, fresh: Any, path: tuple[Any, ...], file: Path) -> None:
    """Every tensor of `fresh` is in `saved` at the same path, shape and dtype; no extra ones."""
    if isinstance(fresh, torch.Tensor):
        _match_tensor(saved, fresh, path, file)
    elif isinstance(fresh, dict):
        if isinstance(saved, dict):
            _match_dict(saved, fresh, path, file)
        elif _has_tensor(fresh):
            raise CheckpointError(f"{file} has no tensors under {_key(path)}, which {_NEEDS} "
                                  "has")
    elif isinstance(fresh, list | tuple) and _has_tensor(fresh):
        if not (isinstance(saved, list | tuple) and len(saved) == len(fresh)):
            raise CheckpointError(f"{file} has no list of {len(fresh)} entries at {_key(path)}")
        for i, (s, f) in enumerate(zip(saved, fresh, strict=True)):
            _match(s, f, (*path, i), file)


def _match_tensor(saved: Any, fresh: torch.Tensor, path: tuple[Any, ...], file: Path) -> None:
    if not isinstance(saved, torch.Tensor):
        raise CheckpointError(f"{file} has no tensor {_key(path)}; {_NEEDS} needs "
                              f"{_dtype(fresh)} of shape {_shape(fresh)}")
    if saved.shape != fresh.shape or saved.dtype != fresh.dtype:
        raise CheckpointError(f"{file} holds {_key(path)} as {_dtype(saved)} of shape "
                              f"{_shape(saved)}, but {_NEEDS} needs {_dtype(fresh)} of shape "
                              f"{_shape(fresh)}")


def _match_dict(saved: dict, fresh: dict, path: tuple[Any, ...], file: Path) -> None:
    for k, v in fresh.items():
        if k in saved:
            _match(saved[k], v, (*path, k), file)
        elif _has_tensor(v):
            raise CheckpointError(f"{file} lacks {_key((*path, k))}, which {_NEEDS} has")
    for k in saved.keys() - fresh.keys():
        if _has_tensor(saved[k]):
            raise CheckpointError(f"{file} holds {_key((*path, k))}, which {_NEEDS} does not "
                                  "have")


def _match_optimizer(saved: Any, opt: torch.optim.Optimizer, file: Path) -> None:
    """The saved optimizer state has the agent's parameter groups and, for each parameter,
    moments of its shape and dtype."""
    params = [p for g in opt.param_groups for p in g["params"]]
    groups = saved.get("param_groups")
    sizes = [len(g["params"]) for g in opt.param_groups]
    if not (isinstance(groups, list) and all(isinstance(g, dict) and isinstance(g.get("params"),
                                                                               list)
                                             for g in groups)
            and [len(g["params"]) for g in groups] == sizes):
        raise CheckpointError(f"{file}'s optimizer state does not have the parameter groups of "
                              f"{_NEEDS} ({sizes} parameters)")
    state = saved.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"{file} has no optimizer 'state' entry")
    ids = [i for g in groups for i in g["params"]]
    index = {i: params[j] for j, i in enumerate(ids)}
    for i, moments in state.items():
        p = index.get(i)
        if p is None or not isinstance(moments, dict):
            raise CheckpointError(f"{file} holds optimizer state for parameter {i!r}, which "
                                  f"{_NEEDS} does not have ({len(params)} parameters)")
        for key, v in moments.items():
            if not isinstance(v, torch.Tensor) or v.dim() == 0:
                continue  # "step" and other scalars
            if v.shape != p.shape or v.dtype != p.dtype:
                raise CheckpointError(f"{file} holds optim/state/{i}/{key} as {_dtype(v)} of "
                                      f"shape {_shape(v)}, but its parameter is {_dtype(p)} "
                                      f"of shape {_shape(p)}")


def _moments(opt: torch.optim.Optimizer) -> list[tuple[int, torch.Tensor, str, torch.Tensor]]:
    out = []
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        for key, v in opt.state.get(p, {}).items():
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                out.append((i, p, key, v))
    return out


def _has_tensor(node: Any) -> bool:
    if isinstance(node, torch.Tensor):
        return True
    if isinstance(node, dict):
        return any(_has_tensor(v) for v in node.values())
    if isinstance(node, list | tuple):
        return any(_has_tensor(v) for v in node)
    return False


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _key(path: tuple[Any, ...]) -> str:
    return "/".join(str(p) for p in path)


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."
