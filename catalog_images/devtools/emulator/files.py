"""Bounded in-memory file store: generated images behind URLs, Gemini Files API documents."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

IMAGE_FILES_MAX = 2000
IMAGE_FILES_MAX_BYTES = 1 << 30  # realistic 4K answers are 20 MB: 50 of them, not 2000


def new_id(nbytes: int = 12) -> str:
    """A random URL-safe identifier (hex)."""
    return secrets.token_hex(nbytes)


@dataclass(frozen=True)
class StoredFile:
    """Bytes of one file and how to serve them."""

    data: bytes
    content_type: str
    created: float = 0.0
    display_name: str = ""
    source: str = "UPLOADED"


class FileStore:
    """Thread-safe LRU of files by name; the least recently used goes beyond ``capacity``
    files or ``max_bytes`` in all (the newest file is always kept)."""

    def __init__(self, capacity: int = IMAGE_FILES_MAX,
                 max_bytes: int = IMAGE_FILES_MAX_BYTES) -> None:
        self._capacity, self._max_bytes, self._bytes = capacity, max_bytes, 0
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, name: str, file: StoredFile) -> None:
        """Store (or replace) ``name``, evicting the oldest files beyond capacity."""
        with self._lock:
            replaced = self._files.pop(name, None)
            self._bytes += len(file.data) - (len(replaced.data) if replaced else 0)
            self._files[name] = file
            while len(self._files) > 1 and (
                len(self._files) > self._capacity or self._bytes > self._max_bytes
            ):
                self._bytes -= len(self._files.popitem(last=False)[1].data)

    def get(self, name: str) -> StoredFile | None:
        """The file, or None when unknown or evicted."""
        with self._lock:
            found = self._files.get(name)
            if found is not None:
                self._files.move_to_end(name)
            return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)
