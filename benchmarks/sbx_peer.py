"""SBX (Stable-Baselines in JAX) as a peer of `kinema bench rl`: its own virtual environment,
built here, run by subprocess.

    kinema bench rl --libs sbx --tasks sac-pendulum [--seeds 0]

SBX 0.28 (sbx-rl, Raffin et al.: SB3's algorithms with jit-compiled JAX/Flax updates) installs
its own jax, so `run_sbx` builds benchmarks/.venvs/sbx when missing (or when the pins below
changed) and runs benchmarks/peers/sbx_rl.py in it, which imports nothing from Kinema and keeps
the evaluation protocol of benchmarks/rl.py's SB3 runs (see that file). One CPU thread: XLA's
Eigen pool off, one intra-op thread, OMP 1. JAX's compile time counts as train time.

What is installed: torch 2.13.0 first (the CPU build SB3 imports; a looser pin would pull a
multi-GB CUDA build), then sbx-rl with every package pip resolved for it here, pinned: jax and
jaxlib 0.10.2 (CPU), flax 0.12.8, optax 0.2.8, stable-baselines3 2.9.2 (SBX asks >=2.9,<3),
gymnasium[mujoco] 1.4.0 with mujoco 3.17.0 (the MuJoCo rows), numpy 2.4.6.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.mbrl_peer import PIP, TORCH, TORCH_DEPS
from benchmarks.peer_venv import ensure_venv, stream, torch_probe

PEER = "sbx peer"
SCRIPT = Path(__file__).resolve().parent / "peers" / "sbx_rl.py"
VENV = Path("benchmarks/.venvs/sbx")
SBX = "sbx-rl==0.28.0"
RUNTIME = (
    "absl-py==2.5.1", "aiofiles==25.1.0", "attrs==26.1.0", "cloudpickle==3.1.3",
    "decorator==5.3.1", "dm-tree==0.1.10", "etils==1.15.0", "Farama-Notifications==0.0.6",
    "flax==0.12.8", "gast==0.7.0", "glfw==2.11.0", "gymnasium[mujoco]==1.4.0",
    "humanize==4.17.0", "ImageIO==2.38.2", "jax==0.10.2", "jaxlib==0.10.2",
    "markdown-it-py==4.3.0", "mdurl==0.1.2",
    "ml_dtypes==0.7.0", "msgpack==1.2.4", "mujoco==3.17.0", "numpy==2.4.6",
    "opt_einsum==3.4.0", "optax==0.2.8", "orbax-checkpoint==0.12.8", "packaging==26.4",
    "pillow==13.0.0", "prometheus_client==0.26.0", "protobuf==7.36.2", "psutil==7.2.2",
    "Pygments==2.21.0", "PyOpenGL==3.1.10",
    "PyYAML==6.0.4", "rich==15.0.0", "scipy==1.17.1", "simplejson==4.3.0", "six==1.17.0",
    "stable_baselines3==2.9.2", "tensorstore==0.1.86", "tfp-nightly==0.26.0.dev20261027",
    "tqdm==4.70.1", "treescope==0.1.10", "uvloop==0.23.0", "websockets==17.4", "wrapt==2.5.2",
    "zipp==4.1.2")
"""What pip resolved for sbx-rl 0.28.0 and gymnasium[mujoco] 1.4.0 (its MuJoCo envs import
imageio) beside torch 2.13.0 on Python 3.11 (`pip install --dry-run --report`), less torch's own
pins (mbrl_peer.TORCH_DEPS)."""
RUN_TIMEOUT_S = 3 * 3600
THREADS = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu"}

_ZOO_PENDULUM_TD3 = dict(gamma=0.98, buffer_size=200_000, learning_starts=10_000, noise_std=0.1,
                         train_freq=1, gradient_steps=1, learning_rate=1e-3,
                         policy_kwargs=dict(net_arch=[400, 300]))
_ZOO_PPO_MUJOCO_POLICY = dict(log_std_init=-2, ortho_init=False, activation_fn="relu",
                              net_arch=dict(pi=[256, 256], vf=[256, 256]))
SB3_DEFAULTS: dict[str, dict[str, Any]] = {
    "PPO": dict(policy_kwargs=dict(ortho_init=True)),
    "TD3": dict(learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300])),
    "DDPG": dict(learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300])),
}
"""SB3's defaults where SBX's differ (SBX: PPO without orthogonal init; TD3 and DDPG at a 3e-4
actor rate and 256x256 nets), set wherever the RL-Zoo entry leaves them to the default, so both
libraries train the same networks at the same rates (SAC's and DQN's defaults agree)."""


def with_sb3_defaults(algo: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with SB3_DEFAULTS[algo] under it: keys (and policy_kwargs keys) it lacks."""
    defaults = SB3_DEFAULTS.get(algo, {})
    policy = defaults.get("policy_kwargs", {}) | kwargs.get("policy_kwargs", {})
    out = defaults | kwargs
    return out | {"policy_kwargs": policy} if policy else out


