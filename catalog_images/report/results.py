"""Per-row results and the sink that streams them to a Parquet manifest while totalling."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from catalog_images.catalog.fingerprint import sha256_hex
from catalog_images.catalog.plan import PlanSummary, iter_settled
from catalog_images.models import Job, RowStatus


@dataclass(slots=True)
class Tries:
    """What sending one row to providers took: requests sent, retries by error class, and
    the latency of the request that brought its image."""

    attempts: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    latency_s: float | None = None


@dataclass(slots=True)
class RowResult:
    """How one catalog row ended; built by one constructor per outcome (below)."""

    sku: str | None
    row: int
    status: str
    reason: str | None = None
    error_class: str | None = None
    provider: str | None = None
    model: str | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    attempts: int = 0
    latency_s: float | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    s3_key: str | None = None
    cost_usd: float = 0.0  # what the provider billed (usage, or its per-image price)
    list_cost_usd: float = 0.0  # the list price of the image delivered, for comparison
    prompt_sha256: str | None = None
    fingerprint: str | None = None
    retries: dict[str, int] = field(default_factory=dict)

    @classmethod
    def _of(cls, job: Job, status: str, fingerprint: str | None, tries: Tries | None,
            **outcome) -> RowResult:
        """A result of ``job`` carrying the job's identity and, if given, its tries."""
        if tries is not None:
            outcome.update(attempts=tries.attempts, retries=dict(tries.retries),
                           latency_s=tries.latency_s)
        return cls(sku=job.sku, row=job.row, status=status, resolution=job.resolution,
                   aspect_ratio=job.aspect_ratio, prompt_sha256=sha256_hex(job.prompt),
                   fingerprint=fingerprint or job.fingerprint, **outcome)

    @classmethod
    def succeeded(  # noqa: PLR0913 - keyword-only fields of one record
        cls, job: Job, *, s3_key: str, size: int, width: int, height: int,
                  provider: str | None, model: str | None, cost_usd: float,
                  fingerprint: str | None = None, reason: str | None = None,
                  tries: Tries | None = None, list_cost_usd: float | None = None) -> RowResult:
        """The row's image is at the destination under ``s3_key`` (``size`` bytes)."""
        return cls._of(job, RowStatus.SUCCEEDED, fingerprint, tries, s3_key=s3_key,
                       bytes=size, width=width, height=height, provider=provider,
                       model=model, cost_usd=cost_usd, reason=reason,
                       list_cost_usd=cost_usd if list_cost_usd is None else list_cost_usd)

    @classmethod
    def quarantined(  # noqa: PLR0913 - keyword-only fields of one record
        cls, job: Job, *, s3_key: str, size: int, width: int, height: int,
        provider: str | None, model: str | None, cost_usd: float, reason: str,
        fingerprint: str | None = None, tries: Tries | None = None,
        list_cost_usd: float | None = None) -> RowResult:
        """The row's paid image is not the asked shape (``reason``) and was kept under the
        quarantine prefix, at ``s3_key``; the next run does not pay for it again."""
        return cls._of(job, RowStatus.QUARANTINED, fingerprint, tries, s3_key=s3_key,
                       bytes=size, width=width, height=height, provider=provider,
                       model=model, cost_usd=cost_usd, reason=reason,
                       error_class="wrong_shape",
                       list_cost_usd=cost_usd if list_cost_usd is None else list_cost_usd)

    @classmethod
    def failed(  # noqa: PLR0913 - keyword-only fields of one record
        cls, job: Job, error_class: str, reason: str, *, provider: str | None = None,
               model: str | None = None, cost_usd: float = 0.0, fingerprint: str | None = None,
               width: int | None = None, height: int | None = None,
               tries: Tries | None = None, list_cost_usd: float = 0.0) -> RowResult:
        """The row has no image; ``error_class`` says which kind of problem stopped it."""
        return cls._of(job, RowStatus.FAILED, fingerprint, tries, error_class=error_class,
                       reason=reason, provider=provider, model=model, cost_usd=cost_usd,
                       width=width, height=height, list_cost_usd=list_cost_usd)

    @classmethod
    def skipped(cls, job: Job, reason: str, *, error_class: str | None = None,
                provider: str | None = None, model: str | None = None, cost_usd: float = 0.0,
                fingerprint: str | None = None, tries: Tries | None = None) -> RowResult:
        """The row was left for a later run (stopped, budget, quota, a batch still open)."""
        return cls._of(job, RowStatus.SKIPPED, fingerprint, tries, reason=reason,
                       error_class=error_class, provider=provider, model=model,
                       cost_usd=cost_usd)

    @classmethod
    def unchanged(cls, job: Job, s3_key: str, fingerprint: str | None = None,
                  reason: str = "unchanged") -> RowResult:
        """An image of the row's fingerprint is already at the destination under ``s3_key``
        (``reason``: QUARANTINED_EARLIER when that is a quarantined image)."""
        return cls._of(job, RowStatus.SKIPPED, fingerprint, None, reason=reason,
                       s3_key=s3_key)

    @classmethod
    def lost(cls, job: Job, reason: str) -> RowResult:
        """The row got no outcome from the code that ran it (a crashed chunk or shard)."""
        return cls.failed(job, "internal", reason)

    @classmethod
    def settled(cls, record: dict) -> RowResult:
        """A row the plan settled before any request: rejected, or skipped as unchanged."""
        return cls(sku=record["sku"], row=record["row"], status=record["status"],
                   reason=record["reason"], fingerprint=record["fingerprint"])

    @classmethod
    def from_dict(cls, data: dict) -> RowResult:
        """A result read back from a manifest (``iter_result_rows``)."""
        return cls(**data)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    @property
    def dimensions(self) -> str | None:
        """'WIDTHxHEIGHT' or None."""
        return f"{self.width}x{self.height}" if self.width and self.height else None


