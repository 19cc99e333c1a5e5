"""A local spool: every paid-for image is on disk before its upload starts.

If the upload fails or the process dies, the next run for the same destination finds
the image here (same sku, same fingerprint) and uploads it instead of paying again.
An entry is its metadata as a JSON line, then the image. While its upload runs it sits in
a slot, a file reused entry after entry (spool_slots.py: it survives the process at once, and
no file is created per image); an entry whose upload failed gets a file of its own, synced
(``make_durable``). Nothing else is synced: an image uploaded a moment later needs no trip
to the disk (fsync and a thread per image were a fifth of a run's CPU), and an entry torn by
a machine crash is refused by its sha256. Entries of older versions (an image file and a
metadata file) are still read.
The spool is private (folders 0700, files 0600: images may be unreleased products) and an
entry is used only when its image still has the sha256 written beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from catalog_images.destination.spool_slots import (
    FREE_MARK,
    SLOT_PREFIX,
    SlotPool,
    recover_slots,
)
from catalog_images.images import ImageCheckError, inspect_image

SPOOL_ENV = "CATALOG_IMAGES_SPOOL_DIR"
log = logging.getLogger(__name__)
META_FIELDS = {"mime_type": str, "width": int, "height": int, "provider": str, "model": str}
MAX_META_BYTES = 64 * 1024  # an entry's metadata line; a longer one is not ours
_PLAIN_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def default_spool_root() -> Path:
    """``$CATALOG_IMAGES_SPOOL_DIR`` or ``~/.cache/catalog-images/spool``."""
    return Path(os.environ.get(SPOOL_ENV) or Path.home() / ".cache/catalog-images/spool")


@dataclass(frozen=True, slots=True)
class SpooledImage:
    """An image waiting for upload and what produced it."""

    data: bytes
    meta: dict


class Spool:
    """Spool files for one destination (bucket + prefix)."""

    def __init__(self, root: Path, destination: str) -> None:
        digest = hashlib.sha256(destination.encode()).hexdigest()[:16]
        self.dir = root / digest
        root.mkdir(mode=0o700, parents=True, exist_ok=True)  # an existing root is left as is
        self.dir.mkdir(mode=0o700, exist_ok=True)
        if self.dir.stat().st_uid == os.getuid():
            self.dir.chmod(0o700)  # a folder made before spools were private
        recover_slots(self.dir, self._settled_path, MAX_META_BYTES)
        self._slots = SlotPool(self.dir)
        # The entries on disk now, by stem: a row whose image is not spooled (nearly every
        # row) costs no failed open. Entries of this destination come only from this
        # process (rows of other shards are theirs) and from earlier runs (the lease).
        self._on_disk = {name.rsplit(".", 1)[0] for name in os.listdir(self.dir)
                         if name.endswith((".entry", ".img"))}

    def _entry_path(self, sku: str, fingerprint: str) -> Path:
        """The entry's own file (metadata line, then the image)."""
        return self._path_of(_stem(sku, fingerprint))

    def _path_of(self, stem: str) -> Path:
        return self.dir / f"{stem}.entry"

    def _legacy_paths(self, sku: str, fingerprint: str) -> tuple[Path, Path]:
        """Image and metadata files of an entry spooled by an older version."""
        stem = _stem(sku, fingerprint)
        return self.dir / f"{stem}.img", self.dir / f"{stem}.json"

    def _settled_path(self, head: bytes) -> Path | None:
        """Where a slot left by a dead process goes: its entry's own file, or None (free)."""
        try:
            _, meta = _read_entry(head)
            return self._entry_path(meta["sku"], meta["fingerprint"])
        except (ValueError, RecursionError, TypeError, KeyError):
            return None

    def find(self, sku: str, fingerprint: str) -> SpooledImage | None:
        """The spooled image for this sku and fingerprint, if a complete one is there."""
        path = self._entry_path(sku, fingerprint)
        held = self._slots.read(path.stem)
        if held is None and path.stem not in self._on_disk:
            return None
        try:
            data, meta = _read_entry(held if held is not None else path.read_bytes())
        except FileNotFoundError:
            return self._find_legacy(sku, fingerprint)
        except (OSError, ValueError, RecursionError):
            return None
        return _checked(path.name, data, meta)

    def _find_legacy(self, sku: str, fingerprint: str) -> SpooledImage | None:
        image, meta_path = self._legacy_paths(sku, fingerprint)
        try:
            data, meta = image.read_bytes(), json.loads(meta_path.read_text())
        except (OSError, ValueError, RecursionError):
            return None
        return _checked(image.name, data, meta)

    def write(self, sku: str, fingerprint: str, data: bytes, meta: dict) -> None:
        """Write the entry into a slot (spool_slots.py): on disk at once, not yet synced.

        On an OSError (a full disk) the error is raised; an entry written earlier is kept.
        """
        meta = {**meta, "sku": sku, "fingerprint": fingerprint, "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest()}
        self._slots.put(_stem(sku, fingerprint), (json.dumps(meta).encode() + b"\n", data))

    def make_durable(self, sku: str, fingerprint: str) -> None:
        """Give an entry that stays (its upload failed) its own file, synced, so a machine
        crash keeps it too."""
        path = self._entry_path(sku, fingerprint)
        self._on_disk.add(path.stem)
        with contextlib.suppress(OSError):
            if not self._slots.keep(path.stem, path):
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename
            finally:
                os.close(dir_fd)

    def remove(self, sku: str, fingerprint: str) -> None:
        """Forget an image once it is safely uploaded."""
        stem = _stem(sku, fingerprint)
        if self._slots.release(stem) and stem not in self._on_disk:
            return  # no older entry file of it (one refused as torn, say) to remove
        self._on_disk.discard(stem)
        try:
            self._path_of(stem).unlink()
        except FileNotFoundError:
            for path in self._legacy_paths(sku, fingerprint):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Entries not uploaded get files of their own; free slots are removed."""
        self._on_disk.update(self._slots.close(self._path_of))


def waiting_images(root: Path) -> int:
    """Images waiting for upload in the spool folders under ``root``: entry files, older
    versions' metadata files and slots holding an image (a run's own, or a dead one's)."""
    count = 0
    for path in root.rglob("*"):
        if path.suffix in (".entry", ".json"):
            count += 1
        elif path.name.startswith(SLOT_PREFIX):
            with contextlib.suppress(OSError), open(path, "rb") as handle:
                count += handle.read(1) not in (b"", FREE_MARK)
    return count


def _read_entry(content: bytes) -> tuple[bytes, object]:
    """An entry's image and metadata; ValueError when it has no metadata line."""
    end = content.find(b"\n", 0, MAX_META_BYTES)
    if end < 1:
        raise ValueError("no metadata line")
    meta = json.loads(content[:end])
    size = meta.get("bytes") if isinstance(meta, dict) else None
    data = content[end + 1:] if not isinstance(size, int) else content[end + 1:end + 1 + size]
    return data, meta


def _checked(name: str, data: bytes, meta: object) -> SpooledImage | None:
    problem = _entry_problem(data, meta)
    if problem:
        log.warning("spool entry %s not used: %s", name, problem)
        return None
    return SpooledImage(data, meta)


def _entry_problem(data: bytes, meta: object) -> str | None:
    """Why a spool entry may not be uploaded (changed since spooled, malformed), or None."""
    if not isinstance(meta, dict):
        return "its metadata is not an object"
    wrong = [name for name, kind in META_FIELDS.items() if not isinstance(meta.get(name), kind)]
    if wrong:
        return f"its metadata lacks {', '.join(wrong)}"
    if "sha256" not in meta:  # spooled by an older version: an intact image of its type
        try:
            intact = inspect_image(data).mime_type == meta["mime_type"]
        except ImageCheckError:
            intact = False
        return None if intact else "the image is not intact"
    if meta["sha256"] != hashlib.sha256(data).hexdigest():
        return "the image is not the one spooled (its sha256 differs)"
    return None


def _stem(sku: str, fingerprint: str) -> str:
    return f"{_file_safe(sku)}.{fingerprint[:32]}"


def _file_safe(sku: str) -> str:
    """The sku itself when it is a short ASCII name (every sku older versions accepted, so
    their spool entries are found), else a hash: file names are at most 255 bytes and some
    file systems normalise or refuse non-ASCII names."""
    if _PLAIN_SKU.fullmatch(sku):
        return sku
    return "u-" + hashlib.sha256(sku.encode("utf-8")).hexdigest()[:40]
