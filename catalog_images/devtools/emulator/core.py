"""Wire-format-independent emulator state: config, auth, quota, faults, images, billing, stats.

Route modules (Gemini native and batch, OpenAI-compatible images, async-task relays) parse
their own wire format, ask the core what to do with a request and format the answer themselves.
All methods are thread-safe: routes run on the server loop, control calls come from any thread.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .config import EmulatorConfig, wrong_shape_of
from .faults import OK, FaultPlan
from .files import FileStore, StoredFile, new_id
from .ledger import Ledger, Stats, price_for
from .noise_png import NoiseCache, NoiseImage
from .png import (
    EXTENSION_BY_FORMAT,
    MIME_BY_FORMAT,
    PngTemplate,
    TemplateCache,
    encode_as,
    image_dimensions,
    palette_for,
)
from .quota import SlidingWindowQuota
from .token_ledger import TokenLedger

FOREIGN_REQUESTS_KEPT = 100_000


class Auth(Enum):
    """Outcome of checking the presented API key(s)."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"


@dataclass(frozen=True)
class Admission:
    """Decision for a request: rejected by quota (``quota_wait_s``) or admitted with ``fault``."""

    fault: str = OK
    scripted: bool = False
    quota_wait_s: float | None = None
    slot: float | None = None
    quota_kind: str = "minute"  # which quota refused it: "minute", "day" or "spend"

    @property
    def over_quota(self) -> bool:
        return self.quota_wait_s is not None


@dataclass(frozen=True)
class GeneratedImage:
    """A rendered image of the template size in the prompt's colours: the template's PNG,
    or ``encoded`` (JPEG or WebP bytes of the same pixels) when set."""

    template: PngTemplate
    palette: bytes
    mime_type: str = "image/png"
    encoded: bytes | None = None

    @property
    def width(self) -> int:
        return self.template.width

    @property
    def height(self) -> int:
        return self.template.height

    @property
    def extension(self) -> str:
        """File name suffix of the image's type (``.png``, ``.jpg``, ``.webp``)."""
        return EXTENSION_BY_FORMAT[self.mime_type.removeprefix("image/")]

    def b64(self) -> str:
        if self.encoded is not None:
            return base64.b64encode(self.encoded).decode("ascii")
        return self.template.b64(self.palette)

    def data(self) -> bytes:
        """The image's bytes in its own type."""
        return self.encoded if self.encoded is not None else self.template.png(self.palette)


