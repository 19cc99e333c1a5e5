"""Batch job records under ``state/batches/`` at the destination: the intent before a job
is created, its name once the provider answered, deleted once every row has an outcome.

A record is ``{"display_name", "name", "run_id", "provider", "jobs"}``; ``name`` is None
while the create call has not answered; ``jobs`` are plan rows (``Job.to_dict``). Records of
older versions were keyed by the job name and always carry it.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import StorageError, describe_s3_error
from catalog_images.models import Job

if TYPE_CHECKING:
    from catalog_images.destination.storage import S3Location

log = logging.getLogger(__name__)
MAX_RECORD_BYTES = 256 * 1024 * 1024  # batch_rows jobs of long prompts; anything bigger is not ours


class RunContext(Protocol):
    """What batch records use of a run (generation's RunContext is one): its id, its
    destination and the run's async S3 client."""

    run_id: str
    location: S3Location
    s3_client: Any


@dataclass
class BatchRecord:
    """One batch job as the destination remembers it."""

    key: str
    display_name: str
    name: str | None
    run_id: str
    jobs: list[Job]
    provider: str | None = None  # the provider that made the job (None: older records)
    saved_at: float = 0.0  # epoch seconds the record was last written (S3 LastModified)

    def body(self) -> bytes:
        return json.dumps({"display_name": self.display_name, "name": self.name,
                           "run_id": self.run_id, "provider": self.provider,
                           "jobs": [job.to_dict() for job in self.jobs]}).encode()


def _prefix(ctx: RunContext) -> str:
    return DestinationLayout(ctx.location).batches_prefix()


def new_record(ctx: RunContext, jobs: list[Job], provider: str) -> BatchRecord:
    """A record for a job about to be created, under a display name no other job has."""
    display_name = f"catalog-images-{ctx.run_id[:12]}-{secrets.token_hex(6)}"
    key = DestinationLayout(ctx.location).batch_record_key(display_name)
    return BatchRecord(key, display_name, None, ctx.run_id,
                       jobs, provider)


async def save(ctx: RunContext, record: BatchRecord) -> None:
    """Write the record (S3 PUT: durable once it returns)."""
    await ctx.s3_client.put_object(Bucket=ctx.location.bucket, Key=record.key,
                                   Body=record.body(), ContentType="application/json")


async def save_quietly(ctx: RunContext, record: BatchRecord) -> None:
    """Write the record with its job name; when S3 refuses, the intent written before the
    create call stays, and the next run finds the job by its display name."""
    try:
        await save(ctx, record)
    except (ClientError, BotoCoreError, OSError) as exc:
        log.warning("batch record %s not updated (%s): the next run finds the job by its "
                    "display name", record.display_name, describe_s3_error(exc))


async def forget(ctx: RunContext, record: BatchRecord) -> None:
    """Delete the record: every row of its job has an outcome, or the job never existed.

    When S3 refuses, the record stays and the next run reads the job's results again from
    the provider (no new request is billed), so the failure is logged, not raised.
    """
    try:
        await ctx.s3_client.delete_object(Bucket=ctx.location.bucket, Key=record.key)
    except (ClientError, BotoCoreError, OSError) as exc:
        log.warning("batch record %s not deleted (%s): the next run collects it again",
                    record.display_name or record.name, describe_s3_error(exc))


async def load_all(ctx: RunContext) -> list[BatchRecord]:
    """Every record left by earlier runs."""
    records: list[BatchRecord] = []
    paginator = ctx.s3_client.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=ctx.location.bucket, Prefix=_prefix(ctx)):
        for item in page.get("Contents", []):
            try:
                if item.get("Size", 0) > MAX_RECORD_BYTES:
                    raise StorageError(f"over {MAX_RECORD_BYTES} bytes")
                obj = await ctx.s3_client.get_object(Bucket=ctx.location.bucket,
                                                     Key=item["Key"])
                if obj.get("ContentLength", 0) > MAX_RECORD_BYTES:  # replaced since listed
                    raise StorageError(f"over {MAX_RECORD_BYTES} bytes")
                data = json.loads(await obj["Body"].read())
                records.append(BatchRecord(
                    item["Key"], str(data.get("display_name") or ""), data.get("name"),
                    str(data.get("run_id") or "?"), [Job.from_dict(job) for job in data["jobs"]],
                    data.get("provider"), item["LastModified"].timestamp()))
            except (ClientError, BotoCoreError, OSError, ValueError, KeyError, TypeError,
                    AttributeError, RecursionError, StorageError) as exc:
                log.warning("batch record %s unreadable, left in place (%s)", item["Key"],
                            describe_s3_error(exc) if isinstance(
                                exc, ClientError | BotoCoreError) else type(exc).__name__)
    return records
