"""Where everything lives under a destination ``s3://bucket/prefix``: the one place that
builds its object keys and URIs.

- ``images/{sku}.{ext}``: a row's image, ``ext`` by MIME type (png, jpg, webp);
- ``quarantine/{sku}.{ext}``: a paid image not of the asked shape (``wrong_shape=quarantine``);
- ``runs/{run_id}/...``: a run's report, manifest, ledger row (``summary.json``), pictures,
  and ``runs/{run_id}/shards/{nnn}/...``, the files a scaled-out run exchanges with a shard;
- ``state/lease.json``: the one-run-at-a-time lease;
- ``state/parts/{run_id}/{seq:06d}.parquet`` and ``state/snapshots/{run_id}.parquet|.json``:
  the index of current outputs;
- ``state/batches/``: Gemini batch job records.

Every other module asks a ``DestinationLayout`` rather than joining path segments itself
(tests/unit/destination/test_layout.py checks that).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

from catalog_images.destination.storage import S3Location
from catalog_images.images import EXTENSION_BY_MIME

IMAGES, RUNS, STATE, QUARANTINE = "images", "runs", "state", "quarantine"
MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
UNKNOWN_EXTENSION = "bin"
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(dict.fromkeys(EXTENSION_BY_MIME.values()))
SUMMARY_NAME = "summary.json"


@dataclass(frozen=True, slots=True)
class DestinationLayout:
    """The keys and URIs of one destination."""

    location: S3Location

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.location.prefix, *parts) if p)

    def _uri(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{key}"

    @property
    def root_uri(self) -> str:
        """``s3://bucket/prefix`` itself (no trailing slash)."""
        return self._uri(self.location.prefix).rstrip("/")

    # ---- images ---------------------------------------------------------------------------
    def image_key(self, sku: str, mime_type: str) -> str:
        """``images/{sku}.{ext}`` with the extension of ``mime_type`` (``bin`` if unknown)."""
        return self._key(IMAGES, f"{sku}.{EXTENSION_BY_MIME.get(mime_type, UNKNOWN_EXTENSION)}")

    def image_candidate_keys(self, sku: str, folder: str = IMAGES) -> frozenset[str]:
        """Every key an image of ``sku`` can have (one per known image type);
        ``folder=QUARANTINE``: its quarantined images."""
        return frozenset(self._key(folder, f"{sku}.{ext}") for ext in IMAGE_EXTENSIONS)

    def image_listing_prefix(self, sku: str) -> str:
        """A List prefix that finds every candidate key of ``sku`` (and of SKUs that extend
        it after a dot, such as ``abc.v2`` for ``abc``: filter with ``image_candidate_keys``)."""
        return self._key(IMAGES, f"{sku}.")

    async def existing_images(self, client, sku: str, folder: str = IMAGES) -> list[str]:
        """The image keys of ``sku`` in the bucket, any type, found with one List request
        (aiobotocore ``client``; more pages only when 1000+ SKUs extend ``sku`` after a dot);
        ``folder=QUARANTINE``: its quarantined images."""
        candidates = self.image_candidate_keys(sku, folder)
        return [key async for page in self._listed_pages(client, self._key(folder, f"{sku}."))
                for key in page if key in candidates]

    async def image_keys(self, client, max_keys: int) -> frozenset[str] | None:
        """Every key under images/ and quarantine/ (List pages of 1,000, aiobotocore
        ``client``), or None as soon as there are more than ``max_keys`` of them."""
        found: set[str] = set()
        for folder in (IMAGES, QUARANTINE):
            async for page in self._listed_pages(client, self._key(folder) + "/"):
                found.update(page)
                if len(found) > max_keys:
                    return None
        return frozenset(found)

    async def _listed_pages(self, client, prefix: str) -> AsyncIterator[list[str]]:
        """The keys under ``prefix``, one List page (up to 1,000 keys) at a time."""
        token = None
        while True:
            page = await client.list_objects_v2(
                Bucket=self.location.bucket, Prefix=prefix,
                **({"ContinuationToken": token} if token else {}))
            yield [o["Key"] for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def quarantine_key(self, sku: str, mime_type: str) -> str:
        """``quarantine/{sku}.{ext}``: where a paid image of the wrong shape is kept."""
        ext = EXTENSION_BY_MIME.get(mime_type, UNKNOWN_EXTENSION)
        return self._key(QUARANTINE, f"{sku}.{ext}")

    def is_quarantine_key(self, key: str) -> bool:
        """Whether ``key`` is a quarantined image."""
        return key.startswith(self._key(QUARANTINE) + "/")

    def quarantine_uri(self) -> str:
        """The quarantine folder as an ``s3://`` URI ending in a slash."""
        return self._uri(self._key(QUARANTINE)) + "/"

    def sku_key_room(self) -> int:
        """UTF-8 bytes a sku may take so every key built from it fits S3's 1024."""
        longest_folder = max((IMAGES, QUARANTINE), key=len)
        longest_ext = max((*IMAGE_EXTENSIONS, UNKNOWN_EXTENSION), key=len)
        overhead = len(self._key(longest_folder, f".{longest_ext}").encode("utf-8"))
        return MAX_KEY_BYTES - overhead

    def images_uri(self) -> str:
        """The images folder as an ``s3://`` URI ending in a slash."""
        return self._uri(self._key(IMAGES)) + "/"

    def images_prefix(self) -> str:
        """The List prefix of the images folder (ends in a slash)."""
        return self._key(IMAGES) + "/"

    def image_link_from_run_folder(self, image_key: str) -> str:
        """The relative URL (percent-encoded) of an image key from a file in ``runs/{run_id}/``."""
        base = self._key()
        relative = image_key[len(base) + 1:] if base else image_key
        return f"../../{quote(relative)}"

    # ---- runs -----------------------------------------------------------------------------
    def runs_prefix(self) -> str:
        """The List prefix of every run folder (the runs ledger)."""
        return self._key(RUNS) + "/"

    def is_ledger_row(self, key: str) -> bool:
        """Whether a key found under ``runs_prefix`` is a run's ledger row."""
        return key.endswith("/" + SUMMARY_NAME)

    def run_key(self, run_id: str, name: str = "") -> str:
        """A file of a run's folder (the folder itself without ``name``, no trailing slash)."""
        return self._key(RUNS, run_id, name)

    def run_prefix(self, run_id: str) -> str:
        """The List prefix of a run's folder (ends in a slash)."""
        return self.run_key(run_id) + "/"

    def run_uri(self, run_id: str, name: str = "") -> str:
        """``run_key`` as an ``s3://`` URI; the folder's ends in a slash."""
        return self._uri(self.run_key(run_id, name)) + ("" if name else "/")

    def shard_key(self, parent_run_id: str, index: int, name: str) -> str:
        """A file a scaled-out run exchanges with shard ``index``."""
        return self._key(RUNS, parent_run_id, "shards", f"{index:03d}", name)

    # ---- state ----------------------------------------------------------------------------
    def lease_key(self) -> str:
        """The destination's lease object."""
        return self._key(STATE, "lease.json")

    def lease_uri(self) -> str:
        """The lease object as an ``s3://`` URI."""
        return self._uri(self.lease_key())

    def batches_prefix(self) -> str:
        """The List prefix of batch job records (ends in a slash)."""
        return self._key(STATE, "batches") + "/"

    def batch_record_key(self, display_name: str) -> str:
        """The record of the batch job named ``display_name``."""
        return self.batches_prefix() + f"{display_name}.json"

    def index_parts_prefix(self) -> str:
        """The List prefix of every run's index parts files."""
        return self._key(STATE, "parts") + "/"

    def index_part_key(self, run_id: str, seq: int) -> str:
        """A run's ``seq``-th index parts file."""
        return self._key(STATE, "parts", run_id, f"{seq:06d}.parquet")

    @staticmethod
    def run_of_index_part(key: str) -> str:
        """The run id of an index parts key (``.../parts/{run_id}/{seq}.parquet``)."""
        return key.rsplit("/", 2)[-2]

    def snapshots_prefix(self) -> str:
        """The List prefix of index snapshots."""
        return self._key(STATE, "snapshots") + "/"

    def snapshot_key(self, run_id: str) -> str:
        """The Parquet of the index snapshot a run writes."""
        return self._key(STATE, "snapshots", f"{run_id}.parquet")

    @staticmethod
    def snapshot_runs_key(snapshot_key: str) -> str:
        """The JSON list of runs a snapshot includes, beside its Parquet."""
        return snapshot_key.removesuffix(".parquet") + ".json"

    @staticmethod
    def is_snapshot(key: str) -> bool:
        """Whether a key found under ``snapshots_prefix`` is a snapshot's Parquet."""
        return key.endswith(".parquet")
