"""Where a catalog's ``reference_image`` may point: its own folder, or what the operator allows.

A reference image is read by the worker and sent to a third-party provider, so a catalog
author must not be able to name any file the worker can read. Local references must lie in
the catalog's folder (symlinks and ``..`` resolved) or in a folder of
``CATALOG_IMAGES_REFERENCE_ROOTS``; ``s3://`` references in the catalog's own S3 folder, the
destination's bucket or a bucket of ``CATALOG_IMAGES_REFERENCE_BUCKETS``. The rejection is
the same whether a file outside exists or not.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REFERENCE_ROOTS_ENV = "CATALOG_IMAGES_REFERENCE_ROOTS"  # os.pathsep-separated folders
REFERENCE_BUCKETS_ENV = "CATALOG_IMAGES_REFERENCE_BUCKETS"  # comma-separated bucket names
OUTSIDE = ("not a file this run may read (reference images must be in the catalog's "
           f"folder, a folder of {REFERENCE_ROOTS_ENV}, the destination's bucket or a bucket "
           f"of {REFERENCE_BUCKETS_ENV})")


def catalog_base(catalog_uri: str) -> str:
    """The folder relative reference_image values point into: a local folder or s3:// prefix."""
    if catalog_uri.startswith("s3://"):
        return catalog_uri.rsplit("/", 1)[0]
    return str(Path(catalog_uri).expanduser().resolve().parent)


def _split_s3(uri: str) -> tuple[str, list[str]] | None:
    """(bucket, key segments) of an s3:// URI; None when a segment is empty, '.' or '..'."""
    bucket, _, key = uri[5:].partition("/")
    segments = key.split("/") if key else []
    if not bucket or any(part in ("", ".", "..") for part in segments):
        return None
    return bucket, segments


@dataclass(frozen=True)
class ReferencePolicy:
    """The folders and buckets a run's reference images may come from."""

    roots: tuple[Path, ...] = ()  # resolved local folders
    s3_folders: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (bucket, key segments)
    buckets: frozenset[str] = frozenset()

    @classmethod
    def for_catalog(cls, base: str, dest_bucket: str | None = None,
                    env: Mapping[str, str] | None = None) -> ReferencePolicy:
        """The catalog's folder (``base``), the destination bucket and the operator's lists."""
        env = os.environ if env is None else env
        buckets = {b.strip() for b in (env.get(REFERENCE_BUCKETS_ENV) or "").split(",")
                   if b.strip()}
        if dest_bucket:
            buckets.add(dest_bucket)
        if base.startswith("s3://"):  # a catalog on S3 never names the worker's disk
            folder = _split_s3(base.rstrip("/"))
            folders = ((folder[0], tuple(folder[1])),) if folder else ()
            return cls((), folders, frozenset(buckets))
        roots = [base, *(r for r in (env.get(REFERENCE_ROOTS_ENV) or "").split(os.pathsep) if r)]
        return cls(tuple(Path(r).expanduser().resolve() for r in roots), (), frozenset(buckets))

    def allows(self, reference: str) -> bool:
        """Whether a resolved reference (absolute path or s3:// URI) is inside the policy."""
        if reference.startswith("s3://"):
            split = _split_s3(reference)
            if split is None:
                return False
            bucket, segments = split
            if bucket in self.buckets:
                return True
            return any(bucket == b and tuple(segments[:len(f)]) == f and len(segments) > len(f)
                       for b, f in self.s3_folders)
        try:
            if not self.roots or not Path(reference).is_absolute():
                return False
            real = Path(reference).resolve()
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
            return False
        return any(real.is_relative_to(root) for root in self.roots)

    def allows_opened(self, fd: int) -> bool:
        """Whether an opened file is inside the roots (a symlink swapped after the check is
        caught here, where /proc shows the opened file's real path)."""
        link = f"/proc/self/fd/{fd}"
        if not os.path.exists(link):
            return True  # no /proc: the path check before opening stands
        real = Path(os.readlink(link))
        return any(real.is_relative_to(root) for root in self.roots)
