"""The history chart drawn with Pillow: what it shows, and that the report path never
imports matplotlib (17.7 s on a loaded machine, longer than a stopped run may take)."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from PIL import Image

from catalog_images.report.history_chart import (
    COST_COLOR,
    RATE_COLOR,
    history_chart_png,
    nice_ticks,
)

COST_RGB = tuple(int(COST_COLOR[i:i + 2], 16) for i in (1, 3, 5))
RATE_RGB = tuple(int(RATE_COLOR[i:i + 2], 16) for i in (1, 3, 5))


def _chart(rows: list[dict]) -> Image.Image:
    return Image.open(io.BytesIO(history_chart_png(rows))).convert("RGB")


def _count(image: Image.Image, rgb: tuple) -> int:
    return sum(1 for pixel in image.getdata() if pixel == rgb)


def test_bars_follow_the_cost_and_the_line_the_success_rate() -> None:
    cheap = _chart([{"run_id": "20261128T155709Z-a", "cost_usd": 1.0, "success_rate": 1.0},
                    {"run_id": "20261129T155709Z-b", "cost_usd": 1.0, "success_rate": 1.0}])
    dear = _chart([{"run_id": "20261128T155709Z-a", "cost_usd": 1.0, "success_rate": 1.0},
                   {"run_id": "20261129T155709Z-b", "cost_usd": 9.0, "success_rate": 1.0}])
    assert cheap.size == dear.size == (1000, 500)
    # same top bar in both (the scale follows the highest), a much lower first bar in `dear`
    assert _count(dear, COST_RGB) < _count(cheap, COST_RGB)
    assert _count(cheap, RATE_RGB) > 0


def test_unknown_rates_and_costs_leave_gaps_not_errors() -> None:
    rows = [{"run_id": "x", "cost_usd": None, "success_rate": None},
            {"run_id": "20261128T155709Z-a", "cost_usd": "n/a", "success_rate": "bad"},
            {"run_id": "20261129T155709Z-b", "cost_usd": float("nan"),
             "success_rate": float("inf")}, {}]
    chart = _chart(rows)
    assert chart.size == (1000, 500)
    assert _count(chart, COST_RGB) < 400 and _count(chart, RATE_RGB) < 400  # legend only


def test_no_runs_at_all_still_draws_axes() -> None:
    assert _chart([]).size == (1000, 500)


def test_nice_ticks_cover_the_highest_value_with_round_steps() -> None:
    assert nice_ticks(7.8) == [0, 2, 4, 6, 8]
    assert nice_ticks(0.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(23.6) == [0, 5, 10, 15, 20, 25]
    assert nice_ticks(0.012)[-1] >= 0.012


def test_many_runs_draw_quickly() -> None:
    rows = [{"run_id": f"202611{i % 28 + 1:02d}T120000Z-x", "cost_usd": i, "success_rate": 0.9}
            for i in range(500)]
    started = time.monotonic()
    assert _chart(rows).size == (1000, 500)
    assert time.monotonic() - started < 5


def test_publishing_a_report_does_not_import_matplotlib() -> None:
    code = ("import sys, tasks.report, catalog_images.report.publish\n"
            "sys.exit(1 if 'matplotlib' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
