"""`import sim` loads no simulator; the registry imports a backend's module only when one of
its names is needed, cheapest first, and still knows every name when asked for all of them.
Each check runs in a fresh interpreter, since this one has every backend loaded already."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sim
from sim import registry

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pybullet", "pybullet_envs_gymnasium", "dm_control", "mujoco")


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _loaded_after(code: str) -> dict[str, bool]:
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n")
    return json.loads(_run(probe).stdout.strip().splitlines()[-1])


def test_import_sim_loads_no_backend() -> None:
    assert not any(_loaded_after("import sim").values())


def test_make_cartpole_loads_neither_pybullet_nor_dm_control() -> None:
    loaded = _loaded_after("import sim\nsim.make('cartpole', seed=0).step(0)")
    assert not loaded["pybullet"] and not loaded["dm_control"], loaded


def test_spec_loads_backends_only_up_to_the_name() -> None:
    loaded = _loaded_after("import sim\nassert sim.spec('cheetah-run').backend == 'dm_control'")
    assert loaded["mujoco"] and not loaded["pybullet"], loaded


def test_names_loads_every_backend_and_stays_quiet() -> None:
    done = _run("import sim\nprint(len(sim.names()))")
    assert int(done.stdout.strip()) == len(sim.names())
    assert "pybullet build time" not in done.stdout + done.stderr


def test_unknown_name_suggests_among_all_backends() -> None:
    code = ("import sim\ntry:\n    sim.spec('panda-rech')\nexcept sim.UnknownNameError as e:\n"
            "    print(e.close)\n")
    assert "panda-reach" in _run(code).stdout  # a PyBullet entry, the last backend loaded


def test_mujoco_gl_defaults_to_egl_when_headless() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MUJOCO_GL")}
    done = _run("import os, sim\nprint(os.environ.get('MUJOCO_GL'))", env=env)
    assert done.stdout.strip() == "egl"


def test_every_backend_module_is_registered_in_cheap_first_order() -> None:
    assert registry.BACKEND_MODULES[0] == "sim.gymnasium_envs"
    assert registry.BACKEND_MODULES[-1] == "sim.bullet_envs"
    backends = {sim.spec(n).backend for n in sim.names()}
    assert backends == set(sim.BACKENDS)


def test_public_names_are_kept() -> None:
    for name in ("make", "make_vec", "names", "spec", "get_state", "set_state", "register",
                 "EnvInfo", "EnvSpec", "BACKENDS", "TAGS", "SimulationUnstable",
                 "UnknownNameError"):
        assert hasattr(sim, name), name


def test_register_refuses_a_builtin_name_before_its_backend_loaded() -> None:
    code = ("import sim\nspec = sim.EnvSpec(name='a1-walk', backend='gymnasium', tags=('state',),"
            " build=None, max_episode_steps=1)\n"
            "try:\n    sim.register(spec)\nexcept ValueError as e:\n    print('refused', e)\n")
    assert "registered twice" in _run(code).stdout


_FAKE_BACKEND = """
import os
from sim import registry
registry.register(registry.EnvSpec(name="fake-env", backend="gymnasium", tags=("state",),
                                   build=registry.spec("cartpole").build, max_episode_steps=5))
if os.environ.get("KINEMA_FAKE_FAIL") == "1":
    raise ImportError("no such simulator")
"""


def test_a_failed_backend_import_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = "kinema_fake_backend"
    (tmp_path / f"{module}.py").write_text(_FAKE_BACKEND)
    sim.names()  # every real backend is loaded; only the fake one is left
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "BACKEND_MODULES", (*registry.BACKEND_MODULES, module))
    monkeypatch.setenv("KINEMA_FAKE_FAIL", "1")
    try:
        with pytest.raises(ImportError, match="no such simulator"):
            sim.spec("fake-env")
        assert "fake-env" not in registry._REGISTRY and module not in registry._loaded
        monkeypatch.setenv("KINEMA_FAKE_FAIL", "0")
        assert sim.spec("fake-env").max_episode_steps == 5  # no "registered twice"
    finally:
        registry._REGISTRY.pop("fake-env", None)
        registry._loaded.discard(module)
        sys.modules.pop(module, None)
