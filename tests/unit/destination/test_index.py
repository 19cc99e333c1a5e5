"""The destination's index in memory: merged a batch at a time, newest run wins."""

from __future__ import annotations

import pyarrow as pa

from catalog_images.destination.index import BATCH_ROWS, INDEX_SCHEMA, OutputIndex


def _table(rows: list[tuple[str, str, str]]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"sku": s, "fingerprint": f, "s3_key": None, "run_id": r} for s, f, r in rows],
        schema=INDEX_SCHEMA)


def test_newest_run_wins_across_batches_and_run_ids_are_shared() -> None:
    filler = [(f"S{i}", "old", "20260101T000000Z-aaaaaa") for i in range(BATCH_ROWS + 5)]
    index = OutputIndex()
    index.add_table(_table([("S0", "new", "20260202T000000Z-bbbbbb"), *filler]))
    index.add_table(_table([("S1", "newer", "20260303T000000Z-cccccc")]).to_batches())
    assert index.fingerprint("S0") == "new"  # the older run, in a later batch, does not win
    assert index.fingerprint("S1") == "newer"
    assert index.fingerprint(f"S{BATCH_ROWS + 4}") == "old"
    assert index.fingerprint("missing") is None
    run_ids = {id(run_id) for _, run_id in index.entries.values()}
    assert len(run_ids) == 3  # one string per run, not one per row
