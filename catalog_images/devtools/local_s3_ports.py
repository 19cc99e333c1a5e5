"""Loopback ports of a local SeaweedFS: free HTTP/gRPC pairs to start on, waiting for them
to close after a stop, and the unix sockets named after them left in the temp dir."""

from __future__ import annotations

import contextlib
import random
import socket
import tempfile
import time
import warnings
from pathlib import Path

GRPC_OFFSET = 10_000  # SeaweedFS derives each gRPC port as HTTP port + 10000
PORT_MIN, PORT_MAX = 20_000, 55_000  # HTTP ports; gRPC ports land in 30000..64999


def port_free(host: str, port: int) -> bool:
    """True if `port` can be bound on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int) -> bool:
    """True if something accepts TCP connections on `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def pick_ports(host: str, count: int) -> list[int]:
    """Pick `count` HTTP ports below 55000 whose gRPC twins (port + 10000) are also free."""
    rng = random.SystemRandom()
    chosen: list[int] = []
    taken: set[int] = set()
    for _ in range(2000):
        port = rng.randrange(PORT_MIN, PORT_MAX)
        pair = {port, port + GRPC_OFFSET}
        if pair & taken:
            continue
        if all(port_free(host, p) for p in pair):
            chosen.append(port)
            taken |= pair
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"could not find {count} free port pairs on {host}")


def wait_ports_closed(host: str, http_ports: dict[str, int], pid: int,
                      timeout_s: float = 10) -> None:
    """Wait until no HTTP or gRPC port of a stopped server accepts connections; warn if
    some still do after ``timeout_s`` (something else may listen there)."""
    ports = [p + off for p in http_ports.values() for off in (0, GRPC_OFFSET)]
    deadline = time.monotonic() + timeout_s
    while still_open := [p for p in ports if port_open(host, p)]:
        if time.monotonic() > deadline:
            warnings.warn(
                f"ports {still_open} still accept connections after SeaweedFS "
                f"(pid {pid}) exited; something else may be listening on them",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        time.sleep(0.1)


def remove_sockets(http_ports: dict[str, int]) -> None:
    """Remove the unix sockets SeaweedFS leaves in the temp dir, named by our ports."""
    ports = {str(p + off) for p in http_ports.values() for off in (0, GRPC_OFFSET)}
    for folder in {Path(tempfile.gettempdir()), Path("/tmp")}:
        for path in folder.glob("seaweedfs-*.sock"):
            if path.stem.rsplit("-", 1)[-1] in ports and path.is_socket():
                with contextlib.suppress(OSError):
                    path.unlink()
