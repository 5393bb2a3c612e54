import os

import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

REQUIRE_EXTRAS = "KINEMA_REQUIRE_EXTRAS"
"""Set (to anything but "" or "0") where every extra is installed, as in CI (.ci/run): a test
that would skip for a missing module (pytest.importorskip) fails instead, with the reason."""


def _importorskip_or_fail(skip):
    def importorskip(modname, *args, **kwargs):
        __tracebackhide__ = True
        try:
            return skip(modname, *args, **kwargs)
        except pytest.skip.Exception as e:
            if os.environ.get(REQUIRE_EXTRAS, "") in ("", "0"):
                raise  # a user without the extra: a skip, with its reason
            pytest.fail(f"{e.msg} ({REQUIRE_EXTRAS}={os.environ[REQUIRE_EXTRAS]}: every extra "
                        "must be installed here)", pytrace=False)

    importorskip.kinema_require_extras = True
    return importorskip


# Every test module, fixture and conftest looks pytest.importorskip up when it calls it, after
# this file is loaded (the first conftest pytest reads under tests/).
if not getattr(pytest.importorskip, "kinema_require_extras", False):
    pytest.importorskip = _importorskip_or_fail(pytest.importorskip)


@pytest.fixture(autouse=True)
def _one_thread():
    """Small networks on 2 cores: one torch thread is fastest and keeps results reproducible."""
    torch.set_num_threads(1)


# -- parallel runs (pytest-xdist, `-n N --dist loadgroup`, as scripts/test.sh runs the suite) ----
# Tests that share a machine-wide resource run in one worker, one after another: ROS 2 nodes and
# probes talk over the same DDS domain and topics, and Ray sweeps start local clusters and
# object stores. Everything else spreads over the workers (one torch thread each).
_SHARED = {"ros": ("rclpy", "ros_probe"), "ray": ("import ray", "ray.init")}
_RAY_FILES = ("sweep", "parallel_collect")
"""Files that start Ray through kinema (sweeps, parallel collection) without naming it."""
_GROUP_OF: dict[str, str | None] = {}


def _group(path) -> str | None:
    key = str(path)
    if key not in _GROUP_OF:
        text = path.read_text(errors="replace")
        group = next((g for g, needles in _SHARED.items() if any(n in text for n in needles)),
                     None)
        if group is None and any(n in path.name for n in _RAY_FILES):
            group = "ray"
        _GROUP_OF[key] = group
    return _GROUP_OF[key]


def pytest_collection_modifyitems(config, items):
    for item in items:
        group = _group(item.path)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
