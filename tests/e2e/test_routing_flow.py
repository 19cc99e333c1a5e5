"""Quota-exact throughput, failover and priority routing, end to end on real parts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import run_refresh, write_catalog

from catalog_images.catalog.fingerprint import sha256_hex
from catalog_images.devtools.emulator import Emulator, EmulatorConfig
from catalog_images.devtools.prefect_server import free_port

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return str(value)


def providers_file(path: Path, **providers: dict) -> str:
    """Write a TOML providers file: name -> fields."""
    lines = []
    for name, fields in providers.items():
        lines.append(f"[providers.{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in fields.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return str(path)


@pytest.fixture
def emulators():
    started: list[Emulator] = []

    def make(**config) -> Emulator:
        emu = Emulator(EmulatorConfig(**config)).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@contextmanager
def emulator_apart(*flags: str) -> Iterator[str]:
    """The emulator in a process of its own, as a provider is; yields its URL. In this
    process's thread, a busy CI machine made it stamp a window's requests late (the flow
    holds the GIL), so that the next window's, sent on time, met a 429."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "catalog_images.devtools.emulator",
                             "--port", str(port), *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_emulator/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "emulator not up"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_configured_rpm_equal_to_the_quota_is_used_fully_without_429(dest, tmp_path):
    with emulator_apart("--latency", "0.05", "--rpm", "30", "--window", "6") as url:
        config = providers_file(tmp_path / "p.toml", quota={
            "kind": "emulator", "base_url": url, "requests_per_window": 30, "window_s": 6.0})
        catalog = write_catalog(tmp_path / "c.csv", 90, resolution="1K")
        state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="quota",
                                     providers_file=config, concurrency=64)
        assert state.is_completed(), state.message
        assert httpx.get(f"{url}/_emulator/stats", timeout=5).json()["quota_429"] == 0
    stats = outcome["totals"]["providers"]["quota"]
    assert stats["requests"] == 90 and stats["429s"] == 0
    # 90 requests over 3 windows: sent at 0, 6 and 12 s, the span is 12 s and the utilization
    # 1.0; the limiter's 50 ms margin per window gives 0.992. Event-loop lateness at each
    # window boundary, and the time a busy process takes to send a window's 30 requests,
    # lower it on a loaded machine (CI saw 0.9698, 0.9314, then 0.8667: a span of 14.8 s).
    # A limiter that left a window unused (span 18 s) gives 0.75, one that paced evenly at 5
    # per second 0.76: 0.82 (a span of 16 s) still tells them apart.
    assert stats["quota_utilization"] >= 0.82, stats


def test_configured_rpm_above_the_real_quota_still_finishes_every_row(
    emulators, dest, tmp_path
):
    emu = emulators(latency_s=0.05, rpm=30, quota_window_s=6.0)
    config = providers_file(tmp_path / "p.toml", optimistic={
        "kind": "emulator", "base_url": emu.base_url, "requests_per_window": 60, "window_s": 6.0})
    catalog = write_catalog(tmp_path / "c.csv", 90, resolution="1K")
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="optimistic",
                                 providers_file=config, concurrency=64)
    assert state.is_completed(), state.message
    totals = outcome["totals"]
    assert totals["succeeded"] == 90
    assert emu.stats()["quota_429"] > 0
    stats = totals["providers"]["optimistic"]
    images_per_window = 90 / (stats["busy_s"] / 6.0 + 1)
    # bench.quota measures the real figure (0.98 here); this guards against a collapse (429s
    # answered with backoff halve it), with room for four workers on two cores stretching
    # the busy time (0.77 under an artificial load of two more busy processes)
    assert images_per_window >= 0.7 * 30, stats


