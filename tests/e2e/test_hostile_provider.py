"""Hostile providers end to end: the emulator's hostile mode, a real flow, SeaweedFS, Prefect.

Every hostile answer must end as a clear row failure (or a retried success), no request
carrying the key may reach the second host (the emulator's CDN-like result host records
every header it got), and the next run of the same destination must deliver every row.
"""

from __future__ import annotations

import pytest
from conftest import run_refresh, write_catalog
from test_routing_flow import providers_file

from catalog_images.devtools.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")

KEY = "hostile-relay-key-0123456789abcdef"
CAP = 4 * 1024 * 1024
COMMON = {"auth": "bearer", "api_key_env": "HOSTILE_RELAY_KEY", "max_response_bytes": CAP,
          "results_allow_http": True, "results_private_networks": ["127.0.0.1/32"],
          "timeout_s": 10.0}
# provider fields, and the fault scripted for row N -> the row's expected outcome
CASES = {
    "gemini": ({"kind": "gemini"}, {
        "oversized": "refused", "gzip_bomb": "refused", "deep_json": "refused",
        "png_bomb": "refused", "bad_base64": "succeeded"}),
    "openai-url": ({"kind": "openai-images", "response_format": "url"}, {
        "url_link_local": "refused", "url_loopback": "refused", "url_redirect": "bad_response",
        "png_bomb": "refused", "gzip_bomb": "refused"}),
    "async-task": ({"kind": "async-task", "model": "nano-banana-pro", "poll_initial_s": 0.05,
                    "poll_max_s": 0.2, "task_deadline_s": 30}, {
        "url_link_local": "refused", "url_loopback": "refused", "url_redirect": "bad_response",
        "png_bomb": "refused", "deep_json": "refused"}),
}


@pytest.fixture
def hostile_emulator():
    emu = Emulator(EmulatorConfig(latency_s=0.02, seed=5, api_key=KEY,
                                  hostile_bytes=4 * CAP)).start(second_host=True)
    try:
        yield emu
    finally:
        emu.stop()


def _rows(outcome: dict) -> dict[str, str]:
    """sku -> "succeeded" or the failure's error class, from the run's manifest."""
    import pandas as pd

    manifest = pd.read_parquet(outcome["report"]["manifest_uri"] if "report" in outcome
                               else outcome["manifest_uri"])
    return {row.sku: (row.status if row.status != "failed" else row.error_class)
            for row in manifest.itertuples()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_answers_fail_their_rows_and_no_key_reaches_another_host(
        name, hostile_emulator, dest, tmp_path, monkeypatch):
    monkeypatch.setenv("HOSTILE_RELAY_KEY", KEY)
    fields, faults = CASES[name]
    config = providers_file(tmp_path / "p.toml", **{name: {
        **COMMON, **fields, "base_url": hostile_emulator.base_url}})
    count = len(faults) + 2
    catalog = write_catalog(tmp_path / "c.csv", count, aspect_ratio="1:1", resolution="1K")
    for index, fault in enumerate(faults):
        hostile_emulator.script(f"number {index}", [fault])
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider=name,
                                 providers_file=config, concurrency=4)
    totals = outcome["totals"]
    expected_failures: dict[str, int] = {}
    for expected in faults.values():
        if expected != "succeeded":
            expected_failures[expected] = expected_failures.get(expected, 0) + 1
    assert totals["failures_by_class"] == expected_failures, totals
    assert totals["succeeded"] == count - sum(expected_failures.values())
    assert not state.is_completed()  # accepted rows without an image: the run says so

    foreign = hostile_emulator.foreign_requests()
    if name != "gemini":
        assert foreign, "results should come from the second host"
    for seen in foreign:
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        assert "authorization" not in headers and "x-goog-api-key" not in headers
        assert KEY not in str(seen)

    hostile_emulator.clear_scripts()
    again, outcome = run_refresh(catalog=str(catalog), dest=dest, provider=name,
                                 providers_file=config, concurrency=4)
    assert again.is_completed(), again.message
    assert outcome["totals"]["failures_by_class"] == {}
