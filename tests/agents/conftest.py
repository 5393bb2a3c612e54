"""A Ray head for the tests that run Ray (the sweep and parallel-collection tests), started once
per session when the first of them asks for it, with this process joined to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """HOST:PORT of a 2-CPU Ray head (`ray start --head --block`), this process joined."""
    ray = pytest.importorskip("ray", reason="the sweep extra (ray[tune]) is not installed")
    from agents.runs.cluster import check_address

    port = free_port()
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
             f"--port={port}", f"--ray-client-server-port={free_port()}", "--num-cpus=2",
             "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats"],
            stdout=f, stderr=subprocess.STDOUT,
            # no token authentication, whether or not this machine has a Ray token: the
            # clients here (this process, kinema sweep --address) ask for none
            env={k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
            | {"RAY_AUTH_MODE": "disabled"})
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                check_address(address)
                break
            except ValueError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the Ray head did not start: {log.read_text()}") from None
                time.sleep(0.2)
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        yield address
    finally:
        ray.shutdown()
        proc.send_signal(signal.SIGTERM)  # --block: the head stops its processes and exits
        proc.wait(timeout=60)
