"""A chart of the runs ledger: cost per run (bars) and success rate (line)."""

from __future__ import annotations

import io
from datetime import datetime

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

COST_COLOR = "#4C78A8"
RATE_COLOR = "#F58518"
MAX_LABELS = 24


def run_label(run_id: str) -> str:
    """'11-28 15:57' for a run id like '20261128T155709Z-d6b9dc' (else the id, cut short)."""
    try:
        return datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").strftime("%m-%d %H:%M")
    except ValueError:
        return run_id[:16]


def _rate_pct(row: dict) -> float:
    """Success rate in %, NaN (a gap in the line) when unknown."""
    rate = row.get("success_rate")
    return float("nan") if rate is None else 100 * float(rate)


def _label_x(axis: Axes, rows: list[dict]) -> None:
    """At most MAX_LABELS rotated date labels, always including the latest run."""
    step = max(1, -(-len(rows) // MAX_LABELS))
    ticks = list(range(len(rows) - 1, -1, -step))[::-1]
    axis.set_xticks(ticks, [run_label(str(rows[i].get("run_id", ""))) for i in ticks],
                    rotation=45, ha="right", fontsize=9)
    pad = max(0.0, (8 - len(rows)) / 2)  # few runs: keep bars narrow and centred
    axis.set_xlim(-0.6 - pad, len(rows) - 0.4 + pad)


def history_chart_png(rows: list[dict], *, title: str = "Catalog refresh history") -> bytes:
    """PNG (1000x500) of cost per run (bars, USD) and success rate (line, %), oldest first."""
    figure = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(figure)
    cost_axis = figure.add_subplot()
    positions = list(range(len(rows)))
    bars = cost_axis.bar(positions, [float(r.get("cost_usd") or 0) for r in rows],
                         color=COST_COLOR, width=0.8, label="cost (USD)")
    cost_axis.set_ylabel("cost per run (USD)", color=COST_COLOR)
    cost_axis.yaxis.set_major_formatter(StrMethodFormatter("${x:,.2f}"))
    cost_axis.grid(axis="y", alpha=0.3)
    cost_axis.set_axisbelow(True)
    rate_axis = cost_axis.twinx()
    (line,) = rate_axis.plot(positions, [_rate_pct(r) for r in rows], color=RATE_COLOR,
                             linewidth=2, marker="o" if len(rows) <= 40 else None,
                             markersize=4, label="success rate (%)")
    rate_axis.set_ylim(0, 105)  # room for a 100% marker
    rate_axis.set_yticks(range(0, 101, 20))
    rate_axis.set_ylabel("success rate (%)", color=RATE_COLOR)
    _label_x(cost_axis, rows)
    cost_axis.set_title(title, loc="left")
    cost_axis.legend([bars, line], [bars.get_label(), line.get_label()], loc="lower right",
                     bbox_to_anchor=(1, 1), ncols=2, frameon=False, fontsize=9)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
