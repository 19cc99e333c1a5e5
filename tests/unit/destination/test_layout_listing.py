"""DestinationLayout.image_keys: both image folders listed page by page, under a cap."""

from __future__ import annotations

import asyncio

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import S3Location

LAYOUT = DestinationLayout(S3Location.parse("s3://bkt/pre"))


class PagedBucket:
    """list_objects_v2 over a fixed key set, ``page`` keys per answer; counts requests."""

    def __init__(self, keys: list[str], page: int = 2) -> None:
        self.keys, self.page, self.requests = sorted(keys), page, []

    async def list_objects_v2(self, Bucket: str, Prefix: str, ContinuationToken: str = "0"):  # noqa: N803
        self.requests.append(Prefix)
        under = [k for k in self.keys if k.startswith(Prefix)]
        start = int(ContinuationToken)
        chunk = under[start:start + self.page]
        more = start + self.page < len(under)
        return {"Contents": [{"Key": k} for k in chunk], "IsTruncated": more,
                **({"NextContinuationToken": str(start + self.page)} if more else {})}


def test_every_image_and_quarantined_key_is_listed_and_nothing_else():
    keys = ["pre/images/a.png", "pre/images/b.jpg", "pre/images/c.webp",
            "pre/quarantine/d.png", "pre/runs/r1/report.json", "pre/state/lease.json",
            "pre/imagesX/e.png"]
    bucket = PagedBucket(keys)
    listed = asyncio.run(LAYOUT.image_keys(bucket, max_keys=100))
    assert listed == {"pre/images/a.png", "pre/images/b.jpg", "pre/images/c.webp",
                      "pre/quarantine/d.png"}
    assert bucket.requests == ["pre/images/"] * 2 + ["pre/quarantine/"]


def test_more_keys_than_the_cap_gives_none_without_listing_on():
    bucket = PagedBucket([f"pre/images/{i:04d}.png" for i in range(50)], page=10)
    assert asyncio.run(LAYOUT.image_keys(bucket, max_keys=25)) is None
    assert len(bucket.requests) == 3  # stopped at the page that went over the cap
