"""Who holds a destination's lease, and whether that holder is gone.

A holder is a run of a process: a lease of this machine (same boot, same PID namespace)
whose process no longer exists, or no longer runs that lease, may be taken over at once.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass

MAX_LEASE_BYTES = 64 * 1024  # a lease is a few hundred bytes; a bigger one is not ours

_ACTIVE_RUNS: set[str] = set()  # run ids of this process acquiring or holding a lease
_ACTIVE_LOCK = threading.Lock()


def mark_active(run_id: str) -> None:
    """This process is acquiring or holding a lease for ``run_id``."""
    with _ACTIVE_LOCK:
        _ACTIVE_RUNS.add(run_id)


def mark_inactive(run_id: str) -> None:
    """This process no longer holds (nor acquires) a lease for ``run_id``."""
    with _ACTIVE_LOCK:
        _ACTIVE_RUNS.discard(run_id)


def is_active(run_id: str) -> bool:
    """Whether this process acquires or holds a lease for ``run_id``."""
    with _ACTIVE_LOCK:
        return run_id in _ACTIVE_RUNS


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def process_started(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), None when unknown."""
    stat = _read_text(f"/proc/{pid}/stat")
    return stat.rpartition(")")[2].split()[19] if stat else None  # field 22


def pid_space() -> str | None:
    """This boot and PID namespace: PIDs are comparable only between equal pid spaces."""
    boot = _read_text("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot.strip()}:{namespace}" if boot else None


def _text(value: object) -> str | None:
    """A short text field of a lease read back, or None when it is not one."""
    return value[:200] if isinstance(value, str) else None


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as written in it."""

    run_id: str
    host: str
    pid: int
    pid_started: str | None  # the process's start time (Linux), so a reused PID is not it
    pid_space: str | None  # boot id and PID namespace of that process
    acquired_at: str

    @classmethod
    def me(cls, run_id: str) -> Holder:
        pid = os.getpid()
        return cls(run_id, socket.gethostname(), pid, process_started(pid), pid_space(),
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def body(self, written: int) -> bytes:
        """The lease's content; the ``written`` stamp changes it (and its ETag) each write."""
        return json.dumps({**asdict(self), "written": written}).encode()

    @classmethod
    def parse(cls, data: bytes) -> tuple[Holder, int | None]:
        """The holder written in a lease and the write's stamp; unreadable: 'unknown'."""
        try:
            if len(data) > MAX_LEASE_BYTES:
                raise ValueError("too big")
            fields = json.loads(data)
            written = fields.get("written")
            return cls(str(fields["run_id"])[:200], str(fields["host"])[:200],
                       int(fields["pid"]), _text(fields.get("pid_started")),
                       _text(fields.get("pid_space")), str(fields.get("acquired_at"))[:64]), \
                written if isinstance(written, int) else None
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError, OverflowError):
            return cls("unknown", "unknown", 0, None, None, "unknown"), None

    def on_this_machine(self) -> bool:
        """Whether this holder's PID means a process here (same boot and PID namespace)."""
        return self.pid_space is not None and self.pid_space == pid_space()

    def gone(self) -> bool:
        """Whether this holder is a process of this machine that no longer runs its lease."""
        if not self.on_this_machine():
            return False
        if self.pid == os.getpid():
            return not is_active(self.run_id)
        if self.pid_started is not None:
            return process_started(self.pid) != self.pid_started
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
