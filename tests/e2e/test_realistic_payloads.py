"""Realistic payloads end to end: a 4K and a 2K noise PNG of the emulator's realistic sizes
(20 and 6 MB, base64 in the JSON answer) go through the streamed reader, the spool and the
upload, and arrive in S3 byte for byte."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from conftest import run_refresh
from PIL import Image

from catalog_images.devtools.emulator import Emulator, EmulatorConfig
from catalog_images.devtools.emulator.config import REALISTIC_IMAGE_BYTES
from catalog_images.devtools.emulator.noise_png import build_noise_template


@pytest.fixture
def realistic_emulator(monkeypatch):
    """The emulator answering noise PNGs of realistic size."""
    emu = Emulator(EmulatorConfig(latency_s=0.02, seed=5,
                                  image_bytes=dict(REALISTIC_IMAGE_BYTES))).start()
    monkeypatch.setenv("CATALOG_IMAGES_EMULATOR_URL", emu.base_url)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.mark.usefixtures("prefect_api", "s3_env")
def test_realistic_4k_and_2k_answers_arrive_whole_in_s3(realistic_emulator, local_s3, dest,
                                                       tmp_path):
    catalog = tmp_path / "c.csv"
    pd.DataFrame({"sku": ["R-4K", "R-2K"], "prompt": ["Studio photo of a chair",
                                                      "Studio photo of a lamp"],
                  "resolution": ["4K", "2K"]}).to_csv(catalog, index=False)
    state, report = run_refresh(catalog=str(catalog), dest=dest)
    assert state.is_completed() and report["totals"]["succeeded"] == 2
    bucket, _, prefix = dest[5:].partition("/")
    client = local_s3.client()
    total = 0
    for sku, size, side in (("R-4K", "4K", 4096), ("R-2K", "2K", 2048)):
        body = client.get_object(Bucket=bucket, Key=f"{prefix}/images/{sku}.png")["Body"].read()
        # Every noise PNG of a size has the same length: the emulator's template's.
        served = len(build_noise_template(side, side, REALISTIC_IMAGE_BYTES[size]).png())
        assert len(body) == served and served > 0.9 * REALISTIC_IMAGE_BYTES[size]
        assert body[:8] == b"\x89PNG\r\n\x1a\n" and body.endswith(b"IEND\xaeB`\x82")
        with Image.open(io.BytesIO(body)) as img:
            assert img.size == (side, side)
            img.verify()  # every chunk's CRC: not one byte changed on the way
        total += len(body)
    assert report["totals"]["bytes"] == total
