"""Batch mode writes a job's requests one at a time: a big batch's reference images are never
all in memory, a row whose reference cannot be read fails alone before the job, and a job
never holds more than one input file takes (2 GB). A failed upload of the input created no
job: it is not looked up before being sent again."""

from __future__ import annotations

import asyncio
import os
import tracemalloc

import pytest

from catalog_images.generation import batch as batch_mode
from catalog_images.generation import batch_jobs
from catalog_images.models import ImageRequest, Job, ReferenceImage
from catalog_images.providers.config import get_provider
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini_batch import UploadFailed

MIB = 1024 * 1024
CONFIG = get_provider("google")


class _Budget:
    def __init__(self) -> None:
        self.released: list[float] = []

    def settle(self, reserved: float, billed: bool, cost: float | None = None) -> None:
        self.released.append(reserved)


class _Context:
    def __init__(self) -> None:
        self.budget = _Budget()
        self.results: list = []

    def finish(self, result):
        self.results.append(result)
        return result


def _jobs(count: int) -> list[Job]:
    return [Job(sku=f"SKU-{i}", prompt=f"a lamp {i}", resolution="1K", aspect_ratio="1:1",
                reference_image=f"ref-{i}.png", row=i + 1, fingerprint="f" * 64)
            for i in range(count)]


async def _build(ctx, job: Job) -> ImageRequest:
    if job.sku == "SKU-3":
        raise OSError("gone")
    reference = ReferenceImage("image/png", os.urandom(MIB))  # read fresh, as from disk
    return ImageRequest(job.prompt, job.resolution, job.aspect_ratio, (reference,))


def test_a_big_batch_is_written_one_request_at_a_time(monkeypatch):
    monkeypatch.setattr(batch_jobs, "build_request", _build)
    ctx = _Context()
    tracemalloc.start()
    try:
        written, batch, rest = asyncio.run(batch_jobs.write_requests(ctx, CONFIG, _jobs(50)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with batch:
        assert [job.sku for job in written] == [f"SKU-{i}" for i in range(50) if i != 3]
        assert batch.count == 49 and batch.size > 49 * MIB and rest == []
        assert [key for key in (line["key"] for line in batch.lines())] == [
            job.sku for job in written]
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB for {batch.size / MIB:.0f} MiB written"
    [failed] = ctx.results
    assert failed.sku == "SKU-3" and failed.error_class == "reference"
    assert ctx.budget.released == [CONFIG.batch_price("1K", None)]


def test_a_job_holds_no_more_than_one_input_file_takes(monkeypatch):
    """Rows past the limit are left for the next job; a row too big alone fails by itself."""
    monkeypatch.setattr(batch_jobs, "build_request", _build)
    monkeypatch.setattr(batch_jobs, "FILE_LIMIT_BYTES", 4 * MIB)  # 2 GB, scaled down
    ctx = _Context()
    jobs = _jobs(8)  # a 1 MiB reference each: 1.4 MB of base64 in its line
    written, batch, rest = asyncio.run(batch_jobs.write_requests(ctx, CONFIG, jobs))
    with batch:
        assert [job.sku for job in written] == ["SKU-0", "SKU-1"] and batch.size <= 4 * MIB
    assert rest == jobs[2:] and ctx.results == []
    monkeypatch.setattr(batch_jobs, "FILE_LIMIT_BYTES", MIB)  # not even one request fits
    written, batch, rest = asyncio.run(batch_jobs.write_requests(ctx, CONFIG, jobs[:2]))
    batch.close()
    assert written == [] and rest == []
    assert [(r.sku, r.error_class) for r in ctx.results] == [
        ("SKU-0", "bad_request"), ("SKU-1", "bad_request")]
    assert "over the 2 GB" in ctx.results[0].reason
    assert ctx.budget.released == [CONFIG.batch_price("1K", None)] * 2


def test_jobs_over_one_file_go_as_several_batch_jobs(monkeypatch):
    monkeypatch.setattr(batch_jobs, "build_request", _build)
    monkeypatch.setattr(batch_jobs, "FILE_LIMIT_BYTES", 4 * MIB)
    sent: list[list[str]] = []

    async def submit(ctx, client, config, jobs, deadline_s, poll_s):
        written, batch, rest = await batch_jobs.write_requests(ctx, config, jobs)
        batch.close()
        sent.append([job.sku for job in written])
        return None, rest

    monkeypatch.setattr(batch_mode, "_submit", submit)
    jobs = [job for job in _jobs(8) if job.sku != "SKU-3"]
    asyncio.run(batch_mode._submit_all(_Context(), None, CONFIG, jobs, 60.0, 1.0))
    assert sent == [["SKU-0", "SKU-1"], ["SKU-2", "SKU-4"], ["SKU-5", "SKU-6"], ["SKU-7"]]


class _Client:
    """A batch client whose create fails with the given errors first; find is counted."""

    def __init__(self, *errors) -> None:
        self.errors, self.creates, self.finds = list(errors), 0, 0

    async def create(self, batch, display_name: str) -> str:
        self.creates += 1
        if self.errors:
            raise self.errors.pop(0)
        return "batches/made"

    async def find(self, display_name: str):
        self.finds += 1
        return None


def _upload_failed(error_class: ErrorClass, status: int | None) -> UploadFailed:
    return UploadFailed(ProviderError(error_class, "upload broke", status=status))


def test_a_failed_upload_is_sent_again_without_looking_for_a_job(monkeypatch):
    monkeypatch.setattr(batch_mode.asyncio, "sleep", _no_sleep)
    client = _Client(_upload_failed(ErrorClass.UNAVAILABLE, 503))
    assert asyncio.run(batch_mode._create(client, None, "job")) == "batches/made"
    assert client.creates == 2 and client.finds == 0


def test_a_refused_upload_created_no_job_and_is_not_retried(monkeypatch):
    monkeypatch.setattr(batch_mode.asyncio, "sleep", _no_sleep)
    client = _Client(_upload_failed(ErrorClass.REFUSED, None))
    with pytest.raises(batch_mode.NotCreated):
        asyncio.run(batch_mode._create(client, None, "job"))
    assert client.creates == 1 and client.finds == 0


async def _no_sleep(seconds: float) -> None:
    return None
