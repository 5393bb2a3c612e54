"""`import deploy.runtime` must not pull in torch or agents: a robot runs bundles without them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_runtime_import_leaves_torch_and_agents_out() -> None:
    code = (
        "import sys, deploy.runtime\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'agents'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    # `python -c` puts the working directory first on sys.path: the repository's packages.
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"deploy.runtime imported {done.stdout.strip()} {done.stderr}"
