"""Every provider wire format end to end: catalog → emulator → S3 → report."""

from __future__ import annotations

import pytest
from conftest import run_refresh, write_catalog
from test_routing_flow import providers_file

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")

# The emulator serves result files over http on loopback: allowed for these providers only.
LOOPBACK_RESULTS = {"results_allow_http": True, "results_private_networks": ["127.0.0.1/32"]}
FORMATS = {
    "gemini-bearer": {"kind": "gemini", "auth": "bearer"},
    "openai-b64": {"kind": "openai-images", "auth": "bearer"},
    "openai-url": {"kind": "openai-images", "auth": "bearer", "response_format": "url",
                   **LOOPBACK_RESULTS},
    "async-task": {"kind": "async-task", "auth": "bearer", "model": "nano-banana-pro",
                   "poll_initial_s": 0.05, "poll_max_s": 0.2, "task_deadline_s": 30,
                   **LOOPBACK_RESULTS},
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_wire_format_delivers_images_to_s3_billed_once(
    name, emulator, local_s3, dest, tmp_path, monkeypatch
):
    monkeypatch.setenv("RELAY_KEY", "relay-key-for-tests-123456")
    emulator.configure(api_key="relay-key-for-tests-123456")
    emulator.script("number 2", ["503"])
    config = providers_file(tmp_path / "p.toml", **{name: {
        **FORMATS[name], "base_url": emulator.base_url, "api_key_env": "RELAY_KEY"}})
    catalog = write_catalog(tmp_path / "c.csv", 6, aspect_ratio="16:9", resolution="1K")
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider=name,
                                 providers_file=config, concurrency=4)
    assert state.is_completed(), state.message
    totals = outcome["totals"]
    assert totals["succeeded"] == 6
    assert totals["retries_by_class"] == {"unavailable": 1}
    ledger = emulator.ledger()
    assert ledger["images"] == 6 and not emulator.duplicates()
    assert totals["cost_usd"] == pytest.approx(ledger["usd"])
    bucket, prefix = dest[5:].split("/", 1)
    head = local_s3.client().head_object(Bucket=bucket, Key=f"{prefix}/images/SKU-00003.png")
    assert head["Metadata"]["provider"] == name
