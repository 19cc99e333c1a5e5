"""Batch mode through the real emulator when a job's input goes as a file: the requests are
written one at a time to a JSONL file, uploaded in pieces with the resumable protocol, and
every row is delivered at the batch price; a failed upload creates no job."""

from __future__ import annotations

import pytest
from conftest import run_refresh, write_catalog

from catalog_images.providers import batch_input, gemini_batch

# The session's Prefect server, as every flow-running e2e test: without it the run started
# an ephemeral API in this worker, which a loaded machine once failed to start in time.
pytestmark = pytest.mark.usefixtures("prefect_api")


def test_a_batch_sent_as_a_file_in_pieces_completes_every_row(
        s3_env, emulator, dest, tmp_path, monkeypatch):
    monkeypatch.setattr(gemini_batch, "INLINE_LIMIT_BYTES", 10)  # every job as a file
    monkeypatch.setattr(batch_input, "UPLOAD_CHUNK_BYTES", 512)  # several pieces each
    emulator.configure(batch_delay_s=0.2)
    catalog = write_catalog(tmp_path / "c.csv", 12, resolution="1K")
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, mode="batch", batch_rows=6,
                                 batch_poll_s=0.1)
    assert state.is_completed(), state.message
    assert outcome["totals"]["succeeded"] == 12
    ledger = emulator.ledger()
    assert ledger["images"] == 12 and ledger["by_mode"].get("batch") == 12
    assert emulator.duplicates() == {}
