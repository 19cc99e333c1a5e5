"""Current models and the true bill, end to end against the emulator speaking like Google:
a retired model stops the run before any paid request; usage cost equals the emulator's
token ledger to the cent; a relay still selling an old name is not blocked."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
from conftest import cli_command, cli_env, run_refresh, write_catalog
from PIL import Image
from test_routing_flow import providers_file

KEY = "google-like-key-0123456789"
GOOGLE_LIKE = {"kind": "gemini", "auth": "x-goog-api-key", "api_key_env": "MODELS_TEST_KEY",
               "billing": "usage"}


@pytest.fixture
def google_like(emulator, tmp_path, monkeypatch):
    """A providers file whose provider 'g' is the emulator as Google: key, usage billing."""
    monkeypatch.setenv("MODELS_TEST_KEY", KEY)
    emulator.configure(api_key=KEY)

    def write(**fields) -> str:
        return providers_file(tmp_path / "providers.toml", g={
            **GOOGLE_LIKE, "base_url": emulator.base_url, **fields})

    return write


def test_a_run_against_a_retired_model_stops_before_any_paid_request(
    emulator, google_like, local_s3, dest, tmp_path, prefect_api
):
    config = google_like(model="gemini-3-pro-image-preview")
    catalog = write_catalog(tmp_path / "c.csv", 5)
    env = {**cli_env(local_s3, emulator, prefect_api), "MODELS_TEST_KEY": KEY,
           "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool")}
    done = subprocess.run(
        cli_command("run", catalog, dest, "--provider", "g", "--providers-file", config,
                    "--no-progress"), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    flat = " ".join(done.stderr.split())
    assert "'gemini-3-pro-image-preview' was shut down on 2026-06-25" in flat
    assert "its replacement is 'gemini-3-pro-image'" in flat
    assert KEY not in done.stderr + done.stdout
    stats = emulator.stats()
    assert stats["requests"] == 0 and stats["model_lookups"] == {"404": 1}  # models.get only
    assert emulator.ledger()["images"] == 0 and emulator.ledger()["tokens"]["answers"] == 0


def test_a_retired_model_in_a_catalog_row_stops_the_run_too(
    emulator, google_like, s3_env, dest, tmp_path, prefect_api
):
    config = google_like()
    catalog = write_catalog(tmp_path / "c.csv", 4)
    frame = pd.read_csv(catalog)
    frame["model"] = ["", "gemini-3.1-flash-image", "gemini-3.1-flash-image-preview", ""]
    frame.to_csv(catalog, index=False)
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="g",
                                 providers_file=config)
    assert state.is_failed() and outcome is None
    assert "its replacement is 'gemini-3.1-flash-image'" in state.message
    assert emulator.stats()["model_lookups"] == {"200": 2, "404": 1}  # GETs only
    assert emulator.ledger()["images"] == 0


def _catalog_of_every_kind(tmp_path) -> str:
    """Rows of both families, all resolutions, reference images, a safety and a block."""
    Image.new("RGB", (64, 64), (10, 120, 200)).save(tmp_path / "ref.png")
    rows = []
    for i in range(12):
        rows.append({
            "sku": f"BILL-{i:02d}", "prompt": f"Studio photo of product number {i} " * (1 + i % 3),
            "resolution": ("1K", "2K", "4K")[i % 3],
            "model": "gemini-3.1-flash-image" if i % 4 == 1 else "",
            "reference_image": "ref.png" if i % 5 == 2 else ""})
    rows[7]["prompt"] = "Unsafe shot of product 7"
    rows[9]["prompt"] = "Blocked shot of product 9"
    path = tmp_path / "c.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_the_reports_usage_cost_equals_the_emulators_token_ledger_to_the_cent(
    emulator, google_like, s3_env, dest, tmp_path, prefect_api
):
    config = google_like()
    emulator.script("Unsafe shot", ["safety"])
    emulator.script("Blocked shot", ["blocked"])
    state, outcome = run_refresh(catalog=_catalog_of_every_kind(tmp_path), dest=dest,
                                 provider="g", providers_file=config, concurrency=4)
    totals = outcome["totals"]
    assert (totals["succeeded"], totals["failed"]) == (10, 2), state.message
    tokens = emulator.ledger()["tokens"]
    assert tokens["answers"] == 12 and tokens["tokens"]["input_image"] == 2 * 560
    assert round(totals["cost_usd"], 2) == round(tokens["usd"], 2)
    assert totals["cost_usd"] == pytest.approx(tokens["usd"], abs=1e-5)
    assert totals["cost_by_model"]["gemini-3.1-flash-image"] == pytest.approx(
        tokens["usd_by_model"]["gemini-3.1-flash-image"], abs=1e-5)
    # The bill is above the list prices (prompt and thinking tokens), and the two answers
    # without an image cost their prompt and thinking tokens, on a line of their own.
    assert totals["cost_usd"] > totals["list_cost_usd"] > 0
    assert totals["no_image_rows"] == 2 and 0 < totals["no_image_cost_usd"] < 0.02
    assert totals["list_cost_usd"] == pytest.approx(emulator.ledger()["usd"])


def test_a_relay_still_selling_a_retired_name_without_models_get_is_not_blocked(
    emulator, s3_env, dest, tmp_path, prefect_api, monkeypatch
):
    monkeypatch.setenv("MODELS_RELAY_KEY", KEY)
    emulator.configure(models=["gemini-3-pro-image-preview"], models_endpoint=False)
    config = providers_file(tmp_path / "p.toml", relay={
        "kind": "gemini", "auth": "bearer", "base_url": emulator.base_url,
        "api_key_env": "MODELS_RELAY_KEY",
        "model": "gemini-3-pro-image-preview", "prices": {"1K": 0.05, "2K": 0.05, "4K": 0.05}})
    catalog = write_catalog(tmp_path / "c.csv", 3)
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="relay",
                                 providers_file=config)
    assert state.is_completed(), state.message
    totals = outcome["totals"]
    assert totals["succeeded"] == 3 and totals["cost_usd"] == pytest.approx(0.15)
    assert emulator.stats()["model_lookups"] == {"405": 1}  # the models.get it could not answer


def test_batch_mode_bills_usage_at_half_rates_one_job_per_model(
    emulator, google_like, s3_env, dest, tmp_path, prefect_api
):
    config = google_like()
    emulator.configure(batch_delay_s=0.2)
    emulator.script("Unsafe shot", ["safety"])
    catalog = write_catalog(tmp_path / "c.csv", 6, resolution="1K")
    frame = pd.read_csv(catalog)
    frame["model"] = ["", "gemini-3.1-flash-image", "", "gemini-3.1-flash-image", "", ""]
    frame.loc[4, "prompt"] = "Unsafe shot of product 4"
    frame.to_csv(catalog, index=False)
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="g",
                                 providers_file=config, mode="batch", batch_poll_s=0.1)
    totals = outcome["totals"]
    assert (totals["succeeded"], totals["failed"]) == (5, 1), state.message
    tokens = emulator.ledger()["tokens"]
    assert tokens["answers"] == 6
    assert totals["cost_usd"] == pytest.approx(tokens["usd"], abs=1e-5)
    assert totals["list_cost_usd"] == pytest.approx(3 * 0.067 + 2 * 0.0335)
    assert emulator.ledger()["by_model"] == {"gemini-3-pro-image": 3,
                                             "gemini-3.1-flash-image": 2}
