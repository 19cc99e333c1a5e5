"""A chart of the runs ledger: cost per run (bars) and success rate (line)."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _label(run_id: str) -> str:
    stamp = run_id.split("-")[0]  # 20261128T155709Z
    return f"{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}" if len(stamp) >= 13 else (
        run_id)


def history_chart_png(rows: list[dict], *, title: str = "Catalog refresh history") -> bytes:
    """PNG (about 1000x500) of cost per run and success rate, oldest run first."""
    figure = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(figure)
    cost_axis = figure.add_subplot()
    positions = list(range(len(rows)))
    cost_axis.bar(positions, [r.get("cost_usd") or 0 for r in rows], color="#4C78A8",
                  label="cost (USD)")
    cost_axis.set_ylabel("cost per run (USD)")
    cost_axis.set_xlim(-1, max(len(rows), 2))
    rate_axis = cost_axis.twinx()
    rates = [None if r.get("success_rate") is None else 100 * r["success_rate"] for r in rows]
    rate_axis.plot(positions, [float("nan") if v is None else v for v in rates],
                   color="#F58518", marker="o", label="success rate (%)")
    rate_axis.set_ylim(0, 105)
    rate_axis.set_ylabel("success rate (%)")
    step = max(1, len(rows) // 20)
    cost_axis.set_xticks(positions[::step], [_label(r["run_id"]) for r in rows][::step],
                         rotation=45, ha="right")
    cost_axis.set_title(title)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