RESULT_SCHEMA = pa.schema(
    [
        ("sku", pa.string()), ("row", pa.int64()), ("status", pa.string()),
        ("reason", pa.string()), ("error_class", pa.string()), ("provider", pa.string()),
        ("model", pa.string()), ("resolution", pa.string()), ("aspect_ratio", pa.string()),
        ("attempts", pa.int32()), ("latency_s", pa.float64()), ("bytes", pa.int64()),
        ("width", pa.int32()), ("height", pa.int32()), ("s3_key", pa.string()),
        ("cost_usd", pa.float64()), ("list_cost_usd", pa.float64()),
        ("prompt_sha256", pa.string()),
        ("fingerprint", pa.string()), ("retries", pa.map_(pa.string(), pa.int32())),
    ]
)
_FIELD_NAMES = [f.name for f in fields(RowResult)]
# Answers without an image that a usage-billing provider may still charge (prompt, thinking).
NO_IMAGE_CLASSES = frozenset({"safety", "blocked", "no_image"})


@dataclass
class Totals:
    """Run-level aggregates, updated row by row."""

    counts: Counter = field(default_factory=Counter)
    cost_by_provider: defaultdict = field(default_factory=lambda: defaultdict(float))
    cost_by_resolution: defaultdict = field(default_factory=lambda: defaultdict(float))
    cost_by_model: defaultdict = field(default_factory=lambda: defaultdict(float))
    list_cost_usd: float = 0.0
    no_image_cost_usd: float = 0.0
    no_image_rows: int = 0
    images_by_provider: Counter = field(default_factory=Counter)
    retries_by_class: Counter = field(default_factory=Counter)
    failures_by_class: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    bytes_total: int = 0

    def add(self, result: RowResult) -> None:
        """Count one row."""
        self.counts[result.status] += 1
        self.retries_by_class.update(result.retries)
        if result.status == RowStatus.SUCCEEDED:
            self.images_by_provider[result.provider or "?"] += 1
            self.bytes_total += result.bytes or 0
            if result.latency_s is not None:
                self.latencies.append(result.latency_s)
        elif result.status == RowStatus.FAILED:
            self.failures_by_class[result.error_class or "error"] += 1
        if result.cost_usd:
            self.cost_by_provider[result.provider or "?"] += result.cost_usd
            self.cost_by_resolution[result.resolution or "?"] += result.cost_usd
            self.cost_by_model[result.model or "?"] += result.cost_usd
        self.list_cost_usd += result.list_cost_usd or 0.0
        if result.cost_usd and result.error_class in NO_IMAGE_CLASSES:
            self.no_image_cost_usd += result.cost_usd
            self.no_image_rows += 1
        if result.reason and result.status != RowStatus.SUCCEEDED:
            self.reasons[result.reason] += 1

    def summary(self, wall_s: float, generation_s: float | None = None) -> dict:
        """The ``totals`` object of the run report."""
        rows = sum(self.counts.values())
        accepted = rows - self.counts[RowStatus.REJECTED]
        succeeded = self.counts[RowStatus.SUCCEEDED]
        attempted = succeeded + self.counts[RowStatus.FAILED] + self.counts[
            RowStatus.QUARANTINED]
        lat = np.array(self.latencies) if self.latencies else None
        busy = generation_s if generation_s else wall_s
        return {
            "rows": rows,
            "accepted": accepted,
            "succeeded": succeeded,
            "failed": self.counts[RowStatus.FAILED],
            "rejected": self.counts[RowStatus.REJECTED],
            "skipped": self.counts[RowStatus.SKIPPED],
            "quarantined": self.counts[RowStatus.QUARANTINED],
            # of the rows that needed an image this run: unchanged and budget-skipped rows
            # are neither successes nor failures
            "success_rate": round(succeeded / attempted, 4) if attempted else None,
            "cost_usd": round(sum(self.cost_by_provider.values()), 6),
            "cost_by_provider": {k: round(v, 6) for k, v in sorted(self.cost_by_provider.items())},
            "cost_by_resolution": {
                k: round(v, 6) for k, v in sorted(self.cost_by_resolution.items())
            },
            "cost_by_model": {k: round(v, 6) for k, v in sorted(self.cost_by_model.items())},
            # the bill above (usage where the provider bills usage) beside the list prices
            # of the images delivered, and what answers without an image cost
            "list_cost_usd": round(self.list_cost_usd, 6),
            "no_image_cost_usd": round(self.no_image_cost_usd, 6),
            "no_image_rows": self.no_image_rows,
            "images_by_provider": dict(sorted(self.images_by_provider.items())),
            "latency_p50_s": round(float(np.percentile(lat, 50)), 3) if lat is not None else None,
            "latency_p95_s": round(float(np.percentile(lat, 95)), 3) if lat is not None else None,
            "retries_by_class": dict(sorted(self.retries_by_class.items())),
            "failures_by_class": dict(sorted(self.failures_by_class.items())),
            "bytes": self.bytes_total,
            "images_per_s": round(succeeded / busy, 3) if busy > 0 else None,
            "generation_s": round(generation_s, 3) if generation_s is not None else None,
            "wall_s": round(wall_s, 3),
        }


