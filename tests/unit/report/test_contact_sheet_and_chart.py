"""Contact sheet (PNG + HTML) and history chart: generated images in, decodable PNGs out."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image, ImageChops, ImageDraw

from catalog_images.report import contact_sheet
from catalog_images.report.contact_sheet import (
    CAPTION_H,
    PAD,
    TITLE_H,
    SheetItem,
    contact_sheet_html,
    contact_sheet_png,
)
from catalog_images.report.history_chart import history_chart_png, run_label

THUMB, COLUMNS = 96, 6
CELL_W, CELL_H = THUMB + 2 * PAD, THUMB + CAPTION_H + 2 * PAD


def _encode(size: tuple[int, int], fmt: str = "PNG", color=(200, 30, 30), mode="RGB") -> bytes:
    img = Image.new(mode, size, color)
    ImageDraw.Draw(img).ellipse((0, 0, size[0] - 1, size[1] - 1), fill=(20, 90, 200))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def twenty_items() -> list[SheetItem]:
    """20 images: a 4096x4096 PNG, a JPEG, a WebP, one corrupt, and assorted ratios."""
    items = [SheetItem("HUGE-4096", _encode((4096, 4096))),
             SheetItem("PHOTO-JPEG", _encode((1600, 900), "JPEG", (240, 200, 0))),
             SheetItem("WEBP-TALL", _encode((300, 1200), "WEBP", (0, 150, 70))),
             SheetItem("BROKEN", b"\x89PNG\r\n\x1a\n definitely not an image")]
    items += [SheetItem(f"SKU-{i:02d}-" + "X" * i, _encode((40 + 30 * i, 500 - 25 * i),
                                                          color=(10, 12 * i, 90)))
              for i in range(16)]
    return items


def _inked(sheet: Image.Image, box: tuple[int, int, int, int]) -> bool:
    """True when ``box`` of the sheet has any non-white pixel."""
    region = sheet.crop(box).convert("RGB")
    white = Image.new("RGB", region.size, "white")
    return ImageChops.difference(region, white).getbbox() is not None


def _cell(index: int) -> tuple[int, int]:
    return (index % COLUMNS) * CELL_W + PAD, TITLE_H + (index // COLUMNS) * CELL_H + PAD


def test_sheet_is_a_png_grid_with_every_cell_drawn(twenty_items: list[SheetItem]) -> None:
    data = contact_sheet_png(twenty_items, thumb=THUMB, columns=COLUMNS, title="Run t: 20 images")
    sheet = Image.open(io.BytesIO(data))
    assert sheet.format == "PNG"
    assert sheet.size == (COLUMNS * CELL_W, TITLE_H + 4 * CELL_H)  # 20 items: 4 rows of 6
    assert _inked(sheet, (0, 0, sheet.width, TITLE_H))  # the title
    for index in range(20):
        x, y = _cell(index)
        assert _inked(sheet, (x, y, x + THUMB, y + THUMB)), f"empty thumbnail {index}"
        assert _inked(sheet, (x, y + THUMB, x + THUMB, y + THUMB + CAPTION_H)), f"no sku {index}"
    for index in range(20, 24):  # the unused end of the last row stays blank
        x, y = _cell(index)
        assert not _inked(sheet, (x, y, x + THUMB, y + THUMB + CAPTION_H))


def test_corrupt_item_gets_a_grey_box(twenty_items: list[SheetItem]) -> None:
    sheet = Image.open(io.BytesIO(contact_sheet_png(twenty_items[3:4], thumb=THUMB)))
    x, y = _cell(0)
    assert sheet.convert("RGB").getpixel((x + 2, y + 2)) == contact_sheet.GREY


def test_transparent_background_is_white_and_aspect_is_kept() -> None:
    data = _encode((400, 100), color=(0, 0, 0, 0), mode="RGBA")
    sheet = Image.open(io.BytesIO(contact_sheet_png([SheetItem("A", data)], thumb=THUMB)))
    sheet = sheet.convert("RGB")
    x, y = _cell(0)
    top = y + (THUMB - 24) // 2  # the 96x24 thumbnail is centred vertically
    assert sheet.getpixel((x + 1, top + 1)) == (255, 255, 255)  # its transparent corner
    assert sheet.getpixel((x + THUMB // 2, y + THUMB // 2)) != (255, 255, 255)  # the ellipse
    assert not _inked(sheet, (x, y, x + THUMB, y + THUMB // 2 - 13))  # 96x24, centred


def test_palette_4k_is_cut_down_before_it_becomes_rgba(monkeypatch: pytest.MonkeyPatch) -> None:
    # A full-size RGBA copy of a 4K palette PNG was 64 MiB per thumbnail (bench/memory.py).
    converted: list[tuple[int, int]] = []
    real = Image.Image.convert
    monkeypatch.setattr(Image.Image, "convert",
                        lambda img, *a, **k: converted.append(img.size) or real(img, *a, **k))
    data = _encode((4096, 4096), mode="P", color=3)
    thumb = Image.open(io.BytesIO(contact_sheet.small_thumbnail(data, 96)))
    assert thumb.size == (96, 96)
    assert converted and max(w * h for w, h in converted) <= (4 * 96) ** 2


def test_items_past_max_are_counted_not_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[bytes] = []
    real = contact_sheet._thumbnail
    monkeypatch.setattr(contact_sheet, "_thumbnail", lambda d, s: decoded.append(d) or real(d, s))

    def lazy() -> Iterator[SheetItem]:
        for i in range(30):
            yield SheetItem(f"S{i}", _encode((32 + i, 32)))

    sheet = Image.open(io.BytesIO(contact_sheet_png(lazy(), thumb=64, columns=5, max_items=10)))
    assert len(decoded) == 10
    assert sheet.size == (5 * (64 + 2 * PAD), TITLE_H + 2 * (64 + CAPTION_H + 2 * PAD) + CAPTION_H)
    assert _inked(sheet, (0, sheet.height - CAPTION_H, sheet.width, sheet.height))  # "+20 more"


def test_html_page_escapes_skus_and_lists_each_url() -> None:
    items = [('<b>&"x', "../../images/%3Cb%3E.png"), ("SKU-2", "../../images/a&b.png")]
    page = contact_sheet_html(items, title="Run <1>", sheet_png_name="sheet.png")
    assert "&lt;b&gt;&amp;&quot;x" in page and '<b>&"x' not in page
    assert 'src="../../images/%3Cb%3E.png"' in page and 'src="../../images/a&amp;b.png"' in page
    assert page.count('loading="lazy"') == 2 and 'src="sheet.png"' in page
    assert "<title>Run &lt;1&gt;</title>" in page
    assert "<script" not in page and "http" not in page


@pytest.mark.parametrize("runs", [1, 60])
def test_history_chart_is_a_1000x500_png(runs: int) -> None:
    rows = [{"run_id": f"202611{i % 28 + 1:02d}T{i % 24:02d}5709Z-d6b9dc", "cost_usd": 0.4 * i,
             "success_rate": None if i == 2 else 0.5 + (i % 5) / 10, "succeeded": 9, "failed": 1}
            for i in range(runs)]
    chart = Image.open(io.BytesIO(history_chart_png(rows)))
    assert chart.format == "PNG"
    assert abs(chart.width - 1000) <= 10 and abs(chart.height - 500) <= 10


def test_run_label() -> None:
    assert run_label("20261128T155709Z-d6b9dc") == "11-28 15:57"
    assert run_label("manual") == "manual"
