"""imitation's GAIL and AIRL as peer rows: their own virtual environment, built here, run by
subprocess, on Kinema's demonstrations converted to plain arrays (`kinema bench irl` runs it).

imitation 1.0.1 (HumanCompatibleAI, the last release) pins gymnasium~=0.29 and
stable-baselines3~=2.2, so it cannot share Kinema's environment (Gymnasium 1.x). `run_imitation`
builds benchmarks/.venvs/imitation when missing (or when the pins below changed) and runs
benchmarks/peers/imitation_adversarial.py in it, which imports nothing from Kinema.

What is installed: torch 2.13.0 first (the CPU build; a looser pin would pull a multi-GB CUDA
build), then imitation 1.0.1 with every package pip resolved for it here, pinned (numpy 1.26.4:
Gymnasium 0.29 and SB3 2.2 predate numpy 2), and the install is checked not to have replaced
torch. The demonstrations cross over as one .npz of plain arrays (`to_npz`), read there with
allow_pickle=False: no pickle on either side.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.mbrl_peer import PIP, RUN_TIMEOUT_S, TORCH, TORCH_DEPS
from benchmarks.peer_venv import ensure_venv as ensure_peer_venv
from benchmarks.peer_venv import run_script, torch_probe

SCRIPT = Path(__file__).resolve().parent / "peers" / "imitation_adversarial.py"
VENV = Path("benchmarks/.venvs/imitation")
IMITATION = "imitation==1.0.1"
PEER = "imitation peer"
RUNTIME = (
    "numpy==1.26.4", "gymnasium==0.29.1", "stable-baselines3==2.2.1", "Farama-Notifications==0.0.6",
    "GitPython==3.2.1", "Mako==1.4.3", "Markdown==3.11.3", "PyYAML==6.0.4", "Pygments==2.21.0",
    "SQLAlchemy==2.1.9", "Werkzeug==3.1.9", "absl-py==2.5.1", "aiohappyeyeballs==2.7.1",
    "aiohttp==3.14.5", "aiosignal==1.4.0", "alembic==1.20.1", "anyio==4.16.0", "attrs==26.1.0",
    "certifi==2026.10.19.post1", "charset-normalizer==3.5.3", "cloudpickle==3.1.3",
    "colorama==0.4.6", "colorlog==6.12.0", "contourpy==1.3.3", "cycler==0.12.1",
    "datasets==5.0.1", "dill==0.4.1", "docopt-ng==0.9.0", "fonttools==4.68.0",
    "frozenlist==1.8.0", "gitdb==4.0.12", "grpcio==1.85.3", "h11==0.16.0", "hf-xet==1.8.0",
    "httpcore==1.0.9", "httpx==0.28.1", "huggingface-sb3==3.0", "huggingface_hub==0.36.2",
    "idna==3.20", "joblib==1.6.0", "jsonpickle==4.1.4", "kiwisolver==1.5.1",
    "markdown-it-py==4.3.0", "matplotlib==3.11.2", "mdurl==0.1.2", "multidict==7.2.1",
    "multiprocess==0.70.19", "munch==4.0.0", "narwhals==2.29.0", "optuna==5.0.0",
    "packaging==26.4", "pandas==3.0.6", "pillow==13.0.0", "propcache==0.5.4",
    "protobuf==7.36.2", "py-cpuinfo==9.0.0", "pyarrow==26.0.1", "pygame==2.6.1",
    "pyparsing==3.3.3", "python-dateutil==4.0.0", "requests==2.34.2", "rich==15.0.0",
    "sacred==0.8.7", "scikit-learn==1.9.1", "scipy==1.17.1", "seals==0.2.1", "smmap==5.0.3",
    "tensorboard==2.21.0", "tensorboard-data-server==0.7.2", "threadpoolctl==3.8.0",
    "tqdm==4.70.1", "tzdata==2026.6", "urllib3==2.8.0", "wasabi==1.1.3", "wrapt==1.17.3",
    "xxhash==4.1.0", "yarl==1.25.1", "fsspec==2026.6.0",
    "mujoco==3.17.0", "PyOpenGL==3.1.10", "etils==1.15.0", "glfw==2.11.0", "websockets==17.4",
    "zipp==4.1.2", "imageio==2.38.2")
"""What pip resolved for imitation 1.0.1 beside torch 2.13.0 on Python 3.11 (fsspec is the one
that differs from torch's pins: datasets caps it), then mujoco 3.17.0 with what it pulls in, and
imageio (Gymnasium 0.29's MuJoCo envs import their renderer), for the MuJoCo rows: Gymnasium
0.29's v4 versions of the envs Kinema wraps at v5."""


def _spec() -> dict[str, Any]:
    return {"pip": PIP, "torch": [TORCH, *TORCH_DEPS], "runtime": list(RUNTIME),
            "imitation": IMITATION}


def ensure_venv(venv: Path = VENV) -> Path:
    """The peer venv's python, building the venv first when it is missing or stale."""
    return ensure_peer_venv(
        venv, _spec(), [[PIP], [TORCH, *TORCH_DEPS], [TORCH, IMITATION, *RUNTIME]], peer=PEER,
        probe=torch_probe(TORCH, "imitation.algorithms.adversarial.airl",
                          "imitation.algorithms.adversarial.gail"))


def to_npz(dataset: Path | str, out: Path, max_episodes: int | None = None) -> dict[str, int]:
    """Kinema's dataset as the arrays imitation's Trajectory is built from, in one .npz:
    obs [sum(T + 1), ...] (each episode's reset observation, then one per step), acts [sum(T),
    ...] (the labels Kinema's learners train on), lengths [E] (T per episode) and terminal [E]
    (the episode ended by termination, not by the time limit). {"episodes", "steps"}."""
    from data.dataset import Dataset

    ds = Dataset.open(dataset)
    n = len(ds) if max_episodes is None else min(len(ds), max_episodes)
    eps = list(ds.episodes(range(n)))
    if not eps:
        raise ValueError(f"dataset {dataset} holds no episodes; record some with kinema collect")
    np.savez(out, obs=np.concatenate([e.observations for e in eps]),
             acts=np.concatenate([e.labels for e in eps]),
             lengths=np.array([len(e.actions) for e in eps], dtype=np.int64),
             terminal=np.array([bool(e.terminations[-1]) for e in eps]))
    return {"episodes": len(eps), "steps": int(sum(len(e.actions) for e in eps))}


def run_imitation(algo: str, env: str, seed: int, steps: int, eval_every: int, dataset: Path,
                  ppo: dict[str, Any], disc: dict[str, Any], venv: Path = VENV, *,
                  max_episodes: int | None = None) -> dict[str, Any]:
    """Train imitation's `algo` (gail, airl) on `dataset` under our protocol; the peer's JSON:
    {"steps", "train_s" (wall, less evaluation), "train_cpu_s", "return" (the last evaluation),
    "evals": [[step, return_mean, train_s], ...], "evals_cpu_s", "versions"}. `ppo`: the
    generator's Kinema PPOConfig fields; `disc`: hidden, activation, lr, batch_size, updates.
    RuntimeError (one line) when the venv cannot be built or the peer fails."""
    python = ensure_venv(venv)
    with tempfile.TemporaryDirectory(prefix="imitation-peer-") as tmp:
        demos = Path(tmp) / "demos.npz"
        to_npz(dataset, demos, max_episodes)
        args = {"algo": algo, "env": env, "seed": seed, "steps": steps, "eval_every": eval_every,
                "eval_episodes": 10, "eval_seed": 10_000, "ppo": ppo, "disc": disc,
                "demos": str(demos)}
        return run_script(python, SCRIPT, args, Path(tmp), f"{PEER}: {algo} {env} seed {seed}",
                          timeout=RUN_TIMEOUT_S)


MCE_SCRIPT = SCRIPT.with_name("imitation_mce.py")


def run_mce(model: Path, steps: int, lr: float, seed: int, venv: Path = VENV) -> dict[str, Any]:
    """imitation's MCE-IRL on the fixed-horizon arrays in `model` (benchmarks.irl_tabular
    writes them); the peer's JSON (benchmarks/peers/imitation_mce.py). RuntimeError (one line)
    when the venv cannot be built or the peer fails."""
    python = ensure_venv(venv)
    args = {"model": str(Path(model).resolve()), "steps": steps, "lr": lr, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="imitation-mce-") as tmp:
        return run_script(python, MCE_SCRIPT, args, Path(tmp), f"{PEER}: mce-irl seed {seed}",
                          timeout=RUN_TIMEOUT_S)
