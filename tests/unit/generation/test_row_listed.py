"""The check before paying, answered from the keys the run listed as it began."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import S3Location
from catalog_images.generation.row import _already_uploaded

LOCATION = S3Location.parse("s3://bkt/pre")
LAYOUT = DestinationLayout(LOCATION)


class HeadOnly:
    """An S3 client that answers HEAD from a dict of metadata and refuses to List."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self.metadata, self.heads = metadata, []

    async def head_object(self, Bucket: str, Key: str):  # noqa: N803
        self.heads.append(Key)
        return {"Metadata": {"fingerprint": self.metadata[Key]}}

    async def list_objects_v2(self, **_):
        raise AssertionError("a listed run sends no List per row")


def check(client: HeadOnly, listed: frozenset[str], sku: str, fp: str) -> str | None:
    ctx = SimpleNamespace(location=LOCATION, s3_client=client)
    return asyncio.run(_already_uploaded(ctx, sku, fp, listed))


def test_a_new_row_costs_no_request():
    client = HeadOnly({})
    listed = frozenset({LAYOUT.image_key("other", "image/png")})
    assert check(client, listed, "new", "fp") is None
    assert client.heads == []


def test_a_listed_image_or_quarantined_image_is_headed_for_its_fingerprint():
    jpg, quarantined = LAYOUT.image_key("a", "image/jpeg"), LAYOUT.quarantine_key("q", "image/png")
    longer = LAYOUT.image_key("a.v2", "image/png")  # another sku that extends "a"
    client = HeadOnly({jpg: "fp-a", quarantined: "fp-q", longer: "fp-a"})
    listed = frozenset({jpg, quarantined, longer})
    assert check(client, listed, "a", "fp-a") == jpg
    assert check(client, listed, "a", "fp-changed") is None
    assert check(client, listed, "q", "fp-q") == quarantined
    assert longer not in client.heads
