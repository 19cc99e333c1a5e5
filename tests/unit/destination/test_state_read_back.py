"""State read back from the bucket or the spool is checked, size-limited, skipped when bad."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

from PIL import Image

from catalog_images.destination.lease_holder import MAX_LEASE_BYTES, Holder
from catalog_images.destination.ledger import checked_row, history_row
from catalog_images.destination.spool import MAX_META_BYTES, Spool

META = {"mime_type": "image/png", "width": 8, "height": 8, "provider": "p", "model": "m",
        "run_id": "r"}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, "PNG")
    return buffer.getvalue()


def test_the_spool_is_private(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    old = Spool(shared, "s3://bucket/old")
    old.dir.chmod(0o755)  # a destination folder made before spools were private
    Spool(shared, "s3://bucket/old")
    assert stat.S_IMODE(old.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # a root that exists is not changed
    root = tmp_path / "new" / "spool"
    spool = Spool(root, "s3://bucket/prefix")
    spool.write("SKU-1", "f" * 64, _png(), META)
    for folder in (root, spool.dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    spool.make_durable("SKU-1", "f" * 64)  # an entry file of its own
    spool.write("SKU-2", "f" * 64, _png(), META)  # in a slot
    files = list(spool.dir.iterdir())
    assert len(files) == 2
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def _kept_entry(spool: Spool, data: bytes, meta: dict) -> Path:
    spool.write("SKU-1", "f" * 64, data, meta)
    spool.close()
    return next(spool.dir.glob("*.entry"))


def test_a_spooled_image_changed_on_disk_is_not_uploaded(tmp_path):
    spool = Spool(tmp_path, "s3://bucket/prefix")
    data = _png()
    entry = _kept_entry(spool, data, META)
    found = spool.find("SKU-1", "f" * 64)
    assert found is not None and found.data == data and found.meta["sha256"]
    entry.write_bytes(entry.read_bytes()[:-1] + b"X")
    assert spool.find("SKU-1", "f" * 64) is None
    entry.write_bytes(entry.read_bytes()[:-1])  # torn
    assert spool.find("SKU-1", "f" * 64) is None


def test_spool_metadata_of_another_shape_is_not_used(tmp_path):
    spool = Spool(tmp_path, "s3://bucket/prefix")
    data = _png()
    entry = _kept_entry(spool, data, META)
    for bad in ([], {"sha256": "x"}, {**META, "width": "8"}, "[" * 100_000, ""):
        header = bad if isinstance(bad, str) else json.dumps(bad)
        entry.write_bytes(header.encode() + b"\n" + data)
        assert spool.find("SKU-1", "f" * 64) is None
    entry.write_bytes(b"x" * (MAX_META_BYTES + 10))  # no metadata line where one must be
    assert spool.find("SKU-1", "f" * 64) is None


def test_a_legacy_spool_entry_without_a_hash_is_used_only_when_intact(tmp_path):
    older = Spool(tmp_path, "s3://bucket/prefix")
    stem = "SKU-1." + "f" * 32  # as older versions named an image file and its metadata
    (older.dir / f"{stem}.img").write_bytes(_png())
    (older.dir / f"{stem}.json").write_text(json.dumps(META))
    spool = Spool(tmp_path, "s3://bucket/prefix")  # the next run
    assert spool.find("SKU-1", "f" * 64) is not None
    image = spool.dir / f"{stem}.img"
    image.write_bytes(image.read_bytes()[:40])
    assert spool.find("SKU-1", "f" * 64) is None
    spool.remove("SKU-1", "f" * 64)
    assert list(spool.dir.iterdir()) == []


def test_ledger_rows_are_checked_field_by_field():
    header = {"run_id": "20261130T000000Z-aaaaaa", "started_at": "a", "finished_at": "b",
              "catalog": "c.csv"}
    totals = {"rows": 3, "succeeded": 3, "failed": 0, "rejected": 0, "skipped": 0,
              "success_rate": 1.0, "cost_usd": 0.4, "wall_s": 2.5,
              "images_by_provider": {"emulator": 3}}
    good = history_row(header, totals)
    assert checked_row(json.loads(json.dumps(good))) == good
    for bad in ([], "x", None, {**good, "run_id": 7}, {**good, "cost_usd": "lots"},
                {**good, "rows": 1.5}, {**good, "succeeded": True},
                {**good, "provider_mix": {"x": "y"}}, {**good, "wall_s": float("nan")},
                {k: v for k, v in good.items() if k != "run_id"}):
        assert checked_row(bad) is None, bad
    assert "extra" not in checked_row({**good, "extra": "x" * 100})


def test_a_lease_of_another_shape_or_size_reads_as_unknown():
    me = Holder.me("run-1")
    holder, stamp = Holder.parse(me.body(5))
    assert holder == me and stamp == 5
    for data in (b"[]", b"{", b"[" * 100_000, json.dumps({"run_id": "x", "host": "h",
                                                          "pid": "nope"}).encode(),
                 b" " * (MAX_LEASE_BYTES + 1) + me.body(5)):
        holder, stamp = Holder.parse(data)
        assert holder.run_id == "unknown" and stamp is None
    odd = json.loads(me.body(5))
    odd.update(written="late", pid_started={"a": 1}, host="h" * 10_000)
    holder, stamp = Holder.parse(json.dumps(odd).encode())
    assert stamp is None and holder.pid_started is None and len(holder.host) == 200
