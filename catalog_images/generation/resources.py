"""What a run holds while it generates, in this process: provider clients, gates and
breakers, the S3 client, the spool and its threads. ``open_run_context`` creates them and
closes them when the run's generation ends; the ``RunContext`` it yields is handed
explicitly to whatever works on the run's rows (chunk tasks, batch mode, delivery).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial

from catalog_images.catalog.references import ReferencePolicy, catalog_base
from catalog_images.catalog.validate import load_reference_bytes
from catalog_images.destination.spool import Spool
from catalog_images.destination.storage import S3Location, S3Settings
from catalog_images.generation.breaker import CircuitBreaker
from catalog_images.generation.budget import Budget
from catalog_images.generation.limits import ProviderGate
from catalog_images.generation.retry import RetryPolicy
from catalog_images.generation.routing import ProviderRuntime, Router
from catalog_images.generation.stop import StopRequest
from catalog_images.images import inspect_image
from catalog_images.models import ReferenceImage
from catalog_images.providers import create_provider
from catalog_images.providers.config import ProviderConfig
from catalog_images.report.contact_sheet import SheetItem
from catalog_images.report.events import RunEvents
from catalog_images.report.results import RowResult
from catalog_images.settings import RunSettings

REFERENCES_KEPT = 32


# Requests in flight at first to a provider, then one more every 20 ms while rows wait and
# one more per success (generation/limits.py: slow start): a known request quota says
# nothing of how many requests the model serves at once, and a wall of requests beyond that
# capacity comes back as a storm of 503s.
INITIAL_WINDOW = 8


@dataclass(eq=False)
class RunContext:
    """Everything a row needs that lives for the whole run in this process."""

    run_id: str
    location: S3Location
    router: Router
    s3_client: object
    spool: Spool
    s3_settings: S3Settings
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    budget: Budget = field(default_factory=lambda: Budget(None))
    force: bool = False  # regenerate even when the bucket holds an image of this fingerprint
    force_skus: frozenset[str] = frozenset()
    wrong_shape: str = "quarantine"  # RunSettings.wrong_shape: quarantine, accept or fail
    thumbnails: list[SheetItem] = field(default_factory=list)  # for the contact sheet
    thumbnail_pixels: int = 0  # decoded for them so far (generation/deliver.py)
    last_upload: float | None = None  # wall-clock time of the last image uploaded
    thumbnail_slot: asyncio.Semaphore = field(default_factory=asyncio.Semaphore)
    rng: random.Random = field(default_factory=random.Random)
    on_result: Callable[[RowResult], None] | None = None
    # Large spool writes while a provider slot is held: their own threads, so they never
    # queue behind thumbnails or reference reads in the default pool.
    spool_pool: ThreadPoolExecutor | None = None
    stop: StopRequest = field(default_factory=StopRequest)  # SIGINT/SIGTERM: no new request
    reference_policy: ReferencePolicy | None = None  # where reference images may come from
    events: RunEvents = field(default_factory=lambda: RunEvents(None))  # Prefect events
    # Every key under images/ and quarantine/ as generation began (generation/run.py), so the
    # check before paying needs no List per row; None: each row lists its own keys.
    image_keys: frozenset[str] | None = None
    logger: logging.Logger | logging.LoggerAdapter = field(
        default_factory=lambda: logging.getLogger("catalog_images.run"))
    _references: OrderedDict = field(default_factory=OrderedDict)

    @property
    def waiting(self) -> int:
        """Rows queued for a provider slot, over all providers."""
        return sum(r.gate.waiting for r in self.router.runtimes.values())

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered, over all providers."""
        return sum(r.gate.sending for r in self.router.runtimes.values())

    @property
    def capacity(self) -> int:
        """Requests that may be in flight at once, over all providers."""
        return sum(r.gate.max_concurrency for r in self.router.runtimes.values())

    def forced(self, sku: str) -> bool:
        """Is this sku regenerated even when its image is current?"""
        return self.force or sku in self.force_skus

    def finish(self, result: RowResult) -> RowResult:
        """Record a row's outcome (report, index, progress) and hand it back."""
        if self.on_result is not None:
            self.on_result(result)
        return result

    async def reference(self, uri: str) -> ReferenceImage:
        """Load (and keep the last few) reference images."""
        if uri in self._references:
            self._references.move_to_end(uri)
            return self._references[uri]
        data = await asyncio.to_thread(load_reference_bytes, uri, self.s3_settings,
                                       self.reference_policy)
        ref = ReferenceImage(inspect_image(data).mime_type, data)
        self._references[uri] = ref
        if len(self._references) > REFERENCES_KEPT:
            self._references.popitem(last=False)
        return ref


