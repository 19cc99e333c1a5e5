"""A contact sheet of a run's images: thumbnails with their SKUs, as PNG and HTML."""

from __future__ import annotations

import html
import io
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

CAPTION_H = 22
TITLE_H = 36


@dataclass(frozen=True)
class SheetItem:
    """One image of the run and its SKU."""

    sku: str
    data: bytes


def _thumbnail(data: bytes, size: int) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (size, size))
            img = img.convert("RGB")
            img.thumbnail((size, size), Image.Resampling.LANCZOS)
            return img
    except Exception:  # a corrupt image gets a grey box, never a crash
        return None


def small_thumbnail(data: bytes, size: int = 192) -> bytes | None:
    """A JPEG thumbnail of an image (kept during the run instead of the full image)."""
    img = _thumbnail(data, size)
    if img is None:
        return None
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet_png(items: Iterable[SheetItem], *, thumb: int = 192, columns: int = 8,
                      title: str = "", max_items: int = 400) -> bytes:
    """A grid of thumbnails with SKUs under them; one image decoded at a time."""
    cells: list[tuple[str, Image.Image | None]] = []
    more = 0
    for item in items:
        if len(cells) >= max_items:
            more += 1
            continue
        cells.append((item.sku, _thumbnail(item.data, thumb)))
    columns = max(1, min(columns, len(cells) or 1))
    rows = (len(cells) + columns - 1) // columns
    cell_w, cell_h = thumb + 16, thumb + CAPTION_H + 16
    footer = CAPTION_H if more else 0
    sheet = Image.new("RGB", (columns * cell_w, TITLE_H + rows * cell_h + footer), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    draw.text((8, 10), _fit(draw, title, font, sheet.width - 16), fill="black", font=font)
    for index, (sku, img) in enumerate(cells):
        x = (index % columns) * cell_w + 8
        y = TITLE_H + (index // columns) * cell_h + 8
        if img is None:
            draw.rectangle((x, y, x + thumb, y + thumb), fill=(200, 200, 200))
            draw.text((x + 8, y + thumb // 2), "unreadable", fill="black", font=font)
        else:
            sheet.paste(img, (x + (thumb - img.width) // 2, y + (thumb - img.height) // 2))
        draw.text((x, y + thumb + 4), _fit(draw, sku, font, thumb), fill="black", font=font)
    if more:
        draw.text((8, sheet.height - CAPTION_H), f"+{more} more", fill="black", font=font)
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()


def contact_sheet_html(items: list[tuple[str, str]], *, title: str,
                       sheet_png_name: str = "contact-sheet.png") -> str:
    """A self-contained page: the sheet, then every image (lazy-loaded) with its SKU."""
    figures = "\n".join(
        f'<figure><img loading="lazy" src="{html.escape(url)}" alt="{html.escape(sku)}">'
        f"<figcaption>{html.escape(sku)}</figcaption></figure>" for sku, url in items)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr));
        gap: 1rem; }}
figure {{ margin: 0; }} img {{ width: 100%; height: auto; background: #eee; }}
figcaption {{ font-size: .85rem; overflow-wrap: anywhere; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p><img src="{html.escape(sheet_png_name)}" alt="contact sheet" style="max-width:100%"></p>
<div class="grid">
{figures}
</div></body></html>
"""
