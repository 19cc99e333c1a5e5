"""The contact sheet and the history chart: real images in, real PNGs out."""

from __future__ import annotations

import io

from PIL import Image

from catalog_images.report.contact_sheet import SheetItem, contact_sheet_html, contact_sheet_png
from catalog_images.report.history_chart import history_chart_png


def _image(size, fmt="PNG", color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def test_contact_sheet_shows_each_image_its_sku_and_survives_a_corrupt_one():
    items = [SheetItem("BIG-4K", _image((4096, 4096))), SheetItem("JPEG", _image((300, 200),
             "JPEG")), SheetItem("BROKEN", b"\x89PNG not really"),
             *(SheetItem(f"S{i}", _image((64, 96), color=(10, 20 * i, 90))) for i in range(9))]
    sheet = Image.open(io.BytesIO(contact_sheet_png(items, thumb=100, columns=4,
                                                    title="Run x")))
    assert sheet.size == (4 * 116, 36 + 3 * (100 + 22 + 16))
    for index in range(12):  # every used cell has drawn pixels
        x, y = (index % 4) * 116 + 8 + 50, 36 + (index // 4) * 138 + 8 + 50
        assert sheet.getpixel((x, y)) != (255, 255, 255)


def test_contact_sheet_counts_what_it_does_not_show():
    items = (SheetItem(f"S{i}", _image((32, 32))) for i in range(30))
    sheet = Image.open(io.BytesIO(contact_sheet_png(items, thumb=64, columns=5,
                                                    max_items=10)))
    assert sheet.size == (5 * 80, 36 + 2 * (64 + 22 + 16) + 22)


def test_contact_sheet_page_escapes_skus_and_urls():
    page = contact_sheet_html([('<b>&"x', "../../images/a b.png")], title="t<")
    assert "&lt;b&gt;&amp;&quot;x" in page and "<b>&" not in page
    assert 'src="../../images/a b.png"' in page and "<title>t&lt;</title>" in page


def test_history_chart_for_one_and_many_runs():
    for count in (1, 60):
        rows = [{"run_id": f"202611{(i % 28) + 1:02d}T120000Z-abc", "cost_usd": 1.5 * i,
                 "success_rate": None if i == 3 else 0.9, "succeeded": 9, "failed": 1}
                for i in range(count)]
        chart = Image.open(io.BytesIO(history_chart_png(rows)))
        assert chart.format == "PNG" and chart.size == (1000, 500)