class EmulatorCore:
    """Shared state and policy of one emulator instance."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self._config = config or EmulatorConfig()
        self._lock = threading.Lock()
        self._quota_window = SlidingWindowQuota()
        self._faults = FaultPlan(self._config.seed)
        self._jitter = random.Random(self._config.seed)
        self._ledger = Ledger()
        self._tokens = TokenLedger()
        self._stats = Stats()
        self._templates = TemplateCache()
        self._noise = NoiseCache()
        self._files = FileStore()
        self.cdn_origin: str | None = None  # the second host's origin, once it listens
        self._foreign: deque[dict[str, Any]] = deque(maxlen=FOREIGN_REQUESTS_KEPT)
        self._admitted = 0  # requests let past the quotas since the last reset ("today")
        self._admitted_by_model: Counter[str | None] = Counter()  # the same, by model
        self._serving = 0  # synchronous generation requests being answered right now

    # ---- configuration -------------------------------------------------------------------
    @property
    def config(self) -> EmulatorConfig:
        """Current configuration (immutable snapshot)."""
        return self._config

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Apply config changes atomically; a new ``seed`` restarts the random sequences."""
        with self._lock:
            self._config = self._config.updated(changes)
            if "seed" in changes:
                self._faults.reseed(self._config.seed)
                self._jitter = random.Random(self._config.seed)
            return self._config

    def script(self, prompt_contains: str, faults: Iterable[str]) -> None:
        """Queue faults for the next requests whose prompt contains the substring."""
        with self._lock:
            self._faults.script(prompt_contains, faults)

    def clear_scripts(self) -> None:
        with self._lock:
            self._faults.clear_scripts()

    def pending_scripts(self) -> dict[str, list[str]]:
        with self._lock:
            return self._faults.pending()

    # ---- request policy ------------------------------------------------------------------
    def authenticate(self, presented: Iterable[str]) -> Auth:
        """Check the keys a request carried (any source) against ``api_key``."""
        expected = self._config.api_key
        if expected is None:
            return Auth.OK
        keys = [k for k in presented if k]
        if not keys:
            return Auth.MISSING
        wanted = expected.encode("utf-8")
        if any(hmac.compare_digest(k.encode("utf-8"), wanted) for k in keys):
            return Auth.OK
        return Auth.INVALID

    def serving_started(self) -> None:
        """A synchronous generation request arrived (the app's middleware counts it)."""
        with self._lock:
            self._serving += 1

    def serving_ended(self) -> None:
        """That request has been answered."""
        with self._lock:
            self._serving -= 1

    def admit(self, prompt: str, model: str | None = None) -> Admission:
        """Apply capacity and quota, then choose the fault (scripted first, then random).

        Beyond ``max_concurrency`` requests being served the answer is a 503 at once, as a
        model out of capacity answers; it is neither a quota request nor an injected fault.
        """
        with self._lock:
            capacity = self._config.max_concurrency
            if capacity is not None and self._serving > capacity:
                self._stats.capacity_503 += 1
                return Admission(fault="503")
            admission = self._take_quota(model)
            if admission.over_quota:
                return admission
            fault, scripted = self._pick_fault(prompt, None)
            return Admission(fault=fault, scripted=scripted, slot=admission.slot)

    def check_quota(self) -> Admission:
        """Apply the quota only (requests without a prompt of their own, e.g. batch creation)."""
        with self._lock:
            return self._take_quota()

    def pick_fault(self, prompt: str, applicable: Collection[str] | None = None) -> str:
        """Choose a fault without quota; kinds outside ``applicable`` become "ok" (uncounted).

        A scripted entry is consumed even when it does not apply.
        """
        with self._lock:
            return self._pick_fault(prompt, applicable)[0]

    def _take_quota(self, model: str | None = None) -> Admission:
        """The spend cap counts the project's requests, the per-day quota the model's (as
        Google's ``GenerateRequestsPerDayPerProjectPerModel``); ``None``: no model given."""
        cfg = self._config
        if cfg.spend_cap_after is not None and self._admitted >= cfg.spend_cap_after:
            self._stats.refused("spend")
            return Admission(quota_wait_s=0.0, quota_kind="spend")
        if cfg.rpd is not None and self._admitted_by_model[model] >= cfg.rpd:
            self._stats.refused("day")
            return Admission(quota_wait_s=cfg.rpd_retry_delay_s, quota_kind="day")
        if cfg.rpm is None:
            self._count_admitted(model)
            return Admission()
        now = time.monotonic()
        wait = self._quota_window.try_acquire(now, cfg.rpm, cfg.quota_window_s)
        if wait > 0:
            self._stats.quota_429 += 1
            return Admission(quota_wait_s=wait)
        self._count_admitted(model)
        return Admission(slot=now)

    def _count_admitted(self, model: str | None) -> None:
        self._admitted += 1
        self._admitted_by_model[model] += 1

    def _pick_fault(self, prompt: str, applicable: Collection[str] | None) -> tuple[str, bool]:
        fault, scripted = self._faults.pick(prompt, self._config.faults)
        if applicable is not None and fault not in applicable:
            fault = OK
        if fault != OK:
            self._stats.injected[fault] += 1
        if scripted:
            self._stats.scripted += 1
        return fault, scripted

    def release(self, admission: Admission) -> None:
        """Give back the quota slot of an admitted request that was answered with a 429."""
        if admission.slot is not None:
            with self._lock:
                self._quota_window.release(admission.slot)

    def generation_delay(self) -> float:
        """Seconds a successful generation takes: base latency plus uniform jitter."""
        cfg = self._config
        if cfg.latency_jitter_s <= 0:
            return cfg.latency_s
        with self._lock:
            return cfg.latency_s + self._jitter.uniform(0.0, cfg.latency_jitter_s)

    async def render(self, prompt: str, image_size: str, aspect_ratio: str,
                     fault: str = OK) -> GeneratedImage | NoiseImage:
        """The prompt's image at the requested size (another shape for the ``wrong_shape``
        fault; noise of ``image_bytes`` when set for the size); new sizes are built off the
        event loop."""
        cfg = self._config
        if fault == "wrong_shape":
            image_size, aspect_ratio = wrong_shape_of(cfg, image_size, aspect_ratio)
        width, height = image_dimensions(image_size, aspect_ratio)
        target = cfg.image_bytes.get(image_size) if cfg.image_format == "png" else None
        if target:
            noise = self._noise.peek(width, height, target)
            if noise is None:
                noise = await asyncio.to_thread(self._noise.get, width, height, target)
            return await asyncio.to_thread(NoiseImage, noise)
        template = self._templates.peek(width, height)
        if template is None:
            template = await asyncio.to_thread(self._templates.get, width, height)
        palette, image_format = palette_for(prompt), cfg.image_format
        if image_format == "png":
            return GeneratedImage(template=template, palette=palette)
        encoded = await asyncio.to_thread(encode_as, template.png(palette), image_format)
        return GeneratedImage(template, palette, MIME_BY_FORMAT[image_format], encoded)

    def publish(self, data: bytes, content_type: str = "image/png", suffix: str = ".png") -> str:
        """Keep a file for download under ``/_emulator/files/NAME``; returns NAME."""
        name = new_id() + suffix
        self._files.put(name, StoredFile(data, content_type, time.time()))
        return name

    def result_origin(self, own: str) -> str:
        """Where result URLs point: the second host when it listens, else ``own``."""
        return self.cdn_origin or own

    def record_foreign(self, method: str, path: str, headers: dict[str, str]) -> None:
        """Keep a request the second host got (the last FOREIGN_REQUESTS_KEPT)."""
        with self._lock:
            self._foreign.append({"method": method, "path": path, "headers": headers})

    def foreign_requests(self) -> list[dict[str, Any]]:
        """Requests the second host got, oldest first, with every header."""
        with self._lock:
            return list(self._foreign)

    def published(self, name: str) -> StoredFile | None:
        """A file kept by ``publish`` (None once evicted from the bounded store)."""
        return self._files.get(name)

    def warm(self, sizes: Iterable[tuple[str, str]]) -> None:
        """Pre-build templates for (imageSize, aspectRatio) pairs (blocking)."""
        for image_size, aspect_ratio in sizes:
            self._templates.get(*image_dimensions(image_size, aspect_ratio))

    # ---- accounting ----------------------------------------------------------------------
    def bill(self, prompt: str, model: str, image_size: str, mode: str = "standard") -> float:
        """Charge one image about to be delivered; returns its price in USD (for ``refund``).

        ``mode="batch"`` uses ``batch_prices_usd`` instead of ``prices_usd``.
        """
        with self._lock:
            cfg = self._config
            prices = cfg.batch_prices_usd if mode == "batch" else cfg.prices_usd
            usd = price_for(prices, model, image_size)
            self._ledger.bill(prompt, model, image_size, usd, mode=mode)
            return usd

    def refund(
        self, prompt: str, model: str, image_size: str, usd: float, mode: str = "standard"
    ) -> None:
        """Undo ``bill`` for an image whose response could not be written."""
        with self._lock:
            self._ledger.bill(prompt, model, image_size, usd, count=-1, mode=mode)

    def bill_tokens(
        self, model: str, usage: dict[str, Any] | None, mode: str = "standard", count: int = 1
    ) -> float:
        """Charge an answer's ``usageMetadata`` in the token ledger (``count=-1`` refunds)."""
        if not usage:
            return 0.0
        with self._lock:
            rates = self._config.token_rates.get(model, {})
            return self._tokens.bill(rates, model, usage, mode, count)

    def count_model_lookup(self, status: int) -> None:
        """A models.get call, by the status it was answered."""
        with self._lock:
            self._stats.model_lookups[str(status)] += 1

    def count_request(self) -> None:
        with self._lock:
            self._stats.requests += 1

    def count_outcome(self, outcome: str) -> None:
        with self._lock:
            self._stats.by_outcome[outcome] += 1

    def count_status(self, status: int) -> None:
        with self._lock:
            self._stats.by_status[str(status)] += 1

    def ledger(self) -> dict[str, Any]:
        """The per-image ledger, with the token ledger (what usage billing charges) under
        ``"tokens"``."""
        with self._lock:
            return {**self._ledger.snapshot(), "tokens": self._tokens.snapshot()}

    def duplicates(self) -> dict[str, int]:
        with self._lock:
            return self._ledger.duplicates()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.snapshot()

    def reset_counters(self) -> None:
        """Clear the ledger, the stats and the quota window (scripts and config stay)."""
        with self._lock:
            self._ledger = Ledger()
            self._tokens = TokenLedger()
            self._stats = Stats()
            self._quota_window.clear()
            self._admitted = 0
            self._admitted_by_model.clear()
