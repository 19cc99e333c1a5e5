"""When a provider is out: its per-day quota is spent, a spend cap or billing problem stops
it, a configuration error answers every request the same, or it asks for a wait longer
than the run is willing to give (the retry-hint cap).

An out provider gets no new request; its rows go to the next provider of their route at
once, or end with the out's reason (skipped for quotas and spend, failed for configuration
errors), so a run never waits hours on a hint or a breaker for something no retry fixes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from catalog_images.providers.errors import CONFIG_ERRORS, ErrorClass, ProviderError

PACIFIC = ZoneInfo("America/Los_Angeles")  # Gemini's per-day quotas reset at its midnight
WHAT_TO_DO = {
    ErrorClass.DAILY_QUOTA: "its rows go to the fallback providers, or are skipped for the "
    "next run; run again after the reset, or raise the daily quota",
    ErrorClass.SPEND_CAP: "no further paid request goes to it this run; raise the spend cap, "
    "top up the prepaid balance or check the billing tier in the provider's billing "
    "console, then run again",
    ErrorClass.RATE_LIMITED: "its rows go to the fallback providers, or are skipped for the "
    "next run; raise max_retry_hint_s to wait longer",
    ErrorClass.AUTH: "fix the key (or its permissions) in the providers file or the "
    "environment, then run again",
    ErrorClass.NOT_FOUND: "fix the model name or base_url in the providers file, then run "
    "again",
    ErrorClass.BILLING_DISABLED: "enable billing for the key's project, then run again",
}


@dataclass(frozen=True)
class ProviderOut:
    """Why a provider takes no new request, until when, and what the rows say."""

    error_class: ErrorClass
    reason: str  # the row reason, e.g. "daily quota (resets 2026-12-01 08:00 UTC)"
    message: str  # the run-level message: what happened and what to do
    until: float | None = None  # time.monotonic() it may be asked again; None: not this run
    model: str | None = None  # the one model it holds for (per-day quota, 404); None: all
    resets_at: str | None = None  # when a spent quota comes back, e.g. "2026-12-01 08:00 UTC"

    def active(self, now: float | None = None) -> bool:
        """True while the provider is out."""
        return self.until is None or (now if now is not None else time.monotonic()) < self.until

    def row_error(self) -> ProviderError:
        """The error a row ends with when no other provider of its route is left."""
        return ProviderError(self.error_class, self.reason)


def next_pacific_midnight(now: datetime | None = None) -> datetime:
    """The next midnight in US Pacific time, in UTC."""
    local = (now or datetime.now(UTC)).astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), PACIFIC)
    return midnight.astimezone(UTC)


def _clock(seconds: float | None) -> str:
    when = (datetime.now(UTC) + timedelta(seconds=seconds) if seconds is not None
            else next_pacific_midnight())
    return when.strftime("%Y-%m-%d %H:%M UTC")


def out_for(name: str, error: ProviderError, max_hint_s: float,
            model: str | None = None) -> ProviderOut | None:
    """The out state an answer to a request for ``model`` puts provider ``name`` in, or None
    when retrying may help.

    A per-day quota is per (provider, model) on Google (PerDayPerProjectPerModel), and a 404
    names one model: those outs hold for ``model`` only; the others for the whole provider.
    ``max_hint_s``: the longest server retry hint waited for; a longer one is "out for now".
    """
    hint, now, cls = error.retry_after_s, time.monotonic(), error.error_class
    of_model = f" of {model}" if model else ""
    if cls is ErrorClass.DAILY_QUOTA and error.status is not None:
        until, resets_at = now + hint if hint else None, _clock(hint)
        what = f"{name}: per-day quota{of_model} spent ({error.message}); {WHAT_TO_DO[cls]}"
        return ProviderOut(cls, f"daily quota (resets {resets_at})", what, until, model, resets_at)
    if cls is ErrorClass.SPEND_CAP:
        what = f"{name}: spend cap, prepay balance or billing tier ({error.message}); "
        return ProviderOut(cls, "spend cap (provider billing limit)", what + WHAT_TO_DO[cls])
    if cls is ErrorClass.NOT_FOUND:
        what = (f"{name}: {error} on a request{of_model}; every request{of_model} would get "
                f"it: {WHAT_TO_DO[cls]}")
        return ProviderOut(cls, f"{error} (provider configuration)", what, None, model)
    if cls in CONFIG_ERRORS:
        what = f"{name}: {error} on a request; every request would get it: {WHAT_TO_DO[cls]}"
        return ProviderOut(cls, f"{error} (provider configuration)", what)
    if cls in (ErrorClass.RATE_LIMITED, ErrorClass.UNAVAILABLE) and hint and hint > max_hint_s:
        resets_at = _clock(min(hint, 10 * 365 * 86400))
        reason = (f"out for now: asked to wait {hint:.0f} s, over the {max_hint_s:.0f} s cap "
                  f"(retry after {resets_at})")
        what = f"{name}: {reason}; {WHAT_TO_DO[ErrorClass.RATE_LIMITED]}"
        return ProviderOut(ErrorClass.DAILY_QUOTA, reason, what, now + hint, resets_at=resets_at)
    return None
