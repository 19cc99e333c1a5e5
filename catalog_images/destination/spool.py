"""A local spool: every paid-for image is on disk before its upload starts.

If the upload fails or the process dies, the next run for the same destination finds
the image here (same sku, same fingerprint) and uploads it instead of paying again.
An entry is written whole and renamed into place (it survives the process at once); it is
fsync'ed only when its upload has failed (``make_durable``): an image uploaded a moment
later needs no trip to the disk (fsync and a thread per image were a fifth of a run's CPU),
and an entry torn by a machine crash is refused by its sha256.
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

from catalog_images.images import ImageCheckError, inspect_image

SPOOL_ENV = "CATALOG_IMAGES_SPOOL_DIR"
log = logging.getLogger(__name__)
META_FIELDS = {"mime_type": str, "width": int, "height": int, "provider": str, "model": str}
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

    def _paths(self, sku: str, fingerprint: str) -> tuple[Path, Path]:
        stem = f"{_file_safe(sku)}.{fingerprint[:32]}"
        return self.dir / f"{stem}.img", self.dir / f"{stem}.json"

    def find(self, sku: str, fingerprint: str) -> SpooledImage | None:
        """The spooled image for this sku and fingerprint, if a complete one is there."""
        image, meta_path = self._paths(sku, fingerprint)
        try:
            data, meta = image.read_bytes(), json.loads(meta_path.read_text())
        except (OSError, ValueError, RecursionError):
            return None
        problem = _entry_problem(data, meta)
        if problem:
            log.warning("spool entry %s not used: %s", image.name, problem)
            return None
        return SpooledImage(data, meta)

    def write(self, sku: str, fingerprint: str, data: bytes, meta: dict) -> None:
        """Write image then metadata, each whole then renamed; meta marks it complete.

        On an OSError (a full disk) no temporary file is left behind and the error is raised;
        a complete entry written earlier is kept.
        """
        image, meta_path = self._paths(sku, fingerprint)
        meta = {**meta, "sha256": hashlib.sha256(data).hexdigest()}
        try:
            _write_whole(image, data)
            _write_whole(meta_path, json.dumps(meta).encode())
        except OSError:
            for path in (image, meta_path):
                _tmp_path(path).unlink(missing_ok=True)
            raise

    def make_durable(self, sku: str, fingerprint: str) -> None:
        """fsync an entry that stays (its upload failed), so a machine crash keeps it too."""
        for path in self._paths(sku, fingerprint):
            with contextlib.suppress(OSError), open(path, "rb") as handle:
                os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the renames
            finally:
                os.close(dir_fd)

    def remove(self, sku: str, fingerprint: str) -> None:
        """Forget an image once it is safely uploaded."""
        for path in self._paths(sku, fingerprint):
            path.unlink(missing_ok=True)


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
def _file_safe(sku: str) -> str:
    """The sku itself when it is a short ASCII name (every sku older versions accepted, so
    their spool entries are found), else a hash: file names are at most 255 bytes and some
    file systems normalise or refuse non-ASCII names."""
    if _PLAIN_SKU.fullmatch(sku):
        return sku
    return "u-" + hashlib.sha256(sku.encode("utf-8")).hexdigest()[:40]


def _tmp_path(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".tmp")


def _write_whole(path: Path, data: bytes) -> None:
    """``data`` into a new private temporary file, renamed over ``path`` once whole."""
    tmp = _tmp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # a leftover of a dead process: it may carry other permissions
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
