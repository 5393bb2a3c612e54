"""`kinema report` and `kinema plot` read run folders without the training stack: importing
analysis leaves torch, agents, Ray and the simulators out, and both commands torch, agents and
Ray (kinema.cli itself imports sim.errors, and so gymnasium, for every command)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANNED = ("torch", "agents", "sim", "gymnasium", "mujoco", "pybullet", "ray")


def imported(code: str, banned: tuple[str, ...] = BANNED) -> list[str]:
    probe = (f"{code}\nimport sys\n"
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({banned!r})))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return eval(done.stdout.strip().splitlines()[-1])


def test_analysis_modules_leave_the_training_stack_out():
    assert imported("import analysis.runs, analysis.stats, analysis.report, analysis.plot") == []


def test_report_and_plot_commands_leave_the_training_stack_out(tmp_path):
    code = (f"from kinema.cli import main\n"
            f"assert main(['report', {str(tmp_path)!r}]) == 2\n"
            f"assert main(['plot', {str(tmp_path)!r}, '--out', "
            f"{str(tmp_path / 'c.png')!r}]) == 2\n")
    assert imported(code, ("torch", "agents", "ray")) == []
