"""A catalog read from S3 (real SeaweedFS) is streamed to the scratch folder under the
worker's byte cap; a larger one stops the run before any request, naming its size."""

from __future__ import annotations

import gzip

from conftest import run_refresh, write_catalog

from catalog_images.catalog.fetch import MAX_CATALOG_BYTES_ENV
from catalog_images.catalog.read import iter_rows, open_catalog
from catalog_images.destination.storage import S3Settings


def _upload(s3_env, key: str, data: bytes) -> str:
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=key, Body=data)
    return f"s3://{s3_env.bucket}/{key}"


def test_a_catalog_over_the_cap_stops_the_run_before_any_request(
        s3_env, emulator, dest, tmp_path, monkeypatch, prefect_api):
    data = write_catalog(tmp_path / "c.csv", 200).read_bytes()
    uri = _upload(s3_env, f"catalogs/{tmp_path.name}/big.csv", data)
    monkeypatch.setenv(MAX_CATALOG_BYTES_ENV, "4KiB")
    state, _ = run_refresh(catalog=uri, dest=dest)
    assert state.is_failed(), state.message
    assert f"catalog {uri} is {len(data) / 1024:.1f} KiB ({len(data)} bytes)" in state.message
    assert "limit of 4.0 KiB (4096 bytes)" in state.message
    assert MAX_CATALOG_BYTES_ENV in state.message
    assert emulator.stats()["requests"] == 0


def test_a_catalog_under_the_cap_is_streamed_and_read_whole(s3_env, tmp_path):
    data = write_catalog(tmp_path / "c.csv", 30_000).read_bytes()  # > 1 MiB: several pieces
    uri = _upload(s3_env, f"catalogs/{tmp_path.name}/c.csv", data)
    work = tmp_path / "work"
    work.mkdir()
    catalog = open_catalog(uri, S3Settings.from_environment(), work, max_bytes=len(data))
    assert catalog.local_path.read_bytes() == data
    assert sum(len(batch) for batch in iter_rows(catalog)) == 30_000


def test_a_gzipped_catalog_on_s3_is_inflated_when_read(s3_env, tmp_path):
    data = gzip.compress(write_catalog(tmp_path / "c.csv", 5).read_bytes())
    uri = _upload(s3_env, f"catalogs/{tmp_path.name}/c.csv.gz", data)
    catalog = open_catalog(uri, S3Settings.from_environment(), tmp_path)
    assert [row["sku"] for batch in iter_rows(catalog) for row in batch] == [
        f"SKU-{i:05d}" for i in range(5)]
