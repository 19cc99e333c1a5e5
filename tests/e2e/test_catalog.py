"""Catalog reading and row validation: good rows become jobs, bad rows get reasons."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from catalog_images.catalog.plan import iter_jobs, iter_settled, plan_catalog
from catalog_images.catalog.read import CatalogError, iter_rows, open_catalog, read_columns
from catalog_images.catalog.validate import Rejection, RowValidator, check_columns, sku_problem
from catalog_images.destination.storage import S3Settings
from catalog_images.providers.config import get_provider

S3 = S3Settings()


def _png(path: Path, size=(32, 32)) -> Path:
    Image.new("RGB", size, (200, 10, 10)).save(path, format="PNG")
    return path


def _rows(path: Path, batch_rows: int = 10_000) -> list[dict]:
    catalog = open_catalog(str(path), S3, path.parent)
    return [row for batch in iter_rows(catalog, batch_rows) for row in batch]


def test_csv_and_parquet_read_the_same_rows_in_bounded_batches(tmp_path):
    frame = pd.DataFrame({"sku": [f"S{i}" for i in range(25)], "prompt": ["p"] * 25})
    frame.to_csv(tmp_path / "c.csv", index=False)
    frame.to_parquet(tmp_path / "c.parquet", index=False)
    for name in ("c.csv", "c.parquet"):
        catalog = open_catalog(str(tmp_path / name), S3, tmp_path)
        batches = list(iter_rows(catalog, batch_rows=10))
        assert [len(b) for b in batches] == [10, 10, 5]
        rows = [r for b in batches for r in b]
        assert [r["sku"] for r in rows] == list(frame["sku"])
        assert [r["_row"] for r in rows] == list(range(1, 26))


def test_parquet_non_string_columns_become_strings(tmp_path):
    pd.DataFrame({"sku": [1, 2], "prompt": ["a", "b"], "price": [9.5, None]}).to_parquet(
        tmp_path / "n.parquet", index=False
    )
    rows = _rows(tmp_path / "n.parquet")
    assert rows[0]["sku"] == "1" and rows[1]["price"] is None


def test_csv_with_bom_and_ragged_lines_keeps_every_line(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffsku,prompt\nA,one\nB,two,EXTRA\nC,three\n".encode())
    assert read_columns(open_catalog(str(path), S3, tmp_path)) == ["sku", "prompt"]
    rows = _rows(path)
    assert len(rows) == 3
    assert {r.get("sku") for r in rows if "_bad_line" not in r} == {"A", "C"}
    bad = [r for r in rows if "_bad_line" in r]
    assert len(bad) == 1 and "EXTRA" in bad[0]["_bad_line"]
    outcome = RowValidator(None, str(tmp_path), S3).check(bad[0])
    assert isinstance(outcome, Rejection) and "malformed CSV" in outcome.reason


def test_unreadable_catalogs_stop_the_run_with_a_named_problem(tmp_path):
    with pytest.raises(CatalogError, match="no such file"):
        open_catalog(str(tmp_path / "missing.csv"), S3, tmp_path)
    with pytest.raises(CatalogError, match="unknown format"):
        open_catalog(str(tmp_path / "catalog.xlsx"), S3, tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sku,prompt\nA,caf\xe9 photo\n".encode("latin-1"))
    with pytest.raises(CatalogError, match="UTF-8"):
        _rows(latin)
    truncated = tmp_path / "t.parquet"
    pd.DataFrame({"sku": ["A"] * 100, "prompt": ["x"] * 100}).to_parquet(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CatalogError, match="t.parquet"):
        _rows(truncated)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CatalogError, match="empty"):
        read_columns(open_catalog(str(empty), S3, tmp_path))


def test_required_columns_and_template_placeholders_are_checked_before_any_row():
    with pytest.raises(CatalogError, match="no 'sku' column"):
        check_columns(["id", "prompt"], None)
    with pytest.raises(CatalogError, match="no 'prompt' column"):
        check_columns(["sku", "title"], None)
    with pytest.raises(CatalogError, match=r"\{colour\}"):
        check_columns(["sku", "title"], "Photo of {title} in {colour}")
    check_columns(["sku", "title"], "Photo of {title}")


@pytest.mark.parametrize(
    ("sku", "expected"),
    [("", "missing sku"), ("../etc/passwd", "escape"), ("a/b", "escape"),
     ("bad\x07sku", "not a safe object name"), (".hidden", "not a safe"),
     ("-dash", "not a safe"), ("x" * 1009, "1009 bytes in UTF-8"), ("x" * 1008, None),
     ("茶" * 337, "1011 bytes"), ("a\u00a0b", "U+00A0"), ("a\u2028b", "U+2028"),
     ("OK-sku_1.v2", None), ("x" * 201, None), ("café-mug", None), ("Kaffeetasse-groß", None),
     ("茶杯-01", None), ("блюдо 7", None), ("مج-٣", None), ("क्‍ष-1", None)],
)
def test_sku_must_be_a_safe_object_name(sku, expected):
    problem = sku_problem(sku)
    assert (problem is None) if expected is None else (expected in problem)


def test_validator_rejects_each_kind_of_bad_row_and_normalises_good_ones(tmp_path):
    ref = _png(tmp_path / "ref.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(ref.read_bytes()[:40])
    v = RowValidator(None, str(tmp_path), S3)
    cases = [
        ({"sku": "A", "prompt": "photo", "resolution": "2k", "aspect_ratio": ""}, None),
        ({"sku": "A", "prompt": "again"}, "duplicate sku"),
        ({"sku": "B", "prompt": "  "}, "empty prompt"),
        ({"sku": "C", "prompt": "p", "resolution": "8K"}, "unknown resolution '8K'"),
        ({"sku": "D", "prompt": "p", "aspect_ratio": "7:3"}, "unknown aspect_ratio '7:3'"),
        ({"sku": "E", "prompt": "p", "priority": "urgent"}, "unknown priority"),
        ({"sku": "F", "prompt": "p" * 20_001}, "over the 20000 limit"),
        ({"sku": "G", "prompt": "p", "reference_image": "nope.png"}, "unreadable reference"),
        ({"sku": "H", "prompt": "p", "reference_image": "corrupt.png"}, "unreadable reference"),
        ({"sku": "I", "prompt": "p", "reference_image": "ref.png", "priority": "HIGH"}, None),
    ]
    for number, (row, expected) in enumerate(cases, start=1):
        outcome = v.check({**row, "_row": number})
        if expected is None:
            assert isinstance(outcome, dict), outcome
        else:
            assert isinstance(outcome, Rejection) and expected in outcome.reason, outcome
            assert outcome.row == number
    first = v.check({"sku": "J", "prompt": "p", "_row": 99})
    assert first["resolution"] == "2K" and first["aspect_ratio"] == "1:1"
    assert first["priority"] == "normal" and first["reference_image"] is None


def test_two_spellings_of_a_unicode_sku_are_one_sku_in_nfc(tmp_path):
    v = RowValidator(None, str(tmp_path), S3)
    composed, decomposed = "caf\u00e9-mug", "cafe\u0301-mug"
    first = v.check({"sku": decomposed, "prompt": "p", "_row": 1})
    assert first["sku"] == composed  # the key, the report and the index use the NFC form
    again = v.check({"sku": composed, "prompt": "q", "_row": 2})
    assert isinstance(again, Rejection) and "duplicate sku" in again.reason
    for sku in ("Kaffeetasse-groß", "茶杯-01"):
        assert v.check({"sku": sku, "prompt": "p", "_row": 3})["sku"] == sku


def test_a_sku_too_long_for_the_destinations_keys_is_rejected(tmp_path):
    v = RowValidator(None, str(tmp_path), S3, sku_key_room=20)
    assert v.check({"sku": "茶" * 6, "prompt": "p", "_row": 1})["sku"] == "茶" * 6  # 18 bytes
    long = v.check({"sku": "茶" * 7, "prompt": "p", "_row": 2})
    assert isinstance(long, Rejection) and "21 bytes in UTF-8, over the 20" in long.reason


def test_prompt_template_fills_placeholders_from_the_row(tmp_path):
    v = RowValidator("Studio photo of a {color} {title}", str(tmp_path), S3)
    job = v.check({"sku": "A", "title": "mug", "color": "red", "_row": 1})
    assert job["prompt"] == "Studio photo of a red mug"


def test_plan_writes_jobs_and_rejections_and_projects_cost(tmp_path):
    _png(tmp_path / "ref.png")
    frame = pd.DataFrame(
        {"sku": ["A", "B", "B", "C", "D"], "prompt": ["a", "b", "b2", "", "d"],
         "resolution": ["1K", "4K", "", "", ""], "reference_image": ["", "ref.png", "", "", ""]}
    )
    frame.to_csv(tmp_path / "cat.csv", index=False)
    work = tmp_path / "work"
    work.mkdir()
    plan = plan_catalog(str(tmp_path / "cat.csv"), None, get_provider("google"), S3, work)
    assert (plan.rows, plan.accepted, plan.rejected) == (5, 3, 2)
    assert plan.by_resolution == {"1K": 1, "2K": 1, "4K": 1}
    assert plan.projected_cost_usd == pytest.approx(0.134 + 0.134 + 0.24)
    jobs = [j for chunk in iter_jobs(plan.plan_path, 2) for j in chunk]
    assert [j.sku for j in jobs] == ["A", "B", "D"]
    assert jobs[1].reference_image == str(tmp_path / "ref.png")
    reasons = {r["row"]: r["reason"] for r in iter_settled(plan.settled_path)}
    assert "duplicate" in reasons[3] and "empty prompt" in reasons[4]


def test_catalog_from_s3_is_read_like_a_local_one(s3_env, tmp_path):
    buf = io.BytesIO()
    pd.DataFrame({"sku": ["A", "B"], "prompt": ["a", "b"]}).to_parquet(buf, index=False)
    client = s3_env.client()
    client.put_object(Bucket=s3_env.bucket, Key="catalogs/c.parquet", Body=buf.getvalue())
    settings = S3Settings.from_environment()
    catalog = open_catalog(f"s3://{s3_env.bucket}/catalogs/c.parquet", settings, tmp_path)
    assert catalog.base == f"s3://{s3_env.bucket}/catalogs"
    assert [r["sku"] for b in iter_rows(catalog) for r in b] == ["A", "B"]
    with pytest.raises(CatalogError, match="cannot read"):
        open_catalog(f"s3://{s3_env.bucket}/catalogs/missing.csv", settings, tmp_path)
