"""Ray for sweeps and parallel collection: a local Ray instance sized to this machine, or an
existing cluster joined by its address (HOST:PORT of its head, as `ray start --head` prints).
The sweep extra installs Ray; without it, asking for Ray is one line naming the extra.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator

ADDRESS_TIMEOUT_S = 5.0
EXTRA_MISSING = ("this needs {what}, which the sweep extra installs: pip install -e "
                 "'.[sweep]' (scripts/setup.sh installs every extra)")


_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5)."""


def check_address(address: str) -> tuple[str, int]:
    """HOST:PORT of a Ray head that answers; else, within seconds, a ValueError naming it.

    Ray's GCS is a gRPC server: it answers the HTTP/2 preface with a SETTINGS frame. Probing
    that first matters because `ray.init` waits for a minute or more on an address where
    nothing answers or something else does.
    """
    host, sep, port_text = address.rpartition(":")
    if not (sep and host and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the "
                         "address `ray start --head` prints)")
    port = int(port_text)
    hint = ("start one with `ray start --head` and pass the HOST:PORT it prints, or leave "
            "--address out for a local Ray instance")
    try:
        with socket.create_connection((host.strip("[]"), port),
                                      timeout=ADDRESS_TIMEOUT_S) as s:
            s.sendall(_H2_PREFACE)
            head = s.recv(9)
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ValueError(f"--address {address}: no Ray cluster answers there ({why}); "
                         f"{hint}") from None
    if len(head) < 9 or head[3] != 0x4:  # frame type 4: SETTINGS
        raise ValueError(f"--address {address}: something answers there, but not a Ray "
                         f"cluster's head (no gRPC); {hint}")
    return host, port


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[dict[str, float]]:
    """Ray for a sweep or a collection; yields the cluster's resources ({"CPU": n, ...}).

    Without `address` a local Ray instance sized to this machine is started and shut down at
    the end; with it, the cluster there is joined (and only left at the end). When Ray is
    already initialized in this process (a caller's session), that one is used as it is.
    """
    if address is not None:
        check_address(address)
    try:
        import ray
    except ImportError:
        raise ValueError(EXTRA_MISSING.format(what="ray")) from None

    if ray.is_initialized():
        yield dict(ray.cluster_resources())
        return
    if address is not None:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, TimeoutError) as e:
            raise ValueError(f"--address {address}: cannot join the Ray cluster there "
                             f"({' '.join(str(e).split())[:200]}); a cluster with token "
                             "authentication (Ray's default where a token exists) needs "
                             "RAY_AUTH_MODE=token here and its token (`ray get-auth-token` "
                             "on the head) in RAY_AUTH_TOKEN or ~/.ray/auth_token") from None
    else:
        # "local": a new instance, never an unrelated cluster that happens to run here
        ray.init(address="local", include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    try:
        yield dict(ray.cluster_resources())
    finally:
        ray.shutdown()
