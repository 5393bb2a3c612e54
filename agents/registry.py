"""The algorithms `kinema train` knows: name -> module, imported only when asked for.

Each algorithm module declares its own registration, `ALGORITHMS`, a tuple of
`agents.protocol.Algorithm` (config class, preset, default budget per env, loop) beside its
preset, so per-env knowledge lives with the algorithm. Importing this module imports no
algorithm: `kinema train sac` loads SAC's module and what it needs, nothing else.
"""

from __future__ import annotations

import importlib

from agents.protocol import Algorithm
from sim.errors import UnknownNameError
from sim.registry import EnvInfo, spec
from sim.registry import names as env_names

MODULES: dict[str, str] = {
    "ppo": "agents.model_free.ppo",
    "sac": "agents.model_free.sac",
    "td3": "agents.model_free.td3",
    "ddpg": "agents.model_free.td3",
    "dqn": "agents.model_free.dqn",
    "soft-q": "agents.classic.soft_q",
    "trpo": "agents.classic.trpo",
    "value-iteration": "agents.classic.dynamic_programming",
    "policy-iteration": "agents.classic.dynamic_programming",
    "q-learning": "agents.classic.td_control",
    "sarsa": "agents.classic.td_control",
    "maxent-irl": "agents.irl.maxent",
    "bc": "agents.imitation.bc",
    "dagger": "agents.imitation.dagger",
    "gail": "agents.irl.gail",
    "airl": "agents.irl.airl",
    "gcl": "agents.irl.gcl",
    "deep-maxent-irl": "agents.irl.gcl",
    "pets": "agents.model_based.pets",
    "mbrl-v0.5": "agents.model_based.pets",
    "mbrl-v1.0": "agents.model_based.pets",
    "mbrl-v1.5": "agents.model_based.pets",
    "mbpo": "agents.model_based.mbpo",
    "reinforce": "agents.classic.reinforce",
    "a2c": "agents.classic.a2c",
    "tdmpc": "agents.latent.tdmpc",
    "svg": "agents.model_based.svg",
    "dyna-q": "agents.classic.dyna_q",
}
"""Algorithm name -> the module whose ALGORITHMS declares it."""


def names() -> list[str]:
    return list(MODULES)


def algorithm(name: str) -> Algorithm:
    """The registration of `name`; an unknown name suggests the close ones."""
    if name not in MODULES:
        raise UnknownNameError("algorithm", name, MODULES)
    module = importlib.import_module(MODULES[name])
    for algo in module.ALGORITHMS:
        if algo.name == name:
            return algo
    raise LookupError(f"{MODULES[name]} does not declare the algorithm {name!r}")


def algorithms() -> list[Algorithm]:
    """Every registered algorithm (imports all their modules)."""
    return [algorithm(n) for n in MODULES]


def check_fits(algo: Algorithm, env: str, info: EnvInfo) -> None:
    """Refuse an algorithm on an action space or observations it cannot handle, naming those
    that can."""
    if "pixels" in spec(env).tags and not algo.pixels:
        fits = sorted(a.name for a in algorithms() if a.pixels)
        state = env.removesuffix("-pixels")
        raise ValueError(f"{algo.name} trains from state vectors but {env!r} gives pixels; "
                         f"algorithms for pixels: {', '.join(fits)}"
                         + (f" (or {algo.name} on {state!r})" if state in env_names() else ""))
    kind = "discrete" if info.discrete else "continuous"
    if kind not in algo.actions:
        tabular = "tabular" in spec(env).tags
        fits = sorted(a.name for a in algorithms()
                      if kind in a.actions and (tabular or not a.tabular))
        raise ValueError(f"{algo.name} needs {' or '.join(algo.actions)} actions but {env!r} has "
                         f"{kind} actions; algorithms for {kind} actions: {', '.join(fits)}")

