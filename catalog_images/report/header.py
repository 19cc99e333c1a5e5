"""The header of a run's report: who ran what, where its files are, what the plan said."""

from __future__ import annotations

from datetime import UTC, datetime

from catalog_images.catalog.plan import PlanSummary
from catalog_images.destination.layout import DestinationLayout
from catalog_images.run_setup import RunSetup


def report_header(run: RunSetup, plan: PlanSummary, stopped_by: str | None,
                  flow_run_id: object | None, warnings: list[str] | None = None) -> dict:
    """The report's fields besides totals and rows; ``finished_at`` is now. ``warnings``:
    what the run logged as wrong but that no row's outcome shows (e.g. a shard's manifest
    rows that match none of its rows)."""
    settings, layout = run.settings, DestinationLayout(run.location)
    return {
        "run_id": run.run_id, "flow_run_id": str(flow_run_id) if flow_run_id else None,
        "catalog": settings.catalog, "dest": settings.dest,
        "provider": run.provider_config.name, "model": run.provider_config.model,
        "routes": settings.routes,
        "started_at": run.started_at, "finished_at": datetime.now(UTC).isoformat(),
        "report_uri": layout.run_uri(run.run_id, "report.json"),
        "manifest_uri": layout.run_uri(run.run_id, "manifest.parquet"),
        "images_uri": layout.images_uri(),
        "plan": {"rows": plan.rows, "accepted": plan.accepted,
                 "to_generate": plan.to_generate, "unchanged": plan.unchanged,
                 "rejected": plan.rejected, "projected_cost_usd": plan.projected_cost_usd,
                 "max_cost_usd": settings.max_cost_usd},
        "removed": {"count": plan.removed, "skus": plan.removed_sample,
                    "note": "images of removed skus are kept"},
        "stopped_by": stopped_by,
        "warnings": list(warnings or []),
        "approval": run.approval,  # None: no approval was needed
    }
