"""Peer virtual environments: a peer library that cannot share Kinema's environment gets its own
venv under benchmarks/.venvs/, built here from exact pins, and runs as a subprocess in it.

    python = ensure_venv(VENV, spec, [[PIP], [TORCH, *TORCH_DEPS], [TORCH, SBX, *RUNTIME]],
                         peer="sbx peer", probe=torch_probe(TORCH, "sbx"))

A venv is ready when its READY file holds the spec it was built with: the file is written last,
so a half-built venv (an install that failed or was killed) has none and is rebuilt, and so is a
venv built from other pins. Every failure is a RuntimeError of one line, named by the peer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

READY = "kinema-ready.json"
"""Written last into the venv: the pins it was built with (a half-built venv has none)."""
INSTALL_TIMEOUT_S = 1800


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without what would leak Kinema's venv into the peer's, one thread."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} | dict(extra or {})


def check(cmd: Sequence[str], what: str, *, peer: str,
          timeout: float = INSTALL_TIMEOUT_S) -> str:
    """Run `cmd` and return its stdout; on failure raise RuntimeError with one line: the peer,
    `what`, and the last error line."""
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              env=clean_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"{peer}: {what} failed ({e})") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()] or lines or ["no output"]
        raise RuntimeError(f"{peer}: {what} failed (exit {done.returncode}): {errors[-1][:300]}")
    return done.stdout


def ensure_venv(venv: Path, spec: Mapping[str, Any], installs: Sequence[Sequence[str]], *,
                peer: str, probe: str) -> Path:
    """The venv's python, building the venv first when it is missing or was built from another
    `spec`. `installs`: the `pip install` argument lists, run in order; `probe`: Python code run
    in the built venv (isolated, -I) that fails when the install is not what was asked for."""
    venv = venv.resolve()  # peers run in another working directory
    python = venv / "bin" / "python"
    ready = venv / READY
    want = json.loads(json.dumps(spec))  # as it reads back from the file: lists, not tuples
    if python.exists() and ready.exists() and json.loads(ready.read_text()) == want:
        return python
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    check([sys.executable, "-m", "venv", str(venv)], f"creating the venv {venv}", peer=peer)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for args in installs:
        check([*pip, *args], f"pip install {' '.join(args)[:120]}", peer=peer)
    check([str(python), "-I", "-c", probe], "checking the venv's install", peer=peer)
    ready.write_text(json.dumps(want) + "\n")
    return python


def torch_probe(torch_pin: str, *modules: str) -> str:
    """A probe: Python code that imports torch and `modules`, and fails when an install replaced
    the torch of `torch_pin` ("torch==2.13.0", the CPU build) with another torch."""
    want = torch_pin.split("==")[1]
    return (f"import {', '.join(('torch', *modules))}; v = torch.__version__.split('+')[0]; "
            f"assert v == {want!r}, f'the venv has torch {{v}}, not {torch_pin}: an install "
            "replaced it'")


def stream(cmd: Sequence[str], cwd: Path, what: str, *, timeout: float,
           env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """Run `cmd` in `cwd`, passing its stderr (progress lines) on to ours.

    (exit code, its stdout, its last stderr line); `env`: variables set over clean_env().
    """
    last = "no output"
    with subprocess.Popen(list(cmd), cwd=cwd, env=clean_env(env), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        killed: list[bool] = []

        def kill() -> None:
            killed.append(True)
            proc.kill()

        out: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        reader = threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True)
        reader.start()
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            for line in proc.stderr:
                print(line, end="", file=sys.stderr, flush=True)
                last = line.strip() or last
            code = proc.wait()
            reader.join()
        finally:
            timer.cancel()
    if killed:
        last = f"{what} ran past {timeout:g} s"
    return code, "".join(out), last


def run_script(python: Path, script: Path, args: dict[str, Any], cwd: Path, what: str, *,
               timeout: float) -> dict[str, Any]:
    """Run `python -I script ARGS_JSON OUT_JSON` in `cwd` and return the JSON it wrote there.

    -I: isolated, so neither our sys.path nor the working directory is importable; `cwd` a
    temporary folder, so whatever the peer library writes stays out of the repository.
    RuntimeError (one line, naming `what`) when it fails or writes nothing."""
    out = cwd / "result.json"
    code, _, last = stream([str(python), "-I", str(script), json.dumps(args), str(out)], cwd,
                           what, timeout=timeout)
    if code != 0 or not out.exists():
        raise RuntimeError(f"{what} failed (exit {code}): {last[:300]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result
