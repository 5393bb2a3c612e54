#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, one pytest-xdist worker per CPU core
# (KINEMA_TEST_WORKERS overrides; 0 runs in this process). Each worker trains with one torch
# thread, the fastest for the suite's small networks; tests that share ROS 2 topics or start
# Ray run in one worker, one after another (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-egl}"
exec .venv/bin/python -m pytest -n "${KINEMA_TEST_WORKERS:-auto}" --dist loadgroup "$@"
