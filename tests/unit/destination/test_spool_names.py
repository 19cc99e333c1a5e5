"""Spool file names: short ASCII skus keep their names, any other sku gets a hashed one."""

from __future__ import annotations

import io

from PIL import Image

from catalog_images.destination.spool import Spool

META = {"mime_type": "image/png", "width": 8, "height": 8, "provider": "p", "model": "m"}


def _png(number: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (number, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def test_skus_in_any_script_and_of_any_length_spool_and_come_back(tmp_path):
    spool = Spool(tmp_path, "s3://b/p")
    skus = ["MUG-1", "café-mug", "茶杯-01", "茶" * 336, "cafe\u0301-mug"]
    for number, sku in enumerate(skus):
        spool.write(sku, "f" * 64, _png(number), META)
    for number, sku in enumerate(skus):
        found = spool.find(sku, "f" * 64)
        assert found is not None and found.data == _png(number), sku
    spool.close()  # entries not uploaded get files of their own
    names = sorted(p.name for p in spool.dir.iterdir())
    assert "MUG-1.ffffffffffffffffffffffffffffffff.entry" in names  # older versions' stem
    assert len(names) == len(skus)
    assert all(len(name.encode()) < 100 and name.isascii() for name in names)
    spool.remove("茶杯-01", "f" * 64)
    assert spool.find("茶杯-01", "f" * 64) is None and spool.find("café-mug", "f" * 64)
