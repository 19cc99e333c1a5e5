"""A shard's stats and thumbnails read back from the bucket: bad ones are skipped, not fatal."""

from __future__ import annotations

import io
import json

from catalog_images.destination.storage import S3Location
from catalog_images.generation.run import Generated
from catalog_images.scale import shards
from catalog_images.scale.shards import ShardSpec, _merge_extras, thumbnails_bytes

LOCATION = S3Location("bucket", "prefix")
SPEC = ShardSpec(parent_run_id="p", index=0, count=2, rows=1, jobs_key="k", settings={})


class _Bucket:
    """A stand-in for a boto3 client's get_object over a dict of bodies by file name."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803 - boto3's names
        return {"Body": io.BytesIO(self.files[Key.rsplit("/", 1)[-1]])}


def test_good_shard_files_are_merged():
    merged = Generated()
    _merge_extras(_Bucket({"stats.json": json.dumps({"emu": {"requests": 3}}).encode(),
                           "thumbnails.parquet": thumbnails_bytes([])}), LOCATION, SPEC, merged)
    assert merged.stats["emu"].requests == 3


def test_malformed_or_oversized_shard_files_are_skipped(monkeypatch, caplog):
    monkeypatch.setattr(shards, "MAX_SHARD_FILE_BYTES", 1000)
    for files in ({"stats.json": b"[" * 100_000, "thumbnails.parquet": b"not parquet"},
                  {"stats.json": json.dumps({"emu": {"no_such_field": 1}}).encode(),
                   "thumbnails.parquet": b"x" * 2000},
                  {"stats.json": b"[]"}):
        merged = Generated()
        _merge_extras(_Bucket(files), LOCATION, SPEC, merged)
        assert merged.stats == {} and merged.thumbnails == []
    assert "stats.json skipped" in caplog.text and "thumbnails.parquet skipped" in caplog.text
