"""Every kind of 429 and stopping means stopping, end to end: the real flow against the real
emulator (per-day and spend-cap 429s, hints of any length, configuration errors) with a real
Prefect API and SeaweedFS, and a SIGTERM to the real CLI while rows wait on a one-hour pause."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import cli_command, cli_env, run_refresh, stop_while_paused, write_catalog

from catalog_images.devtools.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")


def providers_file(path: Path, **providers: dict) -> str:
    """A TOML providers file: name -> fields (strings and numbers)."""
    lines = []
    for name, fields in providers.items():
        lines.append(f"[providers.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def emulators():
    started: list[Emulator] = []

    def make(**config) -> Emulator:
        emu = Emulator(EmulatorConfig(latency_s=0.02, seed=3, **config)).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


def rows_by_status(outcome: dict, tmp_path: Path) -> dict[str, list[dict]]:
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["status"], []).append(row)
    return grouped


def test_a_per_day_429_without_a_fallback_skips_the_remaining_rows_and_ends(
    emulators, dest, tmp_path
):
    google = emulators(rpd=5)
    config = providers_file(tmp_path / "p.toml", google={
        "kind": "emulator", "base_url": google.base_url})
    catalog = write_catalog(tmp_path / "c.csv", 20)
    started = time.monotonic()
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="google",
                                 providers_file=config, concurrency=4,
                                 report_path=str(tmp_path / "r.json"))
    rows = rows_by_status(outcome, tmp_path)
    assert time.monotonic() - started < 60
    assert len(rows["succeeded"]) == 5 and len(rows["skipped"]) == 15
    assert all(r["reason"].startswith("daily quota (resets 20") for r in rows["skipped"])
    assert google.stats()["daily_429"] <= 4  # only what was in flight hit the refusal
    assert state.is_failed() and "15 rows left because provider google: per-day quota" in (
        state.message)
    assert outcome["totals"]["providers"]["google"]["rows_left"] == 15


def test_a_per_day_429_sends_every_remaining_row_to_the_fallback(emulators, dest, tmp_path):
    google, relay = emulators(rpd=5), emulators()
    config = providers_file(tmp_path / "p.toml",
                            google={"kind": "emulator", "base_url": google.base_url},
                            relay={"kind": "emulator", "base_url": relay.base_url})
    catalog = write_catalog(tmp_path / "c.csv", 20)
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="google",
                                 fallback_providers=["relay"], providers_file=config,
                                 concurrency=4, report_path=str(tmp_path / "r.json"))
    assert state.is_completed() and outcome["totals"]["succeeded"] == 20
    assert google.ledger()["images"] == 5 and relay.ledger()["images"] == 15
    assert google.stats()["daily_429"] <= 4
    assert "per-day quota" in outcome["totals"]["providers"]["google"]["out"]


def test_a_spend_cap_429_stops_paid_requests_with_a_clear_message(emulators, dest, tmp_path):
    google = emulators(spend_cap_after=6)
    config = providers_file(tmp_path / "p.toml", google={
        "kind": "emulator", "base_url": google.base_url})
    catalog = write_catalog(tmp_path / "c.csv", 30)
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="google",
                                 providers_file=config, concurrency=4,
                                 report_path=str(tmp_path / "r.json"))
    rows = rows_by_status(outcome, tmp_path)
    assert google.ledger()["images"] == 6 and len(rows["skipped"]) == 24
    assert google.stats()["requests"] <= 6 + 4  # after the first refusal: only those in flight
    assert {r["reason"] for r in rows["skipped"]} == {"spend cap (provider billing limit)"}
    assert "raise the spend cap, top up the prepaid balance" in state.message


def test_a_retry_after_of_a_billion_seconds_puts_the_provider_out_not_the_run_to_sleep(
    emulators, dest, tmp_path
):
    google = emulators(retry_after_header=True, fault_retry_delay_s=1e9)
    google.script("number 3", ["429"])
    config = providers_file(tmp_path / "p.toml", google={
        "kind": "emulator", "base_url": google.base_url})
    catalog = write_catalog(tmp_path / "c.csv", 12)
    started = time.monotonic()
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="google",
                                 providers_file=config, concurrency=2,
                                 report_path=str(tmp_path / "r.json"))
    rows = rows_by_status(outcome, tmp_path)
    assert time.monotonic() - started < 60 and state.is_failed()
    assert rows["skipped"] and all(r["reason"].startswith("out for now: asked to wait "
                                                          "1000000000 s, over the 120 s cap")
                                   for r in rows["skipped"])
    assert len(rows["succeeded"]) + len(rows["skipped"]) == 12


@pytest.mark.parametrize("problem", ["unknown model", "bad key"])
def test_a_configuration_error_ends_the_run_at_once_instead_of_waiting_for_a_breaker(
    emulators, dest, tmp_path, monkeypatch, problem
):
    relay = emulators(models=("nano-banana-pro",), api_key="the-right-key")
    monkeypatch.setenv("QUOTA_TEST_RELAY_KEY",
                       "a-wrong-key" if problem == "bad key" else "the-right-key")
    model = "retired-model" if problem == "unknown model" else "nano-banana-pro"
    config = providers_file(tmp_path / "p.toml", relay={
        "kind": "openai-images", "base_url": relay.base_url, "auth": "bearer",
        "model": model, "api_key_env": "QUOTA_TEST_RELAY_KEY"})
    catalog = write_catalog(tmp_path / "c.csv", 30)
    started = time.monotonic()
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="relay",
                                 providers_file=config, concurrency=4,
                                 max_provider_wait_s=300.0,
                                 report_path=str(tmp_path / "r.json"))
    rows = rows_by_status(outcome, tmp_path)
    assert time.monotonic() - started < 60 and relay.stats()["requests"] <= 4
    assert len(rows["failed"]) == 30 and state.is_failed()
    expected = "not_found" if problem == "unknown model" else "auth"
    assert {r["error_class"] for r in rows["failed"]} == {expected}
    assert all("provider configuration" in r["reason"] for r in rows["failed"])


@pytest.mark.scenario
def test_sigterm_while_rows_wait_on_a_one_hour_pause_ends_the_run_within_seconds(
    emulator, local_s3, dest, tmp_path, prefect_api
):
    emulator.configure(fault_retry_delay_s=3600.0, retry_after_header=True)
    emulator.script("product", ["ok"] * 3 + ["429"] * 8)
    catalog = write_catalog(tmp_path / "c.csv", 24)
    report = tmp_path / "r.json"
    command = cli_command("run", catalog, dest, "--concurrency", "2", "--no-progress",
                          "--max-retry-hint", "7200", "--report", str(report))
    code, stderr, took = stop_while_paused(emulator, command,
                                           cli_env(local_s3, emulator, prefect_api))
    # Rows stop waiting at once; the rest is writing the report (slower on a loaded machine).
    assert took < 30, stderr[-2000:]
    assert _logged_at(stderr, "SIGTERM: no new provider request") + 3 > _logged_at(
        stderr, "Task run 'generate-rows-1-24' - Finished"), stderr[-3000:]
    assert code == 1 and "Traceback" not in stderr, stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    assert len(rows) == 24 and sum(r["status"] == "succeeded" for r in rows) == 3
    assert emulator.duplicates() == {} and emulator.ledger()["images"] == 3


def _logged_at(log: str, text: str) -> float:
    """Seconds since midnight of the first log line containing ``text``."""
    line = next(line for line in log.splitlines() if text in line)
    hours, minutes, seconds = line.split(" ", 1)[0].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
