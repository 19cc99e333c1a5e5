"""Spool slots: a paid image sits in a reused file until uploaded; a dead process's slots
become entry files for the next run, a live process's are left alone."""

from __future__ import annotations

import errno
import io
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

import catalog_images.destination.spool_slots as spool_slots
from catalog_images.destination.spool import Spool, waiting_images

META = {"mime_type": "image/png", "width": 8, "height": 8, "provider": "p", "model": "m"}
DEST = "s3://bucket/prefix"


def _png(number: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (number, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def _writer(root, *, wait: bool) -> subprocess.Popen:
    """A process that spools SKU-1 and SKU-2, uploads SKU-2, then waits or dies at once."""
    code = textwrap.dedent(f"""
        import io, os, sys
        from PIL import Image
        from catalog_images.destination.spool import Spool
        def png(n):
            b = io.BytesIO(); Image.new("RGB", (8, 8), (n, 0, 0)).save(b, "PNG")
            return b.getvalue()
        spool = Spool(__import__("pathlib").Path({str(root)!r}), {DEST!r})
        meta = {META!r}
        spool.write("SKU-1", "f" * 64, png(1), meta)
        spool.write("SKU-2", "f" * 64, png(2), meta)
        spool.remove("SKU-2", "f" * 64)
        print("ready", flush=True)
        if {wait!r}:
            sys.stdin.readline()
        os._exit(0)  # as a kill: no close
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def test_a_dead_process_leaves_its_unuploaded_images_for_the_next_run(tmp_path):
    proc = _writer(tmp_path, wait=False)
    assert proc.stdout.readline() == "ready\n"
    proc.wait()
    spool = Spool(tmp_path, DEST)
    assert spool.find("SKU-1", "f" * 64).data == _png(1)
    assert spool.find("SKU-2", "f" * 64) is None  # uploaded before the process died
    assert [p.suffix for p in spool.dir.iterdir()] == [".entry"]  # no slot left


def test_a_live_process_keeps_its_slots(tmp_path):
    proc = _writer(tmp_path, wait=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        spool = Spool(tmp_path, DEST)  # a shard of the same run, say
        assert spool.find("SKU-1", "f" * 64) is None
        assert sorted(p.name[:5] for p in spool.dir.iterdir()) == ["slot-", "slot-"]
    finally:
        proc.communicate("go\n")
    assert Spool(tmp_path, DEST).find("SKU-1", "f" * 64).data == _png(1)  # once it is gone


def test_an_entry_written_again_frees_its_older_slot(tmp_path):
    spool = Spool(tmp_path, DEST)
    spool.write("SKU-1", "f" * 64, _png(1), META)
    spool.write("SKU-1", "f" * 64, _png(2) * 3, META)  # longer: the slot's tail is new
    spool.write("SKU-1", "f" * 64, _png(3), META)  # shorter than what the slot held
    assert spool.find("SKU-1", "f" * 64).data == _png(3)
    assert len(list(spool.dir.iterdir())) == 2  # the freed slot was reused
    spool.close()
    assert Spool(tmp_path, DEST).find("SKU-1", "f" * 64).data == _png(3)


def test_a_full_disk_raises_leaves_the_slot_free_and_nothing_after_close(tmp_path,
                                                                         monkeypatch):
    spool = Spool(tmp_path, DEST)
    real = spool_slots._pwrite_all

    def full(fd, parts):
        real(fd, [parts[0][:10]])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_slots, "_pwrite_all", full)
    with pytest.raises(OSError):
        spool.write("SKU-1", "f" * 64, _png(1), META)
    assert spool.find("SKU-1", "f" * 64) is None
    spool.close()
    assert list(spool.dir.iterdir()) == []


def test_waiting_images_counts_entries_and_held_slots_not_free_ones(tmp_path):
    spool = Spool(tmp_path, DEST)
    for number in range(3):
        spool.write(f"SKU-{number}", "f" * 64, _png(number), META)
    spool.remove("SKU-0", "f" * 64)  # uploaded: its slot is free
    spool.make_durable("SKU-1", "f" * 64)  # its upload failed: a file of its own
    assert waiting_images(tmp_path) == 2
    spool.close()
    assert waiting_images(tmp_path) == 2


def test_an_entry_refused_and_paid_again_leaves_no_stale_file_after_its_upload(tmp_path):
    earlier = Spool(tmp_path, DEST)
    earlier.write("SKU-1", "f" * 64, _png(1), META)
    earlier.close()
    entry = next(earlier.dir.glob("*.entry"))
    entry.write_bytes(entry.read_bytes()[:-5])  # torn by a machine crash
    spool = Spool(tmp_path, DEST)
    assert spool.find("SKU-1", "f" * 64) is None  # refused: the row pays again
    spool.write("SKU-1", "f" * 64, _png(2), META)
    spool.remove("SKU-1", "f" * 64)  # uploaded
    spool.close()
    assert list(spool.dir.iterdir()) == []


def test_a_slot_file_left_before_it_was_named_is_removed_once_old(tmp_path):
    import os

    folder = Spool(tmp_path, DEST).dir
    fresh, old = folder / ".slot-fresh", folder / ".slot-old"
    fresh.write_bytes(b"")
    old.write_bytes(b"")
    os.utime(old, (0, 0))
    Spool(tmp_path, DEST)
    assert fresh.exists() and not old.exists()  # a fresh one may be another process's
