"""Prefect events for the moments people automate on (a notification, a paused schedule).

Every event's name starts with ``catalog-images.``; its resource is the destination
(``catalog-images.destination.<bucket>/<prefix>``) or a provider
(``catalog-images.provider.<name>``, the destination related). Prefect adds the flow run,
flow, deployment and tags of the run it is emitted in. Emitting never raises and never
carries a secret: a run goes on whether or not anyone listens. The automations in
``deployments/automations.yaml`` trigger on these names.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from catalog_images.secrets import redact

RUN_FINISHED = "catalog-images.run.finished"
BUDGET_REACHED = "catalog-images.budget.reached"
QUOTA_EXHAUSTED = "catalog-images.quota.exhausted"
BREAKER_OPENED = "catalog-images.provider.breaker-opened"
BREAKER_CLOSED = "catalog-images.provider.breaker-closed"
REPORT_NOT_UPLOADED = "catalog-images.report.not-uploaded"
# On run.finished: completed, failed, or (spend not approved, $0) declined, cancelled or
# approval timed out.
STATUS_LABEL = "catalog-images.status"
TOTALS_SENT = ("rows", "accepted", "succeeded", "failed", "rejected", "skipped", "cost_usd",
               "cost_by_provider", "images_by_provider", "wall_s")

log = logging.getLogger(__name__)


def destination_resource(dest: str | None) -> dict[str, str]:
    """The resource of a destination ``s3://bucket/prefix`` (``unknown`` when unusable)."""
    where = (dest or "").removeprefix("s3://").strip("/") if dest else ""
    return {"prefect.resource.id": f"catalog-images.destination.{where or 'unknown'}",
            "prefect.resource.name": dest or "unknown destination",
            "prefect.resource.role": "destination"}


def provider_resource(provider: str) -> dict[str, str]:
    """The resource of a configured provider."""
    return {"prefect.resource.id": f"catalog-images.provider.{provider}",
            "prefect.resource.name": provider, "prefect.resource.role": "provider"}


def _clean(value: Any) -> Any:
    """The value with every string redacted (payloads never carry a secret)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def emit(event: str, resource: dict[str, str], payload: dict[str, Any],
         related: list[dict[str, str]] | None = None) -> None:
    """Emit one event through Prefect's events worker; a failure is logged, never raised."""
    try:
        from prefect.events import emit_event

        emit_event(event, resource=resource, payload=_clean(payload), related=related or [])
    except Exception as exc:  # noqa: BLE001 - an event must never sink a run
        log.warning("event %s not emitted: %s", event, redact(str(exc)))


class RunEvents:
    """The events of one run at one destination; once-only events are sent once per run."""

    def __init__(self, dest: str | None, run_id: str | None = None) -> None:
        self.dest, self.run_id = dest, run_id
        self._sent: set[str] = set()
        self._lock = threading.Lock()

    def _once(self, key: str) -> bool:
        with self._lock:
            first = key not in self._sent
            self._sent.add(key)
            return first

    def _payload(self, **fields: Any) -> dict[str, Any]:
        return {"run_id": self.run_id, "destination": self.dest, **fields}

    def run_finished(self, status: str, totals: dict | None = None, report_uri: str | None = None,
                     message: str | None = None, error_kind: str | None = None) -> None:
        """The run ended: ``completed``, ``failed``, or not approved (``declined``,
        ``cancelled``, ``approval timed out``), with its counts and cost."""
        resource = {**destination_resource(self.dest), STATUS_LABEL: status}
        counts = {k: (totals or {}).get(k) for k in TOTALS_SENT if k in (totals or {})}
        emit(RUN_FINISHED, resource, self._payload(
            status=status, totals=counts, cost_usd=(totals or {}).get("cost_usd", 0.0),
            report_uri=report_uri, message=message, error_kind=error_kind))

    def budget_reached(self, cap_usd: float | None, spent_usd: float) -> None:
        """The spending cap stopped a row from being sent (once per run)."""
        if self._once("budget"):
            emit(BUDGET_REACHED, destination_resource(self.dest),
                 self._payload(cap_usd=cap_usd, spent_usd=round(spent_usd, 6)))

    def quota_exhausted(self, provider: str, resets_at: str | None = None,
                        model: str | None = None) -> None:
        """A daily quota is spent: one model's (a provider's per-day 429 names the model whose
        quota it is) or the whole provider's (``model`` None: our ``requests_per_day``).
        Sent once per provider, model and run."""
        if self._once(f"quota:{provider}:{model or ''}"):
            emit(QUOTA_EXHAUSTED, provider_resource(provider),
                 self._payload(provider=provider, model=model, resets_at=resets_at),
                 [destination_resource(self.dest)])

    def breaker_changed(self, provider: str, state: str) -> None:
        """A provider's circuit breaker opened (no traffic) or closed (traffic again)."""
        event = BREAKER_OPENED if state == "open" else BREAKER_CLOSED
        emit(event, provider_resource(provider), self._payload(provider=provider, state=state),
             [destination_resource(self.dest)])

    def report_not_uploaded(self, error: str, report_path: str | None = None) -> None:
        """The run's report could not be written to the destination."""
        emit(REPORT_NOT_UPLOADED, destination_resource(self.dest),
             self._payload(error=error, report_path=report_path))
