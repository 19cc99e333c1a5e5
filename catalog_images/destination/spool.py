"""A local spool: every paid-for image is on disk before its upload starts.

If the upload fails or the process dies, the next run for the same destination finds
the image here (same sku, same fingerprint) and uploads it instead of paying again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

SPOOL_ENV = "CATALOG_IMAGES_SPOOL_DIR"
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
        self.dir.mkdir(parents=True, exist_ok=True)

    def _paths(self, sku: str, fingerprint: str) -> tuple[Path, Path]:
        stem = f"{_file_safe(sku)}.{fingerprint[:32]}"
        return self.dir / f"{stem}.img", self.dir / f"{stem}.json"

    def find(self, sku: str, fingerprint: str) -> SpooledImage | None:
        """The spooled image for this sku and fingerprint, if a complete one is there."""
        image, meta = self._paths(sku, fingerprint)
        try:
            return SpooledImage(image.read_bytes(), json.loads(meta.read_text()))
        except (OSError, ValueError):
            return None

    def write(self, sku: str, fingerprint: str, data: bytes, meta: dict) -> None:
        """Write image then metadata durably (fsync + atomic rename); meta marks it complete.

        On an OSError (a full disk) no temporary file is left behind and the error is raised;
        a complete entry written earlier is kept.
        """
        image, meta_path = self._paths(sku, fingerprint)
        try:
            _write_durably(image, data)
            _write_durably(meta_path, json.dumps(meta).encode())
        except OSError:
            for path in (image, meta_path):
                _tmp_path(path).unlink(missing_ok=True)
            raise

    def remove(self, sku: str, fingerprint: str) -> None:
        """Forget an image once it is safely uploaded."""
        for path in self._paths(sku, fingerprint):
            path.unlink(missing_ok=True)


def _file_safe(sku: str) -> str:
    """The sku itself when it is a short ASCII name (every sku older versions accepted, so
    their spool entries are found), else a hash: file names are at most 255 bytes and some
    file systems normalise or refuse non-ASCII names."""
    if _PLAIN_SKU.fullmatch(sku):
        return sku
    return "u-" + hashlib.sha256(sku.encode("utf-8")).hexdigest()[:40]


def _tmp_path(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".tmp")


def _write_durably(path: Path, data: bytes) -> None:
    tmp = _tmp_path(path)
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
