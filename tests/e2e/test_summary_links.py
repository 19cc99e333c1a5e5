"""The summary's presigned links open the run's files from a store that refuses anonymous reads:
a real flow run, a SeaweedFS that enforces credentials, the links fetched over plain HTTP."""

from __future__ import annotations

import asyncio
import html
import re
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import httpx
import pytest
from conftest import run_refresh, write_catalog

from catalog_images.devtools.local_s3 import SECRET_KEY, LocalS3

pytestmark = pytest.mark.usefixtures("prefect_api")
PNG = b"\x89PNG\r\n\x1a\n"


def _summary_markdown(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))

    return next(a.data for a in asyncio.run(read()) if a.key == "catalog-refresh-summary")


@pytest.fixture
def strict_s3(monkeypatch, tmp_path):
    """A SeaweedFS that answers 403 to anonymous and wrongly signed requests."""
    with LocalS3(require_credentials=True) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CATALOG_IMAGES_SPOOL_DIR", str(tmp_path / "spool"))
        yield server


def test_summary_links_fetch_the_contact_sheet_and_images_from_a_private_store(
    strict_s3, emulator, tmp_path
):
    dest = f"s3://{strict_s3.bucket}/t-{uuid4().hex[:10]}"
    catalog = write_catalog(tmp_path / "c.csv", 4, resolution="1K")
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, link_expiry_s=900)
    assert state.is_completed(), state.message
    markdown = _summary_markdown(outcome["flow_run_id"])
    assert SECRET_KEY not in markdown
    sheet_url = re.search(r"!\[contact sheet\]\((\S+)\)", markdown).group(1)
    assert "X-Amz-Expires=900" in sheet_url

    bucket, prefix = dest[5:].split("/", 1)
    stored = strict_s3.client().get_object(
        Bucket=bucket, Key=f"{prefix}/runs/{outcome['run_id']}/contact-sheet.png")["Body"].read()
    with httpx.Client(timeout=10) as http:
        fetched = http.get(sheet_url)
        assert fetched.status_code == 200 and fetched.content == stored
        assert fetched.content.startswith(PNG)
        unsigned = urlunsplit(urlsplit(sheet_url)._replace(query=""))
        assert http.get(unsigned).status_code == 403  # the store really is private

        page_url = re.search(r"\[Contact sheet \(page\)\]\((\S+)\)", markdown).group(1)
        page = http.get(page_url)
        assert page.status_code == 200 and "SKU-00000" in page.text
        sources = [html.unescape(s) for s in re.findall(r'<img[^>]* src="([^"]+)"', page.text)]
        assert len(sources) == 5  # the sheet, then each of the 4 images
        for source in sources:
            image = http.get(source)
            assert image.status_code == 200 and image.content.startswith(PNG), source

        listing_url = re.search(r"\[Images folder[^\]]*\]\((\S+)\)", markdown).group(1)
        listing = http.get(listing_url)
        assert listing.status_code == 200
        assert all(f"{prefix}/images/SKU-0000{i}.png" in listing.text for i in range(4))
