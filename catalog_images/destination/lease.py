"""One run at a time per destination: a lease object, ``state/lease.json``.

Two runs refreshing one destination at once (a cron run beside an ad-hoc one, a schedule on
two deployments) would both buy every row neither has uploaded yet. So a run first creates
the lease with a conditional PUT (``If-None-Match: *``: of two runs, exactly one succeeds),
renews it from a thread of its own with ``If-Match`` on its ETag (every write changes the
content, so the ETag), and deletes it when it ends.

A run that finds a live lease stops before any request, naming the run that holds it. A
lease is taken over, again by a conditional PUT, when its holder is gone: held by a process
of this machine (same boot, same PID namespace) that no longer exists (``kill -9``, then a
re-run: no wait), or, for another machine's lease, not renewed within ``ttl_s`` by the
store's own clock while this run watches it (a live run renews every RENEW_EVERY_S, so it
is recognised sooner). A run that cannot renew for ``ttl_s - RENEW_EVERY_S`` stops starting
requests, before anyone may take its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from email.utils import parsedate_to_datetime

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.lease_answers import (
    Seen,
    conflict,
    precondition_failed,
    status,
    unsupported,
)
from catalog_images.destination.lease_holder import (
    MAX_LEASE_BYTES,
    Holder,
    mark_active,
    mark_inactive,
    pid_space,
    process_started,
)
from catalog_images.destination.storage import (
    S3Location,
    S3Settings,
    StorageError,
    describe_s3_error,
)
from catalog_images.secrets import redact

__all__ = ["DestinationBusy", "Holder", "Lease", "Seen", "hold_destination", "pid_space",
           "process_started"]

LEASE_TTL_S = 120.0
RENEW_EVERY_S = 30.0

Logger = logging.Logger | logging.LoggerAdapter


class DestinationBusy(RuntimeError):
    """Another live run holds the destination's lease."""


