"""Download a catalog named by an ``s3://`` URI to the run's scratch folder, under a byte cap.

The object's size is checked (HEAD) before a byte is read, then its body is streamed to disk
in pieces of CHUNK_BYTES, counted, and cut off past the cap (an object replaced between the
HEAD and the GET is refused by ``If-Match``; one that grows anyway is refused by the count).
The cap protects the worker's disk, so it is the worker's setting
(``CATALOG_IMAGES_MAX_CATALOG_BYTES``), not a run parameter a deployment user could raise.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.destination.storage import S3Location, S3Settings, describe_s3_error

MAX_CATALOG_BYTES_ENV = "CATALOG_IMAGES_MAX_CATALOG_BYTES"
DEFAULT_MAX_CATALOG_BYTES = 4 * 1024**3
CHUNK_BYTES = 1024 * 1024
_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gib": 1024**3, "t": 1024**4, "tib": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


class CatalogFetchError(ValueError):
    """The catalog cannot be downloaded, or is over the cap: the message says which."""


def size_text(count: int) -> str:
    """``count`` bytes as a short human size (``1.5 GiB``)."""
    value, unit = float(count), "bytes"
    for name in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, name
    return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def max_catalog_bytes(env: Mapping[str, str] | None = None) -> int:
    """The worker's cap on a catalog read from S3 (bytes; ``4GiB``-style sizes accepted)."""
    raw = (os.environ if env is None else env).get(MAX_CATALOG_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_CATALOG_BYTES
    match = _SIZE.fullmatch(raw)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None or float(match.group(1)) * unit < 1:
        raise CatalogFetchError(
            f"{MAX_CATALOG_BYTES_ENV}={raw[:40]!r} is not a size; set it to a number of bytes "
            "such as 4294967296 or 4GiB, or unset it for the default of "
            f"{size_text(DEFAULT_MAX_CATALOG_BYTES)}")
    return int(float(match.group(1)) * unit)


def _too_big(uri: str, size: int, limit: int, *, at_least: bool = False) -> CatalogFetchError:
    over = "over " if at_least else ""
    return CatalogFetchError(
        f"catalog {uri} is {over}{size_text(size)} ({size} bytes), over the limit of "
        f"{size_text(limit)} ({limit} bytes) for a catalog read from S3; split it into smaller "
        f"catalogs, or have the worker's operator raise {MAX_CATALOG_BYTES_ENV}")


def _stream_to(body, path: Path, limit: int, uri: str) -> int:
    """Write ``body`` to ``path`` piece by piece; the bytes written. Cut off past ``limit``."""
    written = 0
    with open(path, "wb") as out:
        for chunk in body.iter_chunks(CHUNK_BYTES):
            written += len(chunk)
            if written > limit:
                raise _too_big(uri, written, limit, at_least=True)
            out.write(chunk)
    return written


def fetch_catalog(settings: S3Settings, uri: str, path: Path, limit: int) -> int:
    """Download ``uri`` to ``path`` (streamed, at most ``limit`` bytes); its size in bytes.

    CatalogFetchError naming the catalog, its size and the limit when it is larger, or the
    S3 error when it cannot be read; no partial file is left behind.
    """
    location = S3Location.parse(uri)
    client = settings.boto3_client()
    try:
        head = client.head_object(Bucket=location.bucket, Key=location.prefix)
        size = int(head.get("ContentLength") or 0)
        if size > limit:
            raise _too_big(uri, size, limit)
        same = {"IfMatch": head["ETag"]} if head.get("ETag") else {}
        answer = client.get_object(Bucket=location.bucket, Key=location.prefix, **same)
        try:
            return _stream_to(answer["Body"], path, limit, uri)
        finally:
            answer["Body"].close()
    except (ClientError, BotoCoreError) as exc:
        path.unlink(missing_ok=True)
        raise CatalogFetchError(f"catalog {uri}: cannot read: {describe_s3_error(exc)}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
