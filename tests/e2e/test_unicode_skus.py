"""SKUs in any script round-trip exactly through a whole run on real parts: catalog, keys,
S3 metadata, index, report, manifest and contact sheet; unsafe ones are still rejected."""

from __future__ import annotations

import json
from urllib.parse import quote

import pandas as pd
import pytest
from conftest import run_refresh

from catalog_images.destination.object_meta import decode_value

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")

GOOD = ["café-mug", "Kaffeetasse-groß", "茶杯-01", "блюдо 7", "MUG-1"]
BAD = {"inv\u202egnp": "U+202E", "cafe\u0301-mug": "duplicate sku", "../x": "escape"}


def test_unicode_skus_round_trip_through_a_run(emulator, local_s3, dest, tmp_path):
    skus = [*GOOD, *BAD]
    catalog = tmp_path / "c.csv"
    pd.DataFrame({"sku": skus, "prompt": [f"Photo of product {i}" for i in range(len(skus))],
                  "resolution": "1K"}).to_csv(catalog, index=False)
    report_path = tmp_path / "report.json"
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, report_path=str(report_path))
    assert state.is_completed(), state.message
    assert (outcome["totals"]["succeeded"], outcome["totals"]["rejected"]) == (5, 3)
    rows = {row["row"]: row for row in json.loads(report_path.read_text())["rows"]}
    bucket, prefix = dest[5:].split("/", 1)
    client = local_s3.client()
    for number, sku in enumerate(GOOD, start=1):
        row = rows[number]
        assert row["sku"] == sku and row["status"] == "succeeded"
        assert row["s3_key"] == f"{prefix}/images/{sku}.png"
        head = client.head_object(Bucket=bucket, Key=row["s3_key"])
        assert head["Metadata"]["sku"].isascii()  # S3 metadata travels as HTTP headers
        assert decode_value(head["Metadata"]["sku"]) == sku
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/images/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"{prefix}/images/{s}.png" for s in GOOD)
    for number, reason in enumerate(BAD.values(), start=len(GOOD) + 1):
        assert rows[number]["status"] == "rejected" and reason in rows[number]["reason"]

    run_folder = outcome["report_uri"].rsplit("/", 1)[0].split("/", 3)[3]
    page = client.get_object(Bucket=bucket, Key=f"{run_folder}/contact-sheet.html")
    html = page["Body"].read().decode("utf-8")
    for sku in GOOD:
        assert f">{sku}</figcaption>" in html and quote(f"images/{sku}.png") in html

    requests = emulator.stats()["requests"]
    state, outcome = run_refresh(catalog=str(catalog), dest=dest,
                                 force_skus=["cafe\u0301-mug"])  # the other spelling
    assert state.is_completed() and outcome["totals"]["succeeded"] == 1
    assert outcome["totals"]["skipped"] == 4  # the index knows the other four by their sku
    assert emulator.stats()["requests"] == requests + 1
