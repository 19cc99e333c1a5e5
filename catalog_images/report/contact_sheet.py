"""A contact sheet of a run's images: thumbnails with their SKUs, as PNG and HTML."""

from __future__ import annotations

import html
import io
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps

CAPTION_H = 22
TITLE_H = 36
PAD = 8
GREY = (200, 200, 200)

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


@dataclass(frozen=True)
class SheetItem:
    """One image of the run (a thumbnail's bytes), its SKU and its object key."""

    sku: str
    data: bytes
    key: str = ""


def _on_white(img: Image.Image) -> Image.Image:
    """RGB copy of ``img`` with any transparency flattened onto white."""
    if img.mode not in ("RGBA", "LA", "PA") and "transparency" not in img.info:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, if any (a broken EXIF block leaves the image as is)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def _thumbnail(data: bytes, size: int) -> Image.Image | None:
    """An RGB image fitting in size x size, or None when ``data`` is not a readable image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            if img.mode == "P":  # palette: resample in RGBA, after a cheap cut to 4x size
                img.thumbnail((4 * size, 4 * size), Image.Resampling.NEAREST)
            small = img.convert("RGBA") if img.mode == "P" else img
            small.thumbnail((size, size), Image.Resampling.LANCZOS)
            return _on_white(_upright(small))
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


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    """``text``, cut with an ellipsis to fit in ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _collect(items: Iterable[SheetItem], thumb: int,
             max_items: int) -> tuple[list[tuple[str, Image.Image | None]], int]:
    """Thumbnails of the first ``max_items`` items (one decoded at a time) and the rest's count."""
    cells: list[tuple[str, Image.Image | None]] = []
    more = 0
    for item in items:
        if len(cells) < max_items:
            cells.append((item.sku, _thumbnail(item.data, thumb)))
        else:
            more += 1  # counted, never decoded
    return cells, more


def _draw_cell(sheet: Image.Image, draw: ImageDraw.ImageDraw, font: Font, xy: tuple[int, int],
               thumb: int, sku: str, img: Image.Image | None) -> None:
    """One thumbnail centred in its box (or a grey 'unreadable' box), its SKU under it."""
    x, y = xy
    if img is None:
        draw.rectangle((x, y, x + thumb - 1, y + thumb - 1), fill=GREY)
        label = _fit(draw, "unreadable", font, thumb)
        left = x + (thumb - int(draw.textlength(label, font=font))) // 2
        draw.text((left, y + thumb // 2 - 7), label, fill="black", font=font)
    else:
        sheet.paste(img, (x + (thumb - img.width) // 2, y + (thumb - img.height) // 2))
    draw.text((x, y + thumb + 4), _fit(draw, sku, font, thumb), fill="black", font=font)


def contact_sheet_png(items: Iterable[SheetItem], *, thumb: int = 192, columns: int = 8,
                      title: str = "", max_items: int = 400) -> bytes:
    """A grid of thumbnails with SKUs under them and ``title`` on top, as PNG bytes.

    Items are decoded one at a time (``items`` may be a lazy generator); only thumbnails are
    kept. Items past ``max_items`` are counted, not decoded, and reported as "+N more".
    """
    cells, more = _collect(items, thumb, max_items)
    font = ImageFont.load_default(size=14)
    cell_w, cell_h = thumb + 2 * PAD, thumb + CAPTION_H + 2 * PAD
    title_w = int(ImageDraw.Draw(Image.new("1", (1, 1))).textlength(title, font=font))
    width_cap = max(1, columns) * cell_w  # a long title widens a short sheet up to this
    columns = max(1, min(columns, len(cells) or 1))
    rows = -(-len(cells) // columns)
    width = max(columns * cell_w, min(title_w + 2 * PAD, width_cap))
    height = TITLE_H + rows * cell_h + (CAPTION_H if more else 0)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, 10), _fit(draw, title, font, width - 2 * PAD), fill="black", font=font)
    for index, (sku, img) in enumerate(cells):
        xy = ((index % columns) * cell_w + PAD, TITLE_H + (index // columns) * cell_h + PAD)
        _draw_cell(sheet, draw, font, xy, thumb, sku, img)
    if more:
        draw.text((PAD, height - CAPTION_H), f"+{more} more", fill="black", font=font)
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def contact_sheet_html(items: list[tuple[str, str]], *, title: str,
                       sheet_png_name: str = "contact-sheet.png") -> str:
    """A self-contained page: the sheet, then every (sku, url) image lazy-loaded with its SKU."""
    figures = "\n".join(
        f'<figure><img loading="lazy" src="{html.escape(url)}" alt="{html.escape(sku)}">'
        f"<figcaption>{html.escape(sku)}</figcaption></figure>" for sku, url in items)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr));
        gap: 1rem; }}
figure {{ margin: 0; }}
img {{ max-width: 100%; height: auto; }}
.grid img {{ width: 100%; aspect-ratio: 1; object-fit: contain; background: #eee; }}
figcaption {{ font-size: .85rem; overflow-wrap: anywhere; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p><img src="{html.escape(sheet_png_name)}" alt="contact sheet"></p>
<div class="grid">
{figures}
</div></body></html>
"""