SBX_TASKS: dict[str, dict[str, Any]] = {
    # the bench-rl task name: the SBX algorithm, gymnasium id, n_envs, VecNormalize, and the
    # RL-Zoo hyperparameters the task's sb3_kwargs give SB3, in JSON
    "sac-pendulum": dict(algo="SAC", env_id="Pendulum-v1", n_envs=1, normalize=False,
                         kwargs=dict(learning_rate=1e-3)),
    "td3-pendulum": dict(algo="TD3", env_id="Pendulum-v1", n_envs=1, normalize=False,
                         kwargs=_ZOO_PENDULUM_TD3),
    "ddpg-pendulum": dict(algo="DDPG", env_id="Pendulum-v1", n_envs=1, normalize=False,
                          kwargs=_ZOO_PENDULUM_TD3),
    "sac-inverted-pendulum": dict(algo="SAC", env_id="InvertedPendulum-v5", n_envs=1,
                                  normalize=False, kwargs={}),  # SB3's defaults
    "ppo-cartpole": dict(algo="PPO", env_id="CartPole-v1", n_envs=8, normalize=False, kwargs=dict(
        n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate={"linear": 1e-3}, clip_range={"linear": 0.2})),
    "dqn-cartpole": dict(algo="DQN", env_id="CartPole-v1", n_envs=1, normalize=False, kwargs=dict(
        learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
        gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
        exploration_fraction=0.16, exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]))),
    # RL-Zoo ppo.yml, the tuned MuJoCo entries (HalfCheetah-v4, Hopper-v4, Walker2d-v4)
    "ppo-halfcheetah-100k": dict(algo="PPO", env_id="HalfCheetah-v5", n_envs=1, normalize=True,
                                 kwargs=dict(
        batch_size=64, n_steps=512, gamma=0.98, learning_rate=2.0633e-05,
        ent_coef=0.000401762, clip_range=0.1, n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8,
        vf_coef=0.58096, policy_kwargs=_ZOO_PPO_MUJOCO_POLICY)),
    "ppo-hopper-100k": dict(algo="PPO", env_id="Hopper-v5", n_envs=1, normalize=True, kwargs=dict(
        batch_size=32, n_steps=512, gamma=0.999, learning_rate=9.80828e-05,
        ent_coef=0.00229519, clip_range=0.2, n_epochs=5, gae_lambda=0.99, max_grad_norm=0.7,
        vf_coef=0.835671, policy_kwargs=_ZOO_PPO_MUJOCO_POLICY)),
    "ppo-walker2d-100k": dict(algo="PPO", env_id="Walker2d-v5", n_envs=1, normalize=True,
                              kwargs=dict(
        batch_size=32, n_steps=512, gamma=0.99, learning_rate=5.05041e-05,
        ent_coef=0.000585045, clip_range=0.1, n_epochs=20, gae_lambda=0.95, max_grad_norm=1.0,
        vf_coef=0.871923)),  # the Zoo gives no policy_kwargs here
    # RL-Zoo sac.yml / td3.yml MuJoCo defaults
    "sac-halfcheetah-30k": dict(algo="SAC", env_id="HalfCheetah-v5", n_envs=1, normalize=False,
                                kwargs=dict(learning_starts=10_000)),
    "sac-hopper-30k": dict(algo="SAC", env_id="Hopper-v5", n_envs=1, normalize=False,
                           kwargs=dict(learning_starts=10_000)),
    "td3-halfcheetah-30k": dict(algo="TD3", env_id="HalfCheetah-v5", n_envs=1, normalize=False,
                                kwargs=dict(learning_starts=10_000, noise_std=0.1)),
    "td3-hopper-30k": dict(algo="TD3", env_id="Hopper-v5", n_envs=1, normalize=False,
                           kwargs=dict(learning_starts=10_000, noise_std=0.1)),
}


def spec() -> dict[str, Any]:
    """The venv's pins, as its READY file holds them."""
    return {"pip": PIP, "torch": [TORCH, *TORCH_DEPS], "runtime": list(RUNTIME), "sbx": SBX}


def venv_python(venv: Path = VENV) -> Path:
    """The SBX venv's python, building the venv first when it is missing or stale."""
    probe = (torch_probe(TORCH, "jax", "sbx", "gymnasium") + "; "
             "gymnasium.make('Hopper-v5').reset(seed=0); "
             "assert jax.default_backend() == 'cpu', jax.default_backend()")
    return ensure_venv(venv, spec(), [[PIP], [TORCH, *TORCH_DEPS], [TORCH, SBX, *RUNTIME]],
                       peer=PEER, probe=probe)


def task_spec(name: str, task: Any, seed: int) -> dict[str, Any]:
    """The JSON the peer script reads, for bench-rl task `name` (a benchmarks.rl.Task: steps,
    target, eval_every, and `final` for a fixed budget). ValueError for a task SBX has no
    entry for."""
    if name not in SBX_TASKS:
        raise ValueError(f"sbx peer: no SBX entry for task {name!r}; known: "
                         f"{', '.join(SBX_TASKS)}")
    final = bool(getattr(task, "final", False))
    entry = SBX_TASKS[name]
    return {**entry, "kwargs": with_sb3_defaults(entry["algo"], entry["kwargs"]), "seed": seed,
            "steps": int(task.steps), "eval_every": int(task.eval_every),
            "target": None if final or task.target is None else float(task.target)}


def run_sbx(name: str, task: Any, seed: int, venv: Path = VENV) -> dict[str, Any]:
    """Train SBX on bench-rl task `name` under the protocol; {"evals": [[env steps, mean
    return, train wall s, train CPU s], ...], "versions": {...}}. RuntimeError (one line) when
    the venv cannot be built or the peer fails."""
    args = task_spec(name, task, seed)
    python = venv_python(venv)
    with tempfile.TemporaryDirectory(prefix="sbx-peer-") as tmp:
        # -I: isolated, so neither our sys.path nor the working directory is importable;
        # cwd tmp: whatever SBX writes stays out of the repository.
        what = f"{PEER}: {name} seed {seed}"
        code, out, last = stream([str(python), "-I", str(SCRIPT), json.dumps(args)], Path(tmp),
                                 what, timeout=RUN_TIMEOUT_S, env=THREADS)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if code != 0 or not lines:
        raise RuntimeError(f"{what} failed (exit {code}): {last[:300]}")
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise RuntimeError(f"{what} printed no JSON result: {lines[-1][:300]}") from None
    result["evals"] = [tuple(e) for e in result["evals"]]
    return result
