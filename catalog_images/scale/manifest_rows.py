"""A shard's manifest rows, checked against the rows the parent gave that shard.

A shard's ``manifest.parquet`` comes back from the bucket, where anyone who can write the
destination could have changed it (and a crashed or buggy shard can write a wrong one). A
row is taken only when it is one of the shard's planned rows (row number and sku), given
once, with a known status and a finite, non-negative cost. Any other row matches nothing:
it is counted, logged with a few examples, and never reaches the report, the totals or the
billing; the planned row it claims to be (if any) keeps its own outcome (from its first
answer, or lost when the shard gave none, so the next run retries it).
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq

from catalog_images.models import RowStatus
from catalog_images.report.results import RowResult
from catalog_images.secrets import redact

SHARD_STATUSES = frozenset({RowStatus.SUCCEEDED, RowStatus.QUARANTINED, RowStatus.FAILED,
                            RowStatus.SKIPPED})
EXAMPLES = 3  # problems quoted in the warning
SHOWN_CHARS = 80  # of a sku in an example


def _shown(value: object) -> str:
    text = redact(str(value))
    text = text if text.isprintable() else repr(text)[1:-1]
    return text[:SHOWN_CHARS] + ("..." if len(text) > SHOWN_CHARS else "")


def _cost_problem(row: dict) -> str | None:
    for name in ("cost_usd", "list_cost_usd"):
        value = row.get(name)
        if value is not None and (not isinstance(value, int | float) or not math.isfinite(value)
                                  or value < 0):
            return f"{name} {_shown(value)} is not a cost"
    return None


class ShardRows:
    """The rows a shard was given (row number -> sku), and what its manifest said of them."""

    def __init__(self, planned: dict[int, str]) -> None:
        self.planned = planned
        self.seen: set[int] = set()
        self.unmatched = 0
        self.examples: list[str] = []

    @classmethod
    def of_jobs(cls, jobs_path: Path) -> ShardRows:
        """The planned rows of a shard's jobs file (only its row and sku columns are read)."""
        planned: dict[int, str] = {}
        for batch in pq.ParquetFile(jobs_path).iter_batches(batch_size=10_000,
                                                            columns=["row", "sku"]):
            planned.update(zip(batch.column("row").to_pylist(), batch.column("sku").to_pylist(),
                               strict=True))
        return cls(planned)

    def take(self, row: dict) -> RowResult | None:
        """The result of a manifest row that matches a planned row not given yet; None (and
        the problem noted) for any other."""
        problem = self._problem(row)
        if problem is None:
            try:
                result = RowResult.from_dict(row)
            except (TypeError, ValueError) as exc:
                problem = f"row {_shown(row.get('row'))}: malformed ({type(exc).__name__})"
            else:
                self.seen.add(row["row"])
                return result
        self.unmatched += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(problem)
        return None

    def _problem(self, row: dict) -> str | None:
        number, sku = row.get("row"), row.get("sku")
        if not isinstance(number, int) or isinstance(number, bool) or number not in self.planned:
            return f"row {_shown(number)} (sku {_shown(sku)}) is not one of the shard's rows"
        if sku != self.planned[number]:
            return (f"row {number} is sku {_shown(self.planned[number])} in the plan, the "
                    f"manifest says {_shown(sku)}")
        if number in self.seen:
            return f"row {number} (sku {_shown(sku)}) is given again; the first is kept"
        if row.get("status") not in SHARD_STATUSES:
            return f"row {number}: status {_shown(row.get('status'))} is not a shard's outcome"
        return _cost_problem(row)

    def warning(self, index: int) -> str | None:
        """The log line for the unmatched rows of shard ``index``; None when there are none."""
        if not self.unmatched:
            return None
        return (f"shard {index}: {self.unmatched} manifest row(s) match no row given to the "
                "shard and were left out of the report, the totals and the cost (a corrupt "
                "or altered manifest.parquet?): " + "; ".join(self.examples))
