"""mbrl-lib's PETS as a peer row: its own virtual environment, built here, run by subprocess.

    python -m benchmarks.mbrl_peer [--env pendulum] [--seed 0] [--steps 2000]
                                   [--eval-every 200] [--target -200]

mbrl 0.2.0 (Facebook Research's mbrl-lib, the last release, 2023) pins Gymnasium 0.26, so it
cannot share Kinema's environment. `run_mbrl_lib` builds benchmarks/.venvs/mbrl when missing
(or when the pins below changed) and runs benchmarks/peers/mbrl_pets.py in it, which imports
nothing from Kinema and follows the same evaluation protocol (see that file).

What is installed, and why it is not mbrl's own requirements list:
- torch 2.13.0 first (the CPU build; a looser pin would pull a multi-GB CUDA build), and the
  install is checked not to have replaced it;
- mbrl 0.2.0 with --no-deps, plus what its PETS path imports at run time, pinned. Its list
  also pulls jupyter, pytest, tensorboard, matplotlib and sk-video, which PETS never imports;
- hydra-core 1.3.2 and omegaconf 2.3.0 instead of the hydra-core 1.0.3 / omegaconf 2.0 that
  mbrl pins: Hydra 1.0 cannot be imported on Python 3.11 (its dataclasses have mutable
  defaults) and 1.3 is the first Hydra release for 3.11; the peer script sets
  `_recursive_: False` to keep Hydra 1.0's instantiate behaviour;
- numpy 1.26.4: Gymnasium 0.26.3 uses np.bool8, which numpy 2 removed;
- pip 23.2.1: pip 24.1 and newer refuse omegaconf 2.0-era metadata (kept for rebuilds of
  older pins; harmless for these).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.peer_venv import ensure_venv as ensure_peer_venv
from benchmarks.peer_venv import run_script, torch_probe

SCRIPT = Path(__file__).resolve().parent / "peers" / "mbrl_pets.py"
VENV = Path("benchmarks/.venvs/mbrl")
PIP = "pip==23.2.1"
TORCH = "torch==2.13.0"
TORCH_DEPS = ("filelock==4.3.1", "fsspec==2026.9.0", "Jinja2==3.1.6", "MarkupSafe==3.0.4",
              "mpmath==1.3.0", "networkx==3.6.1", "sympy==1.14.0", "setuptools==84.2.1",
              "typing_extensions==4.16.0")
"""What pip chose for torch 2.13.0 here, pinned with it."""
RUNTIME = ("numpy==1.26.4", "gymnasium==0.26.3", "gymnasium-notices==0.0.1",
           "cloudpickle==3.1.3", "hydra-core==1.3.2", "omegaconf==2.3.0",
           "antlr4-python3-runtime==4.9.3", "PyYAML==6.0.4", "termcolor==3.3.0", "tqdm==4.70.1",
           "packaging==26.4")
MBRL = "mbrl==0.2.0"
PEER = "mbrl-lib peer"
RUN_TIMEOUT_S = 3 * 3600


def _spec() -> dict[str, Any]:
    return {"pip": PIP, "torch": [TORCH, *TORCH_DEPS], "runtime": list(RUNTIME), "mbrl": MBRL}


def ensure_venv(venv: Path = VENV) -> Path:
    """The peer venv's python, building the venv first when it is missing or stale."""
    return ensure_peer_venv(
        venv, _spec(), [[PIP], [TORCH, *TORCH_DEPS], list(RUNTIME), ["--no-deps", MBRL]],
        peer=PEER, probe=torch_probe(TORCH, "mbrl.planning", "mbrl.models"))


def run_mbrl_lib(env: str, seed: int, steps: int, eval_every: int, target: float,
                 venv: Path = VENV, *, learning_starts: int | None = None,
                 train_every: int | None = None) -> dict[str, Any]:
    """Train mbrl-lib's PETS under our protocol; the peer script's JSON result.

    {"solved", "steps" (at the first evaluation >= target, or the last), "train_s" (wall, less
    evaluation), "return", "evals": [[step, return_mean, train_s], ...], "versions", and
    "train_cpu_s" / "evals_cpu_s" (CPU seconds, likewise), "fits"}. RuntimeError (one line)
    when the venv cannot be built or the peer fails.
    """
    python = ensure_venv(venv)
    args = {"env": env, "seed": seed, "steps": steps, "eval_every": eval_every,
            "target": target, "eval_episodes": 10, "eval_seed": 10_000,
            "learning_starts": learning_starts, "train_every": train_every}
    with tempfile.TemporaryDirectory(prefix="mbrl-peer-") as tmp:
        return run_script(python, SCRIPT, args, Path(tmp), f"{PEER}: {env} seed {seed}",
                          timeout=RUN_TIMEOUT_S)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="pendulum")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--target", type=float, default=-200.0)
    a = p.parse_args()
    try:
        print(json.dumps(run_mbrl_lib(a.env, a.seed, a.steps, a.eval_every, a.target)))
    except RuntimeError as e:
        raise SystemExit(str(e)) from None


if __name__ == "__main__":
    main()