class open_run_context:  # noqa: N801 - used as ``async with open_run_context(...)``
    """Create the run's provider clients, gates, breakers and S3 client; close them after."""

    def __init__(
        self, run_id: str, location: S3Location, providers: list[ProviderConfig],
        settings: RunSettings, s3_settings: S3Settings, spool: Spool,
    ) -> None:
        self.run_id, self.location, self.providers = run_id, location, providers
        self.routes, self.concurrency = settings.routes, settings.concurrency
        self.policy = RetryPolicy(settings.max_attempts,
                                  max_provider_wait_s=settings.max_provider_wait_s,
                                  max_retry_hint_s=settings.max_retry_hint_s,
                                  row_deadline_s=settings.row_deadline_s)
        self.breaker_cooldown_s = settings.breaker_cooldown_s
        self.global_limits = settings.global_limits
        self.max_cost_usd = settings.max_cost_usd
        self.force, self.force_skus = settings.force, frozenset(settings.force_skus)
        self.wrong_shape = settings.wrong_shape
        self.s3_settings, self.spool = s3_settings, spool
        self.reference_policy = ReferencePolicy.for_catalog(catalog_base(settings.catalog),
                                                            location.bucket)
        self.events = RunEvents(settings.dest, run_id)
        self._stack = AsyncExitStack()

    def _runtime(self, config: ProviderConfig) -> ProviderRuntime:
        """One provider's client (closed with the run), gate and breaker."""
        concurrency = min(self.concurrency, config.max_concurrency)
        client = create_provider(config, concurrency)
        self._stack.push_async_callback(client.aclose)
        gate = ProviderGate(
            concurrency, rpm=config.requests_per_window, window_s=config.window_s,
            rpd=config.requests_per_day,
            global_limit=f"catalog-images-{config.name}" if self.global_limits else None,
            initial_window=INITIAL_WINDOW,
        )
        breaker = CircuitBreaker(cooldown_s=self.breaker_cooldown_s, on_change=partial(
            self.events.breaker_changed, config.name))
        return ProviderRuntime(config, client, gate, breaker)

    async def __aenter__(self) -> RunContext:
        runtimes = {config.name: self._runtime(config) for config in self.providers}
        s3_pool = max(r.gate.max_concurrency for r in runtimes.values())
        s3_client = await self._stack.enter_async_context(
            self.s3_settings.aio_client_context(max_pool_connections=s3_pool)
        )
        ctx = RunContext(
            run_id=self.run_id, location=self.location, router=Router(runtimes, self.routes),
            s3_client=s3_client, spool=self.spool, s3_settings=self.s3_settings,
            policy=self.policy, budget=Budget(self.max_cost_usd, on_reached=self._budget_reached),
            force=self.force, force_skus=self.force_skus, events=self.events,
            reference_policy=self.reference_policy, wrong_shape=self.wrong_shape,
        )
        self._stack.callback(self.spool.close)  # after the spool's threads are done
        ctx.spool_pool = ThreadPoolExecutor(min(64, s3_pool), thread_name_prefix="spool")
        self._stack.callback(ctx.spool_pool.shutdown)
        return ctx

    def _budget_reached(self, budget: Budget) -> None:
        self.events.budget_reached(budget.cap_usd, budget.spent_usd)

    async def __aexit__(self, *exc_info) -> None:
        await self._stack.aclose()
