"""Reading a catalog stays bounded: batches by characters, only used columns, capped gzip."""

from __future__ import annotations

import gzip
import resource

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog_images.catalog import bounds
from catalog_images.catalog.read import CatalogError, CatalogFile, iter_rows


def _catalog(path, fmt: str) -> CatalogFile:
    return CatalogFile(str(path), path, fmt, str(path.parent))


def test_batches_are_bounded_by_characters_as_well_as_rows():
    batches = bounds.Batches(rows=100, chars=1000)
    done = [b for i in range(10) if (b := batches.add({"p": "x" * 400, "_row": i}))]
    assert [len(b) for b in done] == [3, 3, 3] and len(batches.take()) == 1


def test_only_the_used_columns_are_read(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("sku,prompt,secret,notes\nA,p,s3cr3t,n\n")
    rows = [r for b in iter_rows(_catalog(path, "csv"), columns=["sku", "prompt"]) for r in b]
    assert rows == [{"sku": "A", "prompt": "p", "_row": 1}]
    table = pa.table({"sku": ["A"], "prompt": ["p"], "blob": [b"x" * 10]})
    pq.write_table(table, tmp_path / "c.parquet")
    rows = [r for b in iter_rows(_catalog(tmp_path / "c.parquet", "parquet"), columns=["sku"])
            for r in b]
    assert rows == [{"sku": "A", "_row": 1}]


def test_a_gzip_bomb_stops_at_its_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(bounds, "MIN_INFLATE_CAP", 1024 * 1024)
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"sku,prompt\n")
        for _ in range(64):
            out.write(b"A,")
            out.write(b"x" * (256 * 1024))
            out.write(b"\n")
    assert path.stat().st_size < 20_000
    with pytest.raises(CatalogError, match="inflates to over"):
        for _ in iter_rows(_catalog(path, "csv")):
            pass
    small = tmp_path / "ok.csv.gz"
    with gzip.open(small, "wb") as out:
        out.write(b"sku,prompt\nA,p\n")
    assert [r["sku"] for b in iter_rows(_catalog(small, "csv")) for r in b] == ["A"]


def test_a_small_parquet_of_huge_repeated_cells_stays_small_in_memory(tmp_path):
    cell = pa.array(["y" * 1_000_000])
    prompts = pa.DictionaryArray.from_arrays(pa.array([0] * 3000, pa.int32()), cell)
    table = pa.table({"sku": [f"S{i}" for i in range(3000)], "prompt": prompts})
    path = tmp_path / "bomb.parquet"
    pq.write_table(table, path)
    del table, prompts
    assert path.stat().st_size < 200_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    count = 0
    for batch in iter_rows(_catalog(path, "parquet"), columns=["sku", "prompt"]):
        count += len(batch)
        assert all(row["_long_cells"] == {"prompt": 1_000_000} for row in batch)
        assert all(len(row["prompt"]) == bounds.MAX_CELL_CHARS for row in batch)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert count == 3000 and grown_mib < 400, grown_mib


def test_plain_encoded_wide_rows_are_decoded_a_few_at_a_time(tmp_path):
    table = pa.table({"sku": ["A", "B"], "prompt": ["z" * 10_000_000, "short"]})
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, use_dictionary=False)
    parquet = pq.ParquetFile(path)
    assert bounds.decode_rows(parquet, ["sku", "prompt"], 1024) <= 13
    assert bounds.decode_rows(parquet, ["sku"], 1024) == 1024
