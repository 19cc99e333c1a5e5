"""A catalog on S3 is streamed to the scratch folder under the worker's byte cap."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from catalog_images.catalog import fetch
from catalog_images.catalog.fetch import (
    DEFAULT_MAX_CATALOG_BYTES,
    MAX_CATALOG_BYTES_ENV,
    CatalogFetchError,
    fetch_catalog,
    max_catalog_bytes,
)
from catalog_images.catalog.read import CatalogError, iter_rows, open_catalog
from catalog_images.destination.storage import S3Settings

URI = "s3://shop/catalogs/c.csv"


class _Body:
    """A streamed body that can only be read piece by piece (``read()`` whole fails)."""

    def __init__(self, data: bytes, piece: int = 10) -> None:
        self.data, self.piece, self.chunk_sizes, self.closed = data, piece, [], False

    def iter_chunks(self, chunk_size: int):
        self.chunk_sizes.append(chunk_size)
        for start in range(0, len(self.data), self.piece):
            yield self.data[start:start + self.piece]

    def read(self, *args):
        raise AssertionError("the body was read whole")

    def close(self) -> None:
        self.closed = True


class _Client:
    def __init__(self, data: bytes, head_size: int | None = None, error: str | None = None):
        self.body = _Body(data)
        self.head_size = len(data) if head_size is None else head_size
        self.error, self.calls = error, []

    def head_object(self, **kwargs):
        self.calls.append(("head", kwargs))
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "HeadObject")
        return {"ContentLength": self.head_size, "ETag": '"abc"'}

    def get_object(self, **kwargs):
        self.calls.append(("get", kwargs))
        return {"Body": self.body}


@pytest.fixture
def client(monkeypatch):
    holder: dict = {}

    def install(data: bytes, **kwargs) -> _Client:
        holder["client"] = _Client(data, **kwargs)
        monkeypatch.setattr(S3Settings, "boto3_client", lambda self: holder["client"])
        return holder["client"]

    return install


def test_a_catalog_is_streamed_to_disk_in_pieces_of_the_same_object(client, tmp_path):
    fake = client(b"sku,prompt\nA,a\nB,b\n")
    size = fetch_catalog(S3Settings(), URI, tmp_path / "c.csv", limit=1000)
    assert size == 19 and (tmp_path / "c.csv").read_bytes() == b"sku,prompt\nA,a\nB,b\n"
    assert fake.body.chunk_sizes == [fetch.CHUNK_BYTES] and fake.body.closed
    assert fake.calls[1] == ("get", {"Bucket": "shop", "Key": "catalogs/c.csv",
                                     "IfMatch": '"abc"'})


def test_a_catalog_over_the_cap_is_refused_from_its_size_before_it_is_read(client, tmp_path):
    fake = client(b"", head_size=5 * 1024**3)
    with pytest.raises(CatalogFetchError) as caught:
        fetch_catalog(S3Settings(), URI, tmp_path / "c.csv", limit=4 * 1024**3)
    message = str(caught.value)
    assert URI in message and "5.0 GiB (5368709120 bytes)" in message
    assert "4.0 GiB (4294967296 bytes)" in message and MAX_CATALOG_BYTES_ENV in message
    assert [call for call, _ in fake.calls] == ["head"]
    assert not (tmp_path / "c.csv").exists()


def test_a_body_longer_than_its_head_said_is_cut_off_at_the_cap(client, tmp_path):
    client(b"x" * 100, head_size=10)
    with pytest.raises(CatalogFetchError, match=r"is over 60 bytes .* limit of 50 bytes"):
        fetch_catalog(S3Settings(), URI, tmp_path / "c.csv", limit=50)
    assert not (tmp_path / "c.csv").exists()


def test_an_unreadable_catalog_says_so_and_leaves_no_file(client, tmp_path):
    client(b"", error="NoSuchKey")
    with pytest.raises(CatalogFetchError, match=f"catalog {URI}: cannot read: NoSuchKey"):
        fetch_catalog(S3Settings(), URI, tmp_path / "c.csv", limit=50)
    assert not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize(("raw", "expected"), [
    ("", DEFAULT_MAX_CATALOG_BYTES), ("123", 123), ("4GiB", 4 * 1024**3), ("1.5 m", 1572864),
    (" 2 KiB ", 2048),
])
def test_the_cap_is_the_workers_setting(raw, expected):
    assert max_catalog_bytes({MAX_CATALOG_BYTES_ENV: raw}) == expected


@pytest.mark.parametrize("raw", ["lots", "-5", "0", "12 parsecs"])
def test_a_bad_cap_names_the_variable_and_how_to_write_it(raw):
    with pytest.raises(CatalogFetchError, match=f"{MAX_CATALOG_BYTES_ENV}=.*4GiB"):
        max_catalog_bytes({MAX_CATALOG_BYTES_ENV: raw})


def test_open_catalog_stops_the_plan_with_a_catalog_error(client, tmp_path, monkeypatch):
    client(b"sku,prompt\nA,a\n")
    monkeypatch.setenv(MAX_CATALOG_BYTES_ENV, "10")
    with pytest.raises(CatalogError, match="over the limit of 10 bytes"):
        open_catalog(URI, S3Settings(), tmp_path)
    monkeypatch.setenv(MAX_CATALOG_BYTES_ENV, "1KiB")
    catalog = open_catalog(URI, S3Settings(), tmp_path)
    assert [row["sku"] for batch in iter_rows(catalog) for row in batch] == ["A"]


def test_a_gzipped_catalog_from_s3_keeps_its_suffix_and_is_inflated(client, tmp_path):
    import gzip

    client(gzip.compress(b"sku,prompt\nA,a\n"))
    catalog = open_catalog(URI + ".gz", S3Settings(), tmp_path)
    assert catalog.local_path.name == "catalog.csv.gz"
    assert [row["sku"] for batch in iter_rows(catalog) for row in batch] == ["A"]