class ResultSink:
    """Collects row results: totals in memory, rows streamed to a Parquet file."""

    def __init__(self, path: Path, flush_rows: int = 2_000) -> None:
        self.path = path
        self.totals = Totals()
        self._buffer: list[RowResult] = []
        self._flush_rows = flush_rows
        self._writer = pq.ParquetWriter(path, RESULT_SCHEMA)

    def add(self, result: RowResult) -> None:
        """Record one row's result."""
        self.totals.add(result)
        self._buffer.append(result)
        if len(self._buffer) >= self._flush_rows:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows to the manifest file."""
        if not self._buffer:
            return
        columns = {name: [getattr(r, name) for r in self._buffer] for name in _FIELD_NAMES}
        columns["retries"] = [list(r.retries.items()) for r in self._buffer]
        self._writer.write_table(pa.table(columns, schema=RESULT_SCHEMA))
        self._buffer.clear()

    def close(self) -> None:
        """Flush and close the manifest file."""
        self.flush()
        self._writer.close()


def iter_result_rows(path: Path, batch_rows: int = 5_000):
    """Yield result dicts from a manifest file, batch by batch."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            row["retries"] = dict(row["retries"] or [])
            yield row


def settled_results(plan: PlanSummary, work_dir: Path) -> ResultSink:
    """The run's result sink, holding already the rows the plan settled (rejected, unchanged)."""
    sink = ResultSink(work_dir / "manifest.parquet")
    for settled in iter_settled(plan.settled_path):
        sink.add(RowResult.settled(settled))
    return sink
