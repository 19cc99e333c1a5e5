"""Spool slots: open files that hold paid images while their uploads run, reused entry after
entry.

Creating a file for each image and unlinking it after its upload cost about 0.2 ms of CPU
per image here, as much as a tenth of all the work a bare loop does for one; a slot costs
one write. A slot file (``slot-*``) is held under an exclusive ``flock`` by the process that
made it, so another process using the same folder (a shard of the same run) never takes
it. A slot whose image was uploaded is marked free (its first byte a newline: no metadata
line). A process that dies leaves its slots behind: the next one to open the folder turns
each image still held into an entry file and removes the rest (``recover_slots``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

FREE_MARK = b"\n"  # a slot's first byte once its image is uploaded: no entry in it
SLOT_PREFIX = "slot-"
UNNAMED_SLOT_AGE_S = 60.0  # a slot file still without its name after this was left by a crash


@dataclass(slots=True)
class Slot:
    """One open slot file and the size of the entry it holds."""

    path: Path
    fd: int
    size: int = 0


class SlotPool:
    """The slot files of one spool folder in this process: held by an entry, or free."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._free: list[Slot] = []
        self._held: dict[str, Slot] = {}  # entry name -> slot
        self._lock = threading.Lock()  # large images are written from the spool's threads

    def put(self, name: str, parts: Sequence[bytes]) -> None:
        """Write an entry (``parts`` in order) into a free slot; an OSError (a full disk)
        leaves the slot free and is raised."""
        slot = self._take()
        try:
            slot.size = _pwrite_all(slot.fd, parts)
        except OSError:
            self._give_back(slot)
            raise
        with self._lock:
            older = self._held.pop(name, None)
            self._held[name] = slot
        if older is not None:
            self._give_back(older)

    def read(self, name: str) -> bytes | None:
        """The entry held under ``name`` in this process, or None."""
        slot = self._held.get(name)
        return None if slot is None else os.pread(slot.fd, slot.size, 0)

    def release(self, name: str) -> bool:
        """Free the slot of an entry no longer needed; False when no slot holds it."""
        with self._lock:
            slot = self._held.pop(name, None)
        if slot is None:
            return False
        self._give_back(slot)
        return True

    def keep(self, name: str, path: Path) -> bool:
        """Make the held entry a file of its own at ``path``, synced to disk; False when no
        slot holds it."""
        with self._lock:
            slot = self._held.pop(name, None)
        if slot is None:
            return False
        try:
            os.fsync(slot.fd)
            os.replace(slot.path, path)
        finally:
            os.close(slot.fd)  # the lock goes with it
        return True

    def close(self, path_of: Callable[[str], Path]) -> list[str]:
        """Turn entries still held into files of their own (``path_of(name)``), remove the
        free slots, close them all; the names of the entries now in files."""
        with self._lock:
            held, self._held = self._held, {}
            free, self._free = self._free, []
        for name, slot in held.items():
            with contextlib.suppress(OSError):
                os.replace(slot.path, path_of(name))
            os.close(slot.fd)
        for slot in free:
            with contextlib.suppress(OSError):
                slot.path.unlink()
            os.close(slot.fd)
        return list(held)

    def _take(self) -> Slot:
        with self._lock:
            if self._free:
                return self._free.pop()
        # Made under another name, locked, then renamed: a recovering process never sees
        # a slot of a live process before its lock is held.
        fd, made = tempfile.mkstemp(prefix=f".{SLOT_PREFIX}", dir=self.folder)  # 0600
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
        path = self.folder / Path(made).name[1:]
        os.replace(made, path)
        return Slot(path, fd)

    def _give_back(self, slot: Slot) -> None:
        try:
            os.pwrite(slot.fd, FREE_MARK, 0)
        except OSError:  # it cannot be marked: never reuse or leave it
            with contextlib.suppress(OSError):
                slot.path.unlink()
            os.close(slot.fd)
            return
        with self._lock:
            self._free.append(slot)


def recover_slots(folder: Path, settle: Callable[[bytes], Path | None],
                  max_header: int) -> None:
    """Slots left by processes that are gone: each one holding an entry is renamed to the
    path ``settle`` gives for its first ``max_header`` bytes; the others are removed. Slots
    of a live process (its lock held) are left alone."""
    for path in folder.glob(f"{SLOT_PREFIX}*"):
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its process still runs
            os.close(fd)
            continue
        try:
            target = settle(os.pread(fd, max_header, 0))
            if target is None:
                path.unlink()
            else:
                os.replace(path, target)
        except OSError:
            pass
        finally:
            os.close(fd)
    for made in folder.glob(f".{SLOT_PREFIX}*"):  # a process died before naming its slot
        with contextlib.suppress(OSError):
            if time.time() - made.stat().st_mtime > UNNAMED_SLOT_AGE_S:
                made.unlink()


def _pwrite_all(fd: int, parts: Sequence[bytes]) -> int:
    """Write ``parts`` from the start of the file, each whole; the bytes written."""
    offset = 0
    for part in parts:
        view = memoryview(part)
        while view:
            written = os.pwrite(fd, view, offset)
            offset += written
            view = view[written:]
    return offset
