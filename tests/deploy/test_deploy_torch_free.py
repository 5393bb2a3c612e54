"""A robot computer runs bundles without the training stack: `import deploy.runtime`,
`import deploy.ros` and the `kinema run` / `kinema ros` commands leave torch and agents out,
and the libraries themselves load no simulator either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


TRAINING = ("torch", "agents")
SIMULATORS = ("sim", "gymnasium", "mujoco", "pybullet", "dm_control")


def _imports_of(code: str, banned: tuple[str, ...] = TRAINING,
                env: dict[str, str] | None = None) -> tuple[int, str]:
    probe = (
        f"{code}\n"
        "import sys\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {banned!r})\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    # `python -c` puts the working directory first on sys.path: the repository's packages.
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=env,
    )
    return done.returncode, f"{done.stdout.strip()} {done.stderr[-2000:]}"


def test_runtime_import_leaves_torch_and_agents_out() -> None:
    rc, out = _imports_of("import deploy.runtime, deploy.joint_state_map, deploy.quantize",
                          TRAINING + SIMULATORS)
    assert rc == 0, f"deploy.runtime imported {out}"


def test_deploy_ros_import_leaves_torch_and_agents_out() -> None:
    pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")
    rc, out = _imports_of("import deploy.ros", TRAINING + SIMULATORS)
    assert rc == 0, f"deploy.ros imported {out}"


def test_deploy_runtime_commands_leave_torch_and_agents_out() -> None:
    pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")
    code = (
        "from kinema.cli import main\n"
        "assert main(['run', 'no-such-bundle']) == 2\n"
        "assert main(['ros', 'no-such-bundle']) == 2\n"
        "assert main(['ros-sim', 'cartpol']) == 2\n"
    )
    rc, out = _imports_of(code)
    assert rc == 0, f"the runtime commands imported {out}"


def _cli_json(argv: list[str], check: str) -> str:
    """Python source that runs `kinema ARGV` in-process and asserts `check` on (rc, report)."""
    return (
        "import json, io, contextlib\n"
        "from kinema.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main({argv!r})\n"
        "report = json.loads(out.getvalue().strip().splitlines()[-1])\n"
        f"assert {check}, report\n"
    )


def test_deploy_kinema_run_of_a_valid_bundle_leaves_torch_and_agents_out(
    pendulum_bundle: Path,
) -> None:
    """The success path, not only the errors: a real run, its report, then the check."""
    code = _cli_json(["run", str(pendulum_bundle), "--steps", "30", "--rate", "0", "--json"],
                     "rc == 0 and report['steps'] == 30 and report['stop_reason'] == 'completed'")
    rc, out = _imports_of(code)
    assert rc == 0, f"kinema run imported {out}"


def test_deploy_kinema_ros_of_a_valid_bundle_leaves_torch_and_agents_out(
    pendulum_bundle: Path, ros_domain: int,
) -> None:
    """`kinema ros` up on the network for a bounded time (no robot: it waits, then stops)."""
    from deploy.ros import localhost_env

    code = _cli_json(["ros", str(pendulum_bundle), "--duration", "1", "--json"],
                     "rc == 0 and report['reason'] == 'completed'")
    rc, out = _imports_of(code, env=localhost_env(ros_domain))  # the CLI imports sim.errors
    assert rc == 0, f"kinema ros imported {out}"
