"""One run at a time per destination: a lease object, ``state/lease.json``.

Two runs refreshing one destination at once (a cron run beside an ad-hoc one, a schedule on
two deployments) would both buy every row neither has uploaded yet. So a run first creates
the lease with a conditional PUT (``If-None-Match: *``: of two runs, exactly one succeeds),
renews it in the background with ``If-Match`` on its ETag, and deletes it when it ends.

A run that finds a live lease stops before any request, naming the run that holds it. A
lease is taken over, again by a conditional PUT, when its holder is gone: held by a process
of this host that no longer exists (``kill -9``, then a re-run: no wait), or, for another
host's lease, not renewed within ``ttl_s`` by the store's own clock while this run watches
it (a live run renews every RENEW_EVERY_S, so it is recognised sooner).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from botocore.exceptions import BotoCoreError, ClientError

from tasks.storage import S3Location, S3Settings, StorageError, describe_s3_error

LEASE_TTL_S = 120.0
RENEW_EVERY_S = 30.0
_HELD: set[tuple[str, str]] = set()  # (bucket, key) of the leases this process's runs hold
_HELD_LOCK = threading.Lock()


class DestinationBusy(RuntimeError):
    """Another live run holds the destination's lease."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as written in it."""

    run_id: str
    host: str
    pid: int
    pid_started: str | None  # the process's start time (Linux), so a reused PID is not it
    acquired_at: str

    def body(self) -> bytes:
        """The lease's content; ``written`` changes it (and its ETag) at every renewal."""
        return json.dumps({**self.__dict__, "written": time.time_ns()}).encode()

    @classmethod
    def parse(cls, data: bytes) -> Holder:
        """The holder written in a lease; an unreadable one is 'unknown' (taken once stale)."""
        try:
            fields = json.loads(data)
            return cls(str(fields["run_id"]), str(fields["host"]), int(fields["pid"]),
                       fields.get("pid_started"), str(fields.get("acquired_at")))
        except (TypeError, ValueError, KeyError):
            return cls("unknown", "unknown", 0, None, "unknown")

    @classmethod
    def me(cls, run_id: str) -> Holder:
        pid = os.getpid()
        return cls(run_id, socket.gethostname(), pid, process_started(pid),
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def process_started(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22; the name may hold spaces


def _gone_from_this_host(holder: Holder, key: tuple[str, str]) -> bool:
    """Whether the holder is a process of this host that no longer runs that lease."""
    if holder.host != socket.gethostname():
        return False
    if holder.pid == os.getpid():
        with _HELD_LOCK:
            return key not in _HELD  # this process, but no run of it holds the lease now
    if os.path.isdir("/proc"):
        return process_started(holder.pid) != holder.pid_started
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _lost_race(exc: ClientError) -> bool:
    """412: the condition failed; 409: a concurrent conditional write to the key (AWS)."""
    return _status(exc) in (409, 412) or exc.response.get("Error", {}).get("Code") in (
        "PreconditionFailed", "ConditionalRequestConflict")


def _unsupported(exc: ClientError) -> bool:
    return _status(exc) == 501 or exc.response.get("Error", {}).get("Code") == "NotImplemented"


class Lease:
    """The destination's lease while this run holds it."""

    def __init__(self, client, location: S3Location, holder: Holder,
                 ttl_s: float = LEASE_TTL_S) -> None:
        self.client = client
        self.bucket = location.bucket
        self.key = location.key("state", "lease.json")
        self.uri = location.uri("state", "lease.json")
        self.holder = holder
        self.ttl_s = ttl_s
        self.etag: str | None = None
        self.conditional = True  # False: the store ignores conditional writes

    def acquire(self, logger: logging.Logger | logging.LoggerAdapter) -> None:
        """Take the lease, or raise DestinationBusy naming the run that holds it."""
        try:
            self._acquire(logger)
        except BotoCoreError as exc:
            raise StorageError(f"cannot take the lease {self.uri}: "
                               f"{describe_s3_error(exc)}") from None

    def _acquire(self, logger: logging.Logger | logging.LoggerAdapter) -> None:
        for _ in range(5):
            if self._create(logger):
                return
            current = self._read()
            if current is None:
                continue  # released meanwhile: try again
            holder, etag, age_s = current
            if not _gone_from_this_host(holder, (self.bucket, self.key)):
                if holder.host == socket.gethostname():
                    raise self._busy(holder)  # a live process of this host
                live = self._watch(holder, etag, age_s, logger)
                if live is not None:
                    raise self._busy(live)
            if self._take_over(etag):
                logger.warning("took over the lease of run %s (host %s, pid %s), which is gone",
                               holder.run_id, holder.host, holder.pid)
                return
        raise DestinationBusy(f"{self.uri}: other runs keep taking the lease; try again")

    def _create(self, logger: logging.Logger | logging.LoggerAdapter) -> bool:
        """Create the lease if there is none; False when one exists."""
        try:
            self._put(IfNoneMatch="*")
        except ClientError as exc:
            if _unsupported(exc):
                logger.warning("the store does not support conditional writes: two runs on "
                               "%s at once are not prevented", self.uri)
                self.conditional = False
                self._put()
                return True
            if _lost_race(exc):
                return False
            raise self._error("take", exc) from None
        return True

    def _watch(self, holder: Holder, etag: str, age_s: float,
               logger: logging.Logger | logging.LoggerAdapter,
               poll_s: float = 1.0) -> Holder | None:
        """Watch another host's lease until it is renewed (return its live holder) or
        ``ttl_s`` passes without renewal (None: its run is gone). A live run renews within
        RENEW_EVERY_S, so a live holder is known within that; a dead one within ttl_s."""
        if age_s < self.ttl_s:
            logger.warning("run %s (host %s) holds %s, renewed %.0f s ago: watching it for up "
                           "to %.0f s to see whether that run is still alive", holder.run_id,
                           holder.host, self.uri, age_s, self.ttl_s - age_s)
        while age_s < self.ttl_s:
            time.sleep(min(poll_s, self.ttl_s - age_s))
            current = self._read()
            if current is None:
                return None  # released: take it
            if current[1] != etag:
                return current[0]  # renewed, or another run took it: alive either way
            age_s = current[2]
        return None

    def _take_over(self, etag: str) -> bool:
        """Replace the lease seen with ``etag``; False when it changed or vanished since."""
        try:
            self._put(IfMatch=etag)
        except ClientError as exc:
            if _status(exc) == 404 or _lost_race(exc):
                return False
            raise self._error("take over", exc) from None
        return True

    def _busy(self, holder: Holder) -> DestinationBusy:
        return DestinationBusy(
            f"{self.uri.rsplit('/state/', 1)[0]} is being refreshed by run {holder.run_id} "
            f"(host {holder.host}, pid {holder.pid}, since {holder.acquired_at}); two runs at "
            f"once would pay for the same images. Wait for it to end, or stop it (a run that "
            f"died leaves a lease that is taken over after {self.ttl_s:.0f} s).")

    def renew(self) -> bool:
        """Write the lease again; False when another run has taken it over."""
        try:
            self._put(**({"IfMatch": self.etag} if self.conditional else {}))
        except ClientError as exc:
            if _status(exc) == 404:  # deleted by hand: take it again unless another run did
                return self._put_if_absent()
            if _lost_race(exc):
                return False
            raise self._error("renew", exc) from None
        return True

    def _put_if_absent(self) -> bool:
        try:
            self._put(IfNoneMatch="*")
        except ClientError as exc:
            if _lost_race(exc):
                return False
            raise self._error("renew", exc) from None
        return True

    def release(self) -> None:
        """Delete the lease if this run still holds it."""
        with _HELD_LOCK:
            _HELD.discard((self.bucket, self.key))
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.delete_object(Bucket=self.bucket, Key=self.key,
                                      **({"IfMatch": self.etag} if self.conditional else {}))

    def _put(self, **condition: str) -> None:
        answer = self.client.put_object(Bucket=self.bucket, Key=self.key,
                                        Body=self.holder.body(),
                                        ContentType="application/json", **condition)
        self.etag = answer["ETag"]
        with _HELD_LOCK:
            _HELD.add((self.bucket, self.key))

    def _read(self) -> tuple[Holder, str, float] | None:
        """The lease as it is now: holder, ETag, seconds since written (store's clock)."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise self._error("read", exc) from None
        holder = Holder.parse(answer["Body"].read())
        date = answer["ResponseMetadata"]["HTTPHeaders"].get("date")
        now = parsedate_to_datetime(date).timestamp() if date else time.time()
        return holder, answer["ETag"], max(0.0, now - answer["LastModified"].timestamp())

    def _error(self, action: str, exc: ClientError) -> StorageError:
        return StorageError(f"cannot {action} the lease {self.uri}: {describe_s3_error(exc)}")


@contextlib.asynccontextmanager
async def hold_destination(
    s3: S3Settings, location: S3Location, run_id: str,
    logger: logging.Logger | logging.LoggerAdapter, on_lost: Callable[[], None],
    ttl_s: float | None = None, renew_every_s: float | None = None,
) -> AsyncIterator[Lease]:
    """Hold the destination's lease while the block runs; ``on_lost`` when taken over."""
    lease = Lease(s3.boto3_client(), location, Holder.me(run_id), ttl_s or LEASE_TTL_S)
    renew_every_s = renew_every_s or RENEW_EVERY_S
    await asyncio.to_thread(lease.acquire, logger)

    async def keep() -> None:
        while True:
            await asyncio.sleep(renew_every_s)
            try:
                held = await asyncio.to_thread(lease.renew)
            except (StorageError, BotoCoreError, OSError) as exc:
                logger.warning("lease not renewed (%s); trying again", exc)
                continue
            if not held:
                logger.error("another run took over the lease on %s: this run stops starting "
                             "requests", lease.uri)
                on_lost()
                return

    keeper = asyncio.create_task(keep())
    try:
        yield lease
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await asyncio.to_thread(lease.release)
