"""A shard's manifest rows that match no row given to the shard (a corrupt or altered
manifest) are left out and logged: they never change the totals, the cost or another row."""

from __future__ import annotations

import logging
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from catalog_images.catalog.plan import JOB_SCHEMA
from catalog_images.destination.storage import S3Location
from catalog_images.generation.run import Generated
from catalog_images.models import Job
from catalog_images.report.results import ResultSink, RowResult, iter_result_rows
from catalog_images.scale import shards
from catalog_images.scale.manifest_rows import ShardRows
from catalog_images.scale.shards import ShardSpec, merge_shard

LOCATION = S3Location("bucket", "prefix")
SPEC = ShardSpec(parent_run_id="p", index=1, count=2, rows=3, jobs_key="k", settings={})
JOBS = [Job(sku=sku, prompt=f"a {sku}", resolution="1K", aspect_ratio="1:1", row=row,
            fingerprint="f" * 64) for row, sku in ((1, "A"), (2, "B"), (3, "C"))]


def _ok(job: Job, cost: float) -> RowResult:
    return RowResult.succeeded(job, s3_key=f"p/images/{job.sku}.png", size=10, width=8,
                               height=8, provider="emu", model="m", cost_usd=cost)


def _other(sku: str, row: int) -> Job:
    return Job(sku=sku, prompt="x", resolution="1K", aspect_ratio="1:1", row=row)


class _Bucket:
    """A boto3 client's download_file of the shard's manifest; no stats or thumbnails."""

    def __init__(self, manifest) -> None:
        self.manifest = manifest

    def download_file(self, bucket, key, path) -> None:
        assert key.endswith("/manifest.parquet")
        shutil.copy(self.manifest, path)

    def get_object(self, **kwargs):
        raise OSError("no such file")


class _S3:
    def __init__(self, client) -> None:
        self.client = client

    def boto3_client(self):
        return self.client


def _write(path, results: list[RowResult]):
    sink = ResultSink(path)
    for result in results:
        sink.add(result)
    sink.close()
    return path


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.text += record.getMessage() + "\n"


def test_unmatched_manifest_rows_change_no_total_cost_or_other_row(tmp_path, monkeypatch):
    jobs = tmp_path / "jobs.parquet"
    pq.write_table(pa.Table.from_pylist([j.to_dict() for j in JOBS], schema=JOB_SCHEMA), jobs)
    manifest = _write(tmp_path / "shard-manifest.parquet", [
        _ok(JOBS[0], 0.10),
        _ok(_other("Z", 99), 5.0),  # not a row of this shard
        _ok(_other("X", 3), 7.0),  # row 3 is C in the plan
        RowResult.failed(JOBS[0], "auth", "again", cost_usd=9.0),  # A a second time
        _ok(JOBS[1], -1.0),  # not a cost: B has no usable answer
    ])
    (tmp_path / "work").mkdir()
    sink = ResultSink(tmp_path / "parent.parquet")
    logger, lines = logging.getLogger("test-manifest-rows"), _Lines()
    logger.addHandler(lines)
    monkeypatch.setattr(shards, "_run_log", lambda: logger)  # the flow run's logger
    merged = Generated()
    taken = merge_shard(LOCATION, _S3(_Bucket(manifest)), SPEC, jobs, tmp_path / "work",
                        sink, merged)
    sink.close()
    assert taken == 1
    rows = {r["sku"]: r for r in iter_result_rows(tmp_path / "parent.parquet")}
    assert sorted(rows) == ["A", "B", "C"]
    assert rows["A"]["status"] == "succeeded" and rows["A"]["cost_usd"] == 0.10
    assert rows["B"]["error_class"] == "internal" and rows["C"]["error_class"] == "internal"
    totals = sink.totals.summary(1.0)
    assert totals["cost_usd"] == 0.10 and totals["succeeded"] == 1 and totals["failed"] == 2
    assert "shard 1: 4 manifest row(s) match no row given to the shard" in lines.text
    assert "row 99 (sku Z) is not one of the shard's rows" in lines.text
    assert "row 3 is sku C in the plan, the manifest says X" in lines.text
    assert "row 1 (sku A) is given again" in lines.text
    (warning,) = merged.warnings  # for the report's warnings
    assert warning in lines.text


def test_rows_are_taken_only_when_well_formed():
    rows = ShardRows({1: "A", 2: "B"})
    good = _ok(JOBS[0], 0.1).to_dict()
    for bad in ({**good, "row": True}, {**good, "row": "1"}, {**good, "status": "rejected"},
                {**good, "cost_usd": float("nan")}, {**good, "list_cost_usd": float("inf")},
                {**good, "sku": "A\x00" + "x" * 500}, {**good, "extra": 1}):
        assert rows.take(bad) is None
    assert rows.unmatched == 7 and rows.seen == set() and len(rows.examples) == 3
    assert rows.take(good) is not None and rows.seen == {1}
    assert "\x00" not in (rows.warning(0) or "")
    assert ShardRows({}).warning(0) is None
