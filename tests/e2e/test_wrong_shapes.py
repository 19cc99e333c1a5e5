"""Paid images of the wrong shape, on real parts (emulator over HTTP, SeaweedFS, Prefect):
kept under quarantine/ and never paid for again unless forced; accepted; or failed as paid."""

from __future__ import annotations

import json

import pytest
from conftest import run_refresh, write_catalog

from catalog_images.catalog.fingerprint import sha256_hex
from catalog_images.models import QUARANTINED_EARLIER

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")


def _prompt(number: int) -> str:
    return f"Studio photo of product SKU number {number}"


def _rows(outcome: dict) -> dict[str, dict]:
    with open(outcome["report_path"]) as handle:
        return {row["sku"]: row for row in json.load(handle)["rows"]}


def _run(catalog, dest, tmp_path, name: str, **params):
    state, outcome = run_refresh(catalog=str(catalog), dest=dest,
                                 report_path=str(tmp_path / f"{name}.json"), **params)
    return state, outcome, _rows(outcome)


def test_quarantined_images_round_trip_and_are_not_paid_for_twice(
    emulator, local_s3, dest, tmp_path
):
    catalog = write_catalog(tmp_path / "c.csv", 6, resolution="1K")
    for number in (1, 4):
        emulator.script(_prompt(number), ["wrong_shape"])
    state, outcome, rows = _run(catalog, dest, tmp_path, "first")
    totals = outcome["totals"]
    assert (totals["succeeded"], totals["quarantined"], totals["failed"]) == (4, 2, 0)
    assert state.is_failed() and "2 rows got an image of the wrong shape" in state.message
    assert emulator.ledger()["images"] == 6 and totals["cost_usd"] == pytest.approx(6 * 0.134)
    bucket, prefix = dest[5:].split("/", 1)
    client = local_s3.client()
    for sku in ("SKU-00001", "SKU-00004"):
        row = rows[sku]
        assert (row["status"], row["error_class"], row["s3_key"]) == (
            "quarantined", "wrong_shape", f"{prefix}/quarantine/{sku}.png")
        assert row["reason"] == "wrong shape: image is 1368x768, not aspect ratio 1:1"
        assert row["cost_usd"] == 0.134
        head = client.head_object(Bucket=bucket, Key=row["s3_key"])
        assert head["Metadata"]["wrong-shape"] == row["reason"]
        assert head["ContentLength"] == row["bytes"]
        images = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/images/{sku}.")
        assert images.get("KeyCount", 0) == 0  # never among the images
    assert rows["SKU-00000"]["s3_key"] == f"{prefix}/images/SKU-00000.png"
    ledger_row = json.loads(client.get_object(
        Bucket=bucket, Key=f"{prefix}/runs/{outcome['run_id']}/summary.json")["Body"].read())
    assert ledger_row["quarantined"] == 2

    requests = emulator.stats()["requests"]
    state, outcome, rows = _run(catalog, dest, tmp_path, "second")
    assert state.is_completed() and emulator.stats()["requests"] == requests
    assert outcome["totals"]["skipped"] == 6 and outcome["totals"]["quarantined"] == 0
    assert rows["SKU-00001"]["reason"] == QUARANTINED_EARLIER
    assert rows["SKU-00000"]["reason"] == "unchanged"



def test_without_the_index_quarantined_images_are_found_and_forcing_pays_again(
    emulator, local_s3, dest, tmp_path
):
    catalog = write_catalog(tmp_path / "c.csv", 3, resolution="1K")
    emulator.script(_prompt(1), ["wrong_shape"])
    state, outcome, rows = _run(catalog, dest, tmp_path, "first")
    assert rows["SKU-00001"]["status"] == "quarantined"
    bucket, prefix = dest[5:].split("/", 1)
    client = local_s3.client()
    for item in client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/state/")["Contents"]:
        client.delete_object(Bucket=bucket, Key=item["Key"])
    state, outcome, rows = _run(catalog, dest, tmp_path, "no-index")
    assert state.is_completed() and emulator.ledger()["images"] == 3
    assert rows["SKU-00001"]["reason"] == QUARANTINED_EARLIER  # found by List + HEAD

    state, outcome, rows = _run(catalog, dest, tmp_path, "forced", force_skus=["SKU-00001"])
    assert state.is_completed() and outcome["totals"]["succeeded"] == 1
    assert rows["SKU-00001"]["s3_key"] == f"{prefix}/images/SKU-00001.png"
    assert emulator.ledger()["by_prompt"][sha256_hex(_prompt(1))] == 2  # forced: paid again
    assert emulator.ledger()["by_prompt"][sha256_hex(_prompt(2))] == 1


def test_accept_keeps_the_image_with_a_note(emulator, local_s3, dest, tmp_path):
    emulator.configure(faults={"wrong_shape": 1.0}, wrong_aspect_ratio="4:5")
    catalog = write_catalog(tmp_path / "c.csv", 2, resolution="1K", aspect_ratio="16:9")
    state, outcome, rows = _run(catalog, dest, tmp_path, "accept", wrong_shape="accept")
    assert state.is_completed() and outcome["totals"]["succeeded"] == 2
    row = rows["SKU-00000"]
    assert row["reason"] == "accepted: wrong shape: image is 912x1144, not aspect ratio 16:9"
    assert row["s3_key"].endswith("/images/SKU-00000.png") and row["cost_usd"] == 0.134


def test_fail_discards_the_image_and_the_report_says_it_was_paid(emulator, local_s3, dest,
                                                                 tmp_path):
    emulator.configure(faults={"wrong_shape": 1.0}, wrong_image_size="2K")
    catalog = write_catalog(tmp_path / "c.csv", 2, resolution="1K", aspect_ratio="1:1")
    state, outcome, rows = _run(catalog, dest, tmp_path, "fail", wrong_shape="fail")
    totals = outcome["totals"]
    assert state.is_failed() and totals["failed"] == 2
    assert totals["cost_usd"] == pytest.approx(emulator.ledger()["usd"]) == pytest.approx(0.268)
    row = rows["SKU-00001"]
    assert (row["status"], row["error_class"]) == ("failed", "wrong_shape")
    assert row["reason"] == ("wrong shape: image is 2728x1536, not aspect ratio 1:1 or "
                             "resolution 1K; paid $0.1340, image discarded (wrong_shape=fail)")
    bucket, prefix = dest[5:].split("/", 1)
    listed = local_s3.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    assert not [o["Key"] for o in listed.get("Contents", [])
                if "/images/" in o["Key"] or "/quarantine/" in o["Key"]]


def test_batch_mode_quarantines_the_same_way_and_never_pays_twice(emulator, dest, tmp_path):
    emulator.configure(batch_delay_s=0.3)
    catalog = write_catalog(tmp_path / "c.csv", 4, resolution="1K")
    emulator.script(_prompt(2), ["wrong_shape"])
    state, outcome, rows = _run(catalog, dest, tmp_path, "batch", mode="batch",
                                batch_poll_s=0.1)
    assert (outcome["totals"]["succeeded"], outcome["totals"]["quarantined"]) == (3, 1)
    assert rows["SKU-00002"]["s3_key"].endswith("/quarantine/SKU-00002.png")
    assert rows["SKU-00002"]["cost_usd"] == 0.067  # at the batch price
    state, outcome, rows = _run(catalog, dest, tmp_path, "again", mode="batch",
                                batch_poll_s=0.1)
    assert state.is_completed() and rows["SKU-00002"]["reason"] == QUARANTINED_EARLIER
    assert emulator.ledger()["images"] == 4 and not emulator.duplicates()
