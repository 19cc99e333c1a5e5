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


@pytest.mark.parametrize("rows", [4, 12])  # 12 x 2K cannot come back inline: the file route
def test_a_bad_batch_item_fails_its_row_and_the_rest_of_the_job_is_collected(
        rows, emulator, dest, tmp_path):
    emulator.configure(batch_delay_s=0.2)
    emulator.script("number 1", ["bad_batch_item"])
    emulator.script("number 2", ["png_bomb"])
    catalog = write_catalog(tmp_path / "c.csv", rows, resolution="2K", aspect_ratio="1:1")
    state, first = run_refresh(catalog=str(catalog), dest=dest, mode="batch", batch_poll_s=0.1)
    totals = first["totals"]
    assert totals["succeeded"] == rows - 2, totals
    assert totals["failures_by_class"] == {"batch_error": 1, "refused": 1}, totals
    emulator.clear_scripts()
    again, second = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                batch_poll_s=0.1)
    assert again.is_completed(), again.message
    assert second["totals"]["succeeded"] == 2
