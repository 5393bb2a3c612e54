#!/usr/bin/env bash
# Create .venv (if missing) and install Kinema with every extra. Needs only Python >= 3.10.
# torch is pinned here (a CPU build on machines without CUDA); pyproject accepts a range so
# users with GPUs can install their own build first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.kinema-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  # setuptools reports every editable install with an "Editable installation." notice (its
  # InformationOnly warning, relayed by pip as a BuildBackendWarning) that reads like a fault.
  # Ignore that one warning by its message; every other warning and error still shows.
  PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:Editable installation.:UserWarning" \
    .venv/bin/python -m pip install -q "torch==2.13.0" -e ".[dev,bench,ros,sweep]"
  touch "$stamp"
fi