def test_traffic_moves_off_a_failing_provider_and_comes_back(emulators, dest, tmp_path):
    first = emulators(latency_s=0.1)
    second = emulators(latency_s=0.1)
    config = providers_file(
        tmp_path / "p.toml",
        first={"kind": "emulator", "base_url": first.base_url},
        second={"kind": "emulator", "base_url": second.base_url},
    )
    catalog = write_catalog(tmp_path / "c.csv", 400, resolution="1K")
    timeline: dict[str, float] = {}

    def outage():
        while first.ledger()["images"] < 60:
            time.sleep(0.02)
        first.configure(faults={"503": 1.0})
        timeline["failing"] = time.monotonic()
        while second.ledger()["images"] == 0:
            time.sleep(0.02)
        timeline["second_serving"] = time.monotonic()
        time.sleep(2.0)
        timeline["images_before_recovery"] = first.ledger()["images"]
        first.configure(faults={})
        timeline["recovered"] = time.monotonic()

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    state, outcome = run_refresh(
        catalog=str(catalog), dest=dest, provider="first", fallback_providers=["second"],
        providers_file=config, concurrency=4, breaker_cooldown_s=1.0,
    )
    thread.join(timeout=30)
    assert state.is_completed(), state.message
    assert timeline["second_serving"] - timeline["failing"] < 10.0
    providers = outcome["totals"]["providers"]
    assert providers["first"]["failovers_out"] > 0 and providers["second"]["failovers_in"] > 0
    assert providers["first"]["breaker_opened"] >= 1
    assert first.ledger()["images"] > timeline["images_before_recovery"]  # traffic came back
    assert first.ledger()["images"] + second.ledger()["images"] == 400
    assert not first.duplicates() and not second.duplicates()
    assert outcome["totals"]["succeeded"] == 400


def test_high_priority_rows_go_to_the_priority_provider(emulators, dest, tmp_path):
    official = emulators(latency_s=0.02)
    relay = emulators(latency_s=0.02)
    config = providers_file(
        tmp_path / "p.toml",
        official={"kind": "emulator", "base_url": official.base_url},
        relay={"kind": "emulator", "base_url": relay.base_url,
               "prices": {"1K": 0.05, "2K": 0.05, "4K": 0.05}},
    )
    frame = pd.DataFrame({"sku": [f"S{i}" for i in range(20)],
                          "prompt": [f"product {i}" for i in range(20)],
                          "priority": ["high" if i % 4 == 0 else "normal" for i in range(20)]})
    frame.to_csv(tmp_path / "c.csv", index=False)
    state, outcome = run_refresh(catalog=str(tmp_path / "c.csv"), dest=dest, provider="relay",
                                 priority_providers=["official"], providers_file=config)
    assert state.is_completed(), state.message
    high = {sha256_hex(f"product {i}") for i in range(0, 20, 4)}
    assert set(official.ledger()["by_prompt"]) == high
    assert set(relay.ledger()["by_prompt"]).isdisjoint(high)
    assert len(relay.ledger()["by_prompt"]) == 15
    totals = outcome["totals"]
    assert totals["cost_by_provider"] == pytest.approx({"official": 5 * 0.134,
                                                        "relay": 15 * 0.05})


def test_global_limits_pace_requests_through_a_prefect_rate_limit(emulator, dest, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    async def create_limit():
        async with get_client() as client:
            await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                name="catalog-images-emulator", limit=4, slot_decay_per_second=4.0))

    import asyncio

    asyncio.run(create_limit())
    emulator.configure(latency_s=0.01)
    catalog = write_catalog(tmp_path / "c.csv", 16, resolution="1K")
    state, free = run_refresh(catalog=str(catalog), dest=dest + "-free", concurrency=16)
    state, paced = run_refresh(catalog=str(catalog), dest=dest, concurrency=16,
                               global_limits=True)
    assert state.is_completed(), state.message
    assert paced["totals"]["succeeded"] == 16
    # 4 slots decaying at 4/s: 16 requests need about 3 s; unpaced they take a fraction (0.3 s
    # quiet, 1.6 s with four test workers on two cores: the pacing is measured against them).
    paced_s = paced["totals"]["providers"]["emulator"]["busy_s"]
    free_s = free["totals"]["providers"]["emulator"]["busy_s"]
    assert paced_s >= 2.0
    assert paced_s - free_s >= 1.0, (paced_s, free_s)
