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
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

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
READY = "kinema-ready.json"
"""Written last into the venv: the pins it was built with (a half-built venv has none)."""
RUN_TIMEOUT_S = 3 * 3600


def _spec() -> dict[str, Any]:
    return {"pip": PIP, "torch": [TORCH, *TORCH_DEPS], "runtime": list(RUNTIME), "mbrl": MBRL}


def _check(cmd: list[str], what: str, *, timeout: float = 1800) -> str:
    """Run `cmd`; on failure raise RuntimeError with one line: `what` and the last error line."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"mbrl-lib peer: {what} failed ({e})") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()] or lines or ["no output"]
        raise RuntimeError(f"mbrl-lib peer: {what} failed (exit {done.returncode}): "
                           f"{errors[-1][:300]}")
    return done.stdout


def _env() -> dict[str, str]:
    """Our environment without what would leak Kinema's venv into the peer's."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _stream(cmd: list[str], cwd: Path, what: str) -> tuple[int, str]:
    """Run `cmd`, passing its stderr (progress lines) on to ours; (exit code, last line)."""
    last = "no output"
    with subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True) as proc:
        killed: list[bool] = []

        def kill() -> None:
            killed.append(True)
            proc.kill()

        timer = threading.Timer(RUN_TIMEOUT_S, kill)
        timer.start()
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                print(line, end="", file=sys.stderr, flush=True)
                last = line.strip() or last
            code = proc.wait()
        finally:
            timer.cancel()
    if killed:
        last = f"{what} ran past {RUN_TIMEOUT_S} s"
    return code, last


def ensure_venv(venv: Path = VENV) -> Path:
    """The peer venv's python, building the venv first when it is missing or stale."""
    venv = venv.resolve()  # the peer runs in another working directory
    python = venv / "bin" / "python"
    ready = venv / READY
    if python.exists() and ready.exists() and json.loads(ready.read_text()) == _spec():
        return python
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _check([sys.executable, "-m", "venv", str(venv)], f"creating the venv {venv}")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _check([*pip, PIP], f"pip install {PIP}")
    _check([*pip, TORCH, *TORCH_DEPS], f"pip install {TORCH}")
    _check([*pip, *RUNTIME], "pip install of mbrl-lib's run-time dependencies")
    _check([*pip, "--no-deps", MBRL], f"pip install {MBRL}")
    got = _check([str(python), "-I", "-c", "import torch, mbrl.planning, mbrl.models; "
                  "print(torch.__version__)"], "importing torch and mbrl in the venv").strip()
    if got.split("+")[0] != TORCH.split("==")[1]:
        raise RuntimeError(f"mbrl-lib peer: the venv has torch {got}, not {TORCH}: "
                           "an install replaced it")
    ready.write_text(json.dumps(_spec()) + "\n")
    return python


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
        out = Path(tmp) / "result.json"
        # -I: isolated, so neither our sys.path nor the working directory is importable;
        # cwd tmp: whatever mbrl-lib writes stays out of the repository.
        cmd = [str(python), "-I", str(SCRIPT), json.dumps(args), str(out)]
        code, last = _stream(cmd, Path(tmp), f"mbrl-lib peer: {env} seed {seed}")
        if code != 0 or not out.exists():
            raise RuntimeError(f"mbrl-lib peer: {env} seed {seed} failed (exit {code}): "
                               f"{last[:300]}")
        result: dict[str, Any] = json.loads(out.read_text())
    return result


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