class Lease:
    """The destination's lease, held by one run. Thread-safe: the keeper renews it from
    its own thread while the run goes on."""

    def __init__(self, client, location: S3Location, holder: Holder,
                 ttl_s: float = LEASE_TTL_S) -> None:
        self.client = client
        self.bucket = location.bucket
        self.layout = DestinationLayout(location)
        self.key, self.uri = self.layout.lease_key(), self.layout.lease_uri()
        self.holder = holder
        self.ttl_s = ttl_s
        self.etag: str | None = None
        self.written: int | None = None  # the stamp of this run's last write
        self.conditional = True  # False: the store refuses conditional writes (501)
        self.lost = False
        self.released = False
        self._lock = threading.Lock()

    def acquire(self, logger: Logger) -> None:
        """Take the lease, or raise DestinationBusy naming the run that holds it."""
        mark_active(self.holder.run_id)
        try:
            self._acquire(logger)
        except BotoCoreError as exc:
            self._forget()
            raise StorageError(f"cannot take the lease {self.uri}: "
                               f"{describe_s3_error(exc)}") from None
        except BaseException:
            self._forget()
            raise

    def renew(self) -> bool:
        """Write the lease again; False when another run has taken it over."""
        with self._lock:
            if self.released or self.lost:
                return not self.lost
            for _ in range(3):
                try:
                    self._put(**self._if_mine())
                    return True
                except ClientError as exc:
                    if status(exc) == 404 and self._create():  # deleted by hand
                        return True
                    if conflict(exc):
                        continue
                    if not (precondition_failed(exc) or status(exc) == 404):
                        raise self._error("renew", exc) from None
                if self._still_mine():  # a retried write that had landed: still ours
                    return True
                self.lost = True
                return False
            return True  # conflicts only: the lease is still being written by us

    def release(self) -> None:
        """Delete the lease if this run still holds it (once, after any renewal in flight)."""
        with self._lock:
            if self.released:
                return
            self.released = True
            try:
                if not self.lost and self.etag is not None:
                    self.client.delete_object(Bucket=self.bucket, Key=self.key,
                                              **self._if_mine())
            except ClientError as exc:
                if not precondition_failed(exc):  # 412: another run holds it now
                    self._warn_not_deleted(describe_s3_error(exc))
            except BotoCoreError as exc:
                self._warn_not_deleted(describe_s3_error(exc))
            finally:
                self._forget()

    def _if_mine(self) -> dict[str, str]:
        """The condition that the lease is still this run's last write (none without
        conditional writes)."""
        return {"IfMatch": self.etag} if self.conditional and self.etag else {}

    def _warn_not_deleted(self, reason: str) -> None:
        logging.getLogger(__name__).warning(
            "lease %s not deleted (%s): the next run of this machine takes it over at once, "
            "others after %.0f s", self.uri, reason, self.ttl_s)

    def _acquire(self, logger: Logger) -> None:
        for _ in range(5):
            if self._create_or_fallback(logger):
                return
            seen = self._read()
            if seen is None:
                continue  # released meanwhile: try again
            holder = seen.holder
            if not holder.gone():
                if holder.on_this_machine():
                    raise self._busy(holder)  # a live process of this machine
                live = self._watch(seen, logger)
                if live is not None:
                    raise self._busy(live)
            if self._take_over(seen.etag):
                logger.warning("took over the lease of run %s (host %s, pid %s), which is gone",
                               holder.run_id, holder.host, holder.pid)
                return
        raise DestinationBusy(f"{self.uri}: other runs keep taking the lease; try again")

    def _create_or_fallback(self, logger: Logger) -> bool:
        """Create the lease if there is none; False when one exists."""
        try:
            return self._create()
        except ClientError as exc:
            if not unsupported(exc):
                raise self._error("take", exc) from None
        logger.warning("the store refuses conditional writes: two runs on %s that start at "
                       "the same moment are not kept apart", self.uri)
        self.conditional = False
        seen = self._read()
        if seen is not None and seen.age_s < self.ttl_s and not seen.holder.gone():
            raise self._busy(seen.holder)
        self._put()
        return True

    def _create(self) -> bool:
        for _ in range(3):
            try:
                self._put(IfNoneMatch="*")
                return True
            except ClientError as exc:
                if precondition_failed(exc):
                    return self._still_mine()  # ours if a retried create had landed
                if not conflict(exc):
                    raise
        return False

    def _watch(self, seen: Seen, logger: Logger, poll_s: float = 1.0) -> Holder | None:
        """Watch another machine's lease until it is renewed (return its live holder) or
        ``ttl_s`` passes without renewal (None: its run is gone)."""
        if seen.age_s < self.ttl_s:
            logger.warning("run %s (host %s) holds %s, renewed %.0f s ago: watching it for up "
                           "to %.0f s to see whether that run is still alive",
                           seen.holder.run_id, seen.holder.host, self.uri, seen.age_s,
                           self.ttl_s - seen.age_s)
        age_s = seen.age_s
        while age_s < self.ttl_s:
            time.sleep(min(poll_s, self.ttl_s - age_s))
            now = self._read()
            if now is None:
                return None  # released: take it
            if now.etag != seen.etag:
                return now.holder  # renewed, or another run took it: alive either way
            age_s = now.age_s
        return None

    def _take_over(self, etag: str) -> bool:
        """Replace the lease seen with ``etag``; False when it changed or vanished since."""
        try:
            self._put(IfMatch=etag)
        except ClientError as exc:
            if status(exc) == 404 or precondition_failed(exc) or conflict(exc):
                return self._still_mine()
            raise self._error("take over", exc) from None
        return True

    def _put(self, **condition: str) -> None:
        self.written = time.time_ns()
        answer = self.client.put_object(Bucket=self.bucket, Key=self.key,
                                        Body=self.holder.body(self.written),
                                        ContentType="application/json", **condition)
        self.etag = answer["ETag"]

    def _still_mine(self) -> bool:
        """After a refused conditional write: whether the lease holds this run's last write
        (a write whose answer was lost, then retried by botocore, had landed)."""
        seen = self._read()
        if seen is None or self.written is None or seen.stamp != self.written:
            return False
        self.etag = seen.etag
        return True

    def _read(self) -> Seen | None:
        """The lease as it is now; None when there is none."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if status(exc) == 404:
                return None
            raise self._error("read", exc) from None
        holder, stamp = Holder.parse(answer["Body"].read(MAX_LEASE_BYTES + 1))
        date = answer["ResponseMetadata"]["HTTPHeaders"].get("date")
        now = parsedate_to_datetime(date).timestamp() if date else time.time()
        return Seen(holder, answer["ETag"], max(0.0, now - answer["LastModified"].timestamp()),
                    stamp)

    def _busy(self, holder: Holder) -> DestinationBusy:
        return DestinationBusy(
            f"{self.layout.root_uri} is being refreshed by run {holder.run_id} "
            f"(host {holder.host}, pid {holder.pid}, since {holder.acquired_at}); two runs at "
            f"once would pay for the same images. Wait for it to end, or stop it (a run that "
            f"died leaves a lease that is taken over after {self.ttl_s:.0f} s).")

    def _error(self, action: str, exc: ClientError) -> StorageError:
        return StorageError(f"cannot {action} the lease {self.uri}: {describe_s3_error(exc)}")

    def _forget(self) -> None:
        mark_inactive(self.holder.run_id)


class _Keeper(threading.Thread):
    """Renews a lease every ``every_s`` from its own thread, so a busy event loop (a long
    plan) cannot let it lapse; calls ``on_lost`` when it was taken over, or when it could
    not be renewed for so long that another run may take it."""

    def __init__(self, lease: Lease, every_s: float, logger: Logger,
                 on_lost: Callable[[], None]) -> None:
        super().__init__(name="catalog-images-lease", daemon=True)
        self.lease, self.every_s, self.logger, self.on_lost = lease, every_s, logger, on_lost
        self.stopping = threading.Event()

    def run(self) -> None:
        renewed = time.monotonic()
        while not self.stopping.wait(self.every_s):
            try:
                held = self.lease.renew()
            except Exception as exc:  # noqa: BLE001 - any failure: keep trying until unsafe
                if time.monotonic() - renewed < self.lease.ttl_s - self.every_s:
                    self.logger.warning("lease not renewed (%s); trying again",
                                        redact(f"{type(exc).__name__}: {exc}"))
                    continue
                self.logger.error("lease %s not renewed for %.0f s: this run stops starting "
                                  "requests before another run may take it", self.lease.uri,
                                  time.monotonic() - renewed)
                self.on_lost()
                return
            if not held:
                self.logger.error("another run took over the lease on %s: this run stops "
                                  "starting requests", self.lease.uri)
                self.on_lost()
                return
            renewed = time.monotonic()


@contextlib.asynccontextmanager
async def hold_destination(
    s3: S3Settings, location: S3Location, run_id: str, logger: Logger,
    on_lost: Callable[[], None], ttl_s: float | None = None, renew_every_s: float | None = None,
) -> AsyncIterator[Lease]:
    """Hold the destination's lease while the block runs; ``on_lost`` (called on this event
    loop) when it is taken over or can no longer be renewed."""
    client = s3.boto3_client(read_timeout=10, max_attempts=3)
    lease = Lease(client, location, Holder.me(run_id), ttl_s or LEASE_TTL_S)
    await asyncio.to_thread(lease.acquire, logger)
    loop = asyncio.get_running_loop()
    keeper = _Keeper(lease, renew_every_s or RENEW_EVERY_S, logger,
                     lambda: loop.call_soon_threadsafe(on_lost))
    keeper.start()
    try:
        yield lease
    finally:
        keeper.stopping.set()
        await asyncio.to_thread(lease.release)  # waits for a renewal in flight
