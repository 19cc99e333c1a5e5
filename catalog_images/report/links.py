"""Browsable links of a run's files: presigned S3 URLs for the summary and the contact sheet.

A presigned URL lets whoever holds it read that one object (or, for a folder, list the keys
under that prefix) until it expires, without any other credential. It carries the access key
id, a signature and the expiry, and with temporary credentials the session token; never the
secret access key. Expiry is the run setting ``link_expiry_s`` (S3 allows at most 7 days; a
link made from temporary credentials also ends when they do). Presigning is a local
computation: no request is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import S3Location, S3Settings, boto3_session

LISTING_MAX_KEYS = 1000  # what one ListObjectsV2 page returns at most


@dataclass(frozen=True)
class Presigner:
    """Presigned GET URLs of one destination's objects, or None when the store cannot sign."""

    location: S3Location
    expiry_s: int
    client: Any = None  # a boto3 S3 client; None: no credentials to sign with
    expires_at: str = ""  # ISO UTC time the links end

    def url(self, key: str) -> str | None:
        """A presigned URL that reads object ``key``."""
        return self._sign("get_object", {"Bucket": self.location.bucket, "Key": key})

    def listing_url(self, prefix: str) -> str | None:
        """A presigned URL that lists (as S3's XML) the first 1000 keys under ``prefix``."""
        return self._sign("list_objects_v2", {"Bucket": self.location.bucket, "Prefix": prefix,
                                              "MaxKeys": LISTING_MAX_KEYS})

    def _sign(self, operation: str, params: dict) -> str | None:
        if self.client is None:
            return None
        try:
            return self.client.generate_presigned_url(operation, Params=params,
                                                      ExpiresIn=self.expiry_s)
        except (BotoCoreError, ClientError):  # e.g. no credentials found: no link, no failure
            return None


def presigner(s3: S3Settings, location: S3Location, expiry_s: int) -> Presigner:
    """A Presigner signing with the run's S3 credentials (SigV4, the run's addressing)."""
    config = Config(signature_version="s3v4", s3={"addressing_style": s3.addressing_style})
    session, client = boto3_session(), None  # the shared service model: no second parse
    try:
        if s3.access_key_id or session.get_credentials() is not None:  # else: anonymous
            client = session.client("s3", config=config, **s3.client_kwargs())
    except (BotoCoreError, ClientError, ValueError):
        client = None
    expires = datetime.now(UTC) + timedelta(seconds=expiry_s)
    return Presigner(location, expiry_s, client, expires.isoformat(timespec="seconds"))


def summary_links(presign: Presigner, run_id: str) -> dict[str, str]:
    """The summary's links of a run whose pictures were uploaded: report, contact sheet page
    and image, the images folder's listing and the run folder's; empty when none can be made.
    """
    layout = DestinationLayout(presign.location)
    urls = {
        "report": presign.url(layout.run_key(run_id, "report.json")),
        "contact_sheet": presign.url(layout.run_key(run_id, "contact-sheet.html")),
        "contact_sheet_png": presign.url(layout.run_key(run_id, "contact-sheet.png")),
        "history_chart": presign.url(layout.run_key(run_id, "history.png")),
        "images": presign.listing_url(layout.images_prefix()),
        "run_folder": presign.listing_url(layout.run_prefix(run_id)),
    }
    if not all(urls.values()):
        return {}
    return {**urls, "expires_at": presign.expires_at}  # type: ignore[dict-item]


def links_markdown(links: dict[str, str]) -> list[str]:
    """Markdown lines of the links, the embedded contact sheet and what the links grant."""
    if not links:
        return []
    return [
        "## Links", "",
        f"- [Report (JSON)]({links['report']})",
        f"- [Contact sheet (page)]({links['contact_sheet']})",
        f"- [Images folder (S3 listing, first {LISTING_MAX_KEYS} keys)]({links['images']})",
        f"- [History chart]({links['history_chart']})",
        "",
        f"Presigned links: each reads one object (the folder's lists its keys) without other "
        f"credentials until {links['expires_at']} (`link_expiry_s`); share them accordingly.",
        "", f"![contact sheet]({links['contact_sheet_png']})", "",
    ]
