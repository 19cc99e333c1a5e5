"""A chart of the runs ledger: cost per run (bars) and success rate (line), drawn with Pillow.

Drawn directly rather than with matplotlib: importing matplotlib took 17.7 s on a loaded
2-core machine, and the report of a run stopped by a signal must come out within seconds.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageDraw, ImageFont

COST_COLOR = "#4C78A8"
RATE_COLOR = "#F58518"
GRID = (226, 226, 226)
AXIS = (90, 90, 90)
MAX_LABELS = 24
SIZE = (1000, 500)
LEFT, RIGHT, TOP, BOTTOM = 90, 70, 56, 90  # plot margins: axis labels, title, run labels

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def run_label(run_id: str) -> str:
    """'11-28 15:57' for a run id like '20261128T155709Z-d6b9dc' (else the id, cut short)."""
    try:
        return datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").strftime("%m-%d %H:%M")
    except ValueError:
        return run_id[:16]


def _rate_pct(row: dict) -> float | None:
    """Success rate in %, None (a gap in the line) when unknown or not a number."""
    try:
        rate = 100 * float(row["success_rate"])
    except (KeyError, TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) else None


def _cost(row: dict) -> float:
    """A run's cost in USD; 0 when missing or not a finite, non-negative number."""
    try:
        cost = float(row.get("cost_usd") or 0)
    except (TypeError, ValueError):
        return 0.0
    return cost if math.isfinite(cost) and cost > 0 else 0.0


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 covering ``top`` (about ``count`` steps of 1, 2, 2.5 or 5)."""
    if top <= 0:
        return [0.0, 0.25, 0.5, 0.75, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    steps = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


@dataclass(frozen=True)
class _Plot:
    """The plot area and its scales: x by run index, y by cost (left) and rate (right)."""

    left: int
    top: int
    right: int
    bottom: int
    runs: int
    cost_top: float

    def x(self, index: float) -> float:
        pad = max(0.0, (8 - self.runs) / 2)  # few runs: keep bars narrow and centred
        lo, hi = -0.6 - pad, self.runs - 0.4 + pad
        return self.left + (index - lo) / (hi - lo) * (self.right - self.left)

    def y_cost(self, cost: float) -> float:
        return self.bottom - cost / self.cost_top * (self.bottom - self.top)

    def y_rate(self, pct: float) -> float:
        return self.bottom - pct / 105 * (self.bottom - self.top)  # room for a 100% marker


def _vertical_text(image: Image.Image, text: str, font: Font, center: tuple[float, float],
                   color: str, angle: float = 90) -> None:
    """``text`` rotated by ``angle`` degrees, centred on ``center`` (or right-aligned to it
    for a 45° run label, whose end touches the axis)."""
    box = ImageDraw.Draw(image).textbbox((0, 0), text, font=font)
    label = Image.new("RGBA", (box[2] + 2, box[3] + 2), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((1, 1), text, font=font, fill=color)
    turned = label.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    x, y = center
    if angle == 90:
        at = (int(x - turned.width / 2), int(y - turned.height / 2))
    else:  # 45°: the text ends at (x, y)
        at = (int(x - turned.width), int(y))
    image.paste(turned, at, turned)


def _axes(image: Image.Image, draw: ImageDraw.ImageDraw, plot: _Plot, font: Font) -> None:
    """Grid, both y axes with their ticks and labels."""
    for tick in nice_ticks(plot.cost_top):
        y = plot.y_cost(tick)
        draw.line((plot.left, y, plot.right, y), fill=GRID)
        label = f"${tick:,.2f}"
        draw.text((plot.left - 6 - draw.textlength(label, font=font), y - 7), label,
                  font=font, fill=AXIS)
    for pct in range(0, 101, 20):
        y = plot.y_rate(pct)
        draw.line((plot.right, y, plot.right + 4, y), fill=AXIS)
        draw.text((plot.right + 7, y - 7), str(pct), font=font, fill=AXIS)
    draw.rectangle((plot.left, plot.top, plot.right, plot.bottom), outline=AXIS)
    middle = (plot.top + plot.bottom) / 2
    _vertical_text(image, "cost per run (USD)", font, (18, middle), COST_COLOR)
    _vertical_text(image, "success rate (%)", font, (SIZE[0] - 16, middle), RATE_COLOR, -90)


def _runs(image: Image.Image, draw: ImageDraw.ImageDraw, plot: _Plot, rows: list[dict],
          font: Font) -> None:
    """Bars of cost, the success-rate line (gaps where unknown) and the run labels."""
    width = max(1.0, 0.8 * (plot.x(1) - plot.x(0)))
    for index, row in enumerate(rows):
        x, cost = plot.x(index), _cost(row)
        if cost > 0:
            draw.rectangle((x - width / 2, plot.y_cost(cost), x + width / 2, plot.bottom),
                           fill=COST_COLOR)
    points = [(plot.x(i), plot.y_rate(p)) if (p := _rate_pct(r)) is not None else None
              for i, r in enumerate(rows)]
    for a, b in zip(points, points[1:], strict=False):
        if a is not None and b is not None:
            draw.line((a, b), fill=RATE_COLOR, width=2)
    if len(rows) <= 40:
        for point in (p for p in points if p is not None):
            draw.ellipse((point[0] - 3, point[1] - 3, point[0] + 3, point[1] + 3),
                         fill=RATE_COLOR)
    step = max(1, -(-len(rows) // MAX_LABELS))
    for index in range(len(rows) - 1, -1, -step):  # always including the latest run
        x = plot.x(index)
        draw.line((x, plot.bottom, x, plot.bottom + 4), fill=AXIS)
        _vertical_text(image, run_label(str(rows[index].get("run_id", ""))), font,
                       (x + 4, plot.bottom + 6), "black", angle=45)


def _legend(draw: ImageDraw.ImageDraw, plot: _Plot, title: str, font: Font) -> None:
    """The title on the left, the legend on the right, above the plot."""
    draw.text((plot.left, 14), title, font=ImageFont.load_default(size=16), fill="black")
    rate_text, cost_text = "success rate (%)", "cost (USD)"
    x = plot.right - draw.textlength(rate_text, font=font) - 30
    y = plot.top - 20
    draw.line((x, y + 7, x + 22, y + 7), fill=RATE_COLOR, width=2)
    draw.text((x + 26, y), rate_text, font=font, fill="black")
    x -= draw.textlength(cost_text, font=font) + 48
    draw.rectangle((x, y + 2, x + 16, y + 12), fill=COST_COLOR)
    draw.text((x + 22, y), cost_text, font=font, fill="black")


def history_chart_png(rows: list[dict], *, title: str = "Catalog refresh history") -> bytes:
    """PNG (1000x500) of cost per run (bars, USD) and success rate (line, %), oldest first."""
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    ticks = nice_ticks(max((_cost(r) for r in rows), default=0.0))
    plot = _Plot(LEFT, TOP, SIZE[0] - RIGHT, SIZE[1] - BOTTOM, len(rows), ticks[-1])
    _axes(image, draw, plot, font)
    _runs(image, draw, plot, rows, font)
    _legend(draw, plot, title, font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
