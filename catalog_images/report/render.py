"""The run report: JSON with every row, a markdown summary and a table of problem rows."""

from __future__ import annotations

import json
from pathlib import Path

from catalog_images.models import RowStatus
from catalog_images.report.results import iter_result_rows

PROBLEM_TABLE_LIMIT = 500


def write_report_json(path: Path, header: dict, totals: dict, manifest_path: Path) -> None:
    """Write the report, streaming rows from the manifest so memory stays flat."""
    with open(path, "w", encoding="utf-8") as out:
        out.write("{\n")
        for key, value in {**header, "totals": totals}.items():
            out.write(f"  {json.dumps(key)}: {json.dumps(value, default=str)},\n")
        out.write('  "rows": [')
        for index, row in enumerate(iter_result_rows(manifest_path)):
            out.write(("," if index else "") + "\n    " + json.dumps(row, default=str))
        out.write("\n  ]\n}\n")


def problem_rows(manifest_path: Path, limit: int = PROBLEM_TABLE_LIMIT) -> list[dict]:
    """Failed and rejected rows (at most ``limit``) for a table artifact."""
    rows: list[dict] = []
    for row in iter_result_rows(manifest_path):
        if row["status"] in (RowStatus.FAILED, RowStatus.REJECTED, RowStatus.QUARANTINED):
            rows.append(
                {"row": row["row"], "sku": row["sku"], "status": row["status"],
                 "error_class": row["error_class"], "reason": row["reason"]}
            )
            if len(rows) >= limit:
                break
    return rows


def _money(value: float) -> str:
    return f"${value:,.4f}".rstrip("0").rstrip(".") if value else "$0"


def summary_markdown(header: dict, totals: dict, examples: dict[str, list]) -> str:
    """A human summary of the run, for the Prefect UI and the terminal."""
    lines = [
        f"# Catalog refresh {header['run_id']}",
        "",
        f"Catalog `{header['catalog']}` to `{header['dest']}` with provider "
        f"`{header['provider']}` (`{header['model']}`).",
        "",
        "| rows | succeeded | failed | rejected | skipped | success rate | cost | images/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {totals['rows']} | {totals['succeeded']} | {totals['failed']} | "
        f"{totals['rejected']} | {totals['skipped']} | "
        f"{_percent(totals['success_rate'])} | {_money(totals['cost_usd'])} | "
        f"{totals['images_per_s']} |",
        "",
        f"Latency p50 {totals['latency_p50_s']} s, p95 {totals['latency_p95_s']} s; "
        f"wall time {totals['wall_s']} s.",
        "",
    ]
    if totals.get("quarantined"):
        lines += [f"**Quarantined:** {totals['quarantined']} paid images of the wrong shape, "
                  f"kept under `{header['dest'].rstrip('/')}/quarantine/` and not paid for "
                  "again (force a sku to regenerate it).", ""]
    if totals["cost_by_provider"]:
        lines += ["**Cost by provider:** " + ", ".join(
            f"{k} {_money(v)}" for k, v in totals["cost_by_provider"].items()), ""]
    if totals["cost_by_resolution"]:
        lines += ["**Cost by resolution:** " + ", ".join(
            f"{k} {_money(v)}" for k, v in totals["cost_by_resolution"].items()), ""]
    lines += _bill_lines(totals)
    if totals["retries_by_class"]:
        lines += ["**Retries by error class:** " + ", ".join(
            f"{k} {v}" for k, v in totals["retries_by_class"].items()), ""]
    if totals.get("providers"):
        lines += ["## Providers", "",
                  "| provider | requests | images | 429s | retries | failovers in/out | "
                  "p50 s | p95 s | cost |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | "
                  "---: | ---: |"]
        for name, p in totals["providers"].items():
            lines.append(
                f"| {name} | {p['requests']} | {p['images']} | {p['429s']} | {p['retries']} | "
                f"{p['failovers_in']}/{p['failovers_out']} | {p['latency_p50_s']} | "
                f"{p['latency_p95_s']} | {_money(p['cost_usd'])} |")
        lines.append("")
    if examples:
        lines += ["## Problems", "", "| reason | rows | example SKUs |", "| --- | ---: | --- |"]
        for reason, (count, skus) in examples.items():
            shown = ", ".join(f"`{s}`" for s in skus if s) or "(no sku)"
            lines.append(f"| {reason.replace('|', '/')} | {count} | {shown} |")
        lines.append("")
    lines += [f"- Report: `{header['report_uri']}`", f"- Images: `{header['images_uri']}`"]
    if header.get("contact_sheet_uri"):
        lines += [f"- Contact sheet: `{header['contact_sheet_uri']}`",
                  f"- History chart: `{header['history_chart_uri']}`"]
    return "\n".join(lines)


def _bill_lines(totals: dict) -> list[str]:
    """The bill beside the list prices, and the spend on answers without an image."""
    if "list_cost_usd" not in totals:
        return []
    lines = [f"**Bill:** {_money(totals['cost_usd'])} billed (usage tokens where the provider "
             f"bills usage) against {_money(totals['list_cost_usd'])} at list prices per "
             "image.", ""]
    if totals.get("no_image_rows"):
        lines += [f"**Spent on answers without an image:** "
                  f"{_money(totals['no_image_cost_usd'])} ({totals['no_image_rows']} rows: "
                  "blocked or no image, prompt and thinking tokens billed).", ""]
    if len(totals.get("cost_by_model") or {}) > 1:
        lines += ["**Cost by model:** " + ", ".join(
            f"{k} {_money(v)}" for k, v in totals["cost_by_model"].items()), ""]
    return lines


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def problem_examples(manifest_path: Path, limit: int = 20) -> dict[str, list]:
    """Reasons of failed and rejected rows: ``{reason: [count, up to 3 example SKUs]}``."""
    examples: dict[str, list] = {}
    for row in iter_result_rows(manifest_path):
        if row["status"] in (RowStatus.FAILED, RowStatus.REJECTED,
                             RowStatus.QUARANTINED) and row["reason"]:
            reason = row["reason"]
            if reason not in examples and len(examples) >= limit:
                reason = "other reasons"
            entry = examples.setdefault(reason, [0, []])
            entry[0] += 1
            if len(entry[1]) < 3:
                entry[1].append(row["sku"] or "")
    return examples
