"""Whether a just-started local SeaweedFS serves S3: a full bucket round trip, or why not
(an early exit over a taken port, refused credentials, a timeout), with its log's tail."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.devtools.local_s3_ports import port_open

if TYPE_CHECKING:
    from catalog_images.devtools.local_s3 import LocalS3

_CLASH_MARKERS = ("address already in use", "port allocation failed")


class PortClash(RuntimeError):
    """`weed` exited because one of its ports was taken meanwhile."""


def _tail(path: Path, start: int = 0, lines: int = 40) -> str:
    """Last `lines` lines of `path` from byte offset `start`."""
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            data = fh.read()
    except OSError:
        return "(no log)"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def wait_ready(server: LocalS3, proc: subprocess.Popen[bytes], timeout_s: float,
               log_start: int) -> None:
    """Poll a just-spawned server until a bucket round trip works; raise PortClash when it
    exited over a taken port, RuntimeError (with the log's tail) on any other failure."""
    probe = server.client(
        retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=3
    )
    deadline = time.monotonic() + timeout_s
    last_error = "no response yet"
    denied_since: float | None = None
    while True:
        _check_alive(server, proc, log_start)
        if port_open(server.host, server.port):
            try:
                probe.head_bucket(Bucket=server.bucket)
                _probe_round_trip(probe, server.bucket)
                return
            except ClientError as exc:
                err = exc.response.get("Error", {}).get("Code")
                last_error = f"head_bucket: {err}"
                if err in ("403", "AccessDenied", "InvalidAccessKeyId"):
                    denied_since = denied_since or time.monotonic()
                    _check_denied_for(server, denied_since, log_start)
                if err in ("404", "NoSuchBucket"):
                    with contextlib.suppress(ClientError, BotoCoreError):
                        probe.create_bucket(Bucket=server.bucket)
            except BotoCoreError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"SeaweedFS S3 at {server.endpoint_url} not ready after {timeout_s:g}s "
                f"({last_error}); log tail:\n{_tail(server.log_path, log_start)}"
            )
        time.sleep(0.1)


def _check_alive(server: LocalS3, proc: subprocess.Popen[bytes], log_start: int) -> None:
    """Raise PortClash or RuntimeError (with the log's tail) if the server has exited."""
    code = proc.poll()
    if code is None:
        return
    tail = _tail(server.log_path, log_start)
    if any(m in tail.lower() for m in _CLASH_MARKERS):
        raise PortClash(tail)
    raise RuntimeError(f"SeaweedFS exited early with code {code}; log tail:\n{tail}")


def _check_denied_for(server: LocalS3, denied_since: float, log_start: int) -> None:
    """Raise once the dummy credentials have been refused for over 5 s."""
    if time.monotonic() - denied_since > 5:
        raise RuntimeError(
            f"SeaweedFS at {server.endpoint_url} refuses the dummy "
            "credentials (HTTP 403): S3 auth is enabled, e.g. by credentials "
            f"stored in {server.data_dir} from an earlier run; use a fresh "
            f"data dir. Log tail:\n{_tail(server.log_path, log_start, 10)}"
        ) from None


def _probe_round_trip(probe: Any, bucket: str) -> None:
    """Write, read back and delete a tiny object.

    `head_bucket` answers as soon as the filer is up, but reads fail with InternalError
    until the volume server has registered with the master (seen after a restart), so
    readiness means a full round trip through a volume.
    """
    key = ".local-s3-ready"
    probe.put_object(Bucket=bucket, Key=key, Body=b"ok")
    if probe.get_object(Bucket=bucket, Key=key)["Body"].read() != b"ok":
        raise BotoCoreError()
    probe.delete_object(Bucket=bucket, Key=key)
