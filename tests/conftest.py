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
