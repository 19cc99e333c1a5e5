"""Presigned links of a run's files: what they point at, how long, and what they never carry."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from catalog_images.destination.storage import S3Location, S3Settings
from catalog_images.report.links import links_markdown, presigner, summary_links
from catalog_images.settings import RunSettings, SettingsError

LOCATION = S3Location("shop-bucket", "cat/v1")
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
S3 = S3Settings(endpoint_url="http://127.0.0.1:8333", region="us-east-1",
                addressing_style="path", access_key_id="AKIDEXAMPLE", secret_access_key=SECRET)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_an_object_link_is_a_sigv4_get_of_that_key_for_the_expiry():
    url = presigner(S3, LOCATION, 3600).url("cat/v1/runs/r1/report.json")
    parts, query = urlsplit(url), _query(url)
    assert (parts.scheme, parts.netloc) == ("http", "127.0.0.1:8333")
    assert parts.path == "/shop-bucket/cat/v1/runs/r1/report.json"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "3600"
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
    assert SECRET not in url


def test_summary_links_cover_report_sheet_and_folders_and_never_the_secret():
    links = summary_links(presigner(S3, LOCATION, 600), "r1")
    assert urlsplit(links["report"]).path.endswith("/cat/v1/runs/r1/report.json")
    assert urlsplit(links["contact_sheet"]).path.endswith("/runs/r1/contact-sheet.html")
    assert urlsplit(links["contact_sheet_png"]).path.endswith("/runs/r1/contact-sheet.png")
    images = _query(links["images"])
    assert images["list-type"] == "2" and images["prefix"] == "cat/v1/images/"
    assert _query(links["run_folder"])["prefix"] == "cat/v1/runs/r1/"
    assert urlsplit(links["images"]).path == "/shop-bucket"
    assert links["expires_at"].endswith("+00:00")
    assert not [name for name, url in links.items() if SECRET in url]


def test_markdown_links_each_file_embeds_the_sheet_and_says_what_a_link_grants():
    links = summary_links(presigner(S3, LOCATION, 600), "r1")
    text = "\n".join(links_markdown(links))
    assert f"![contact sheet]({links['contact_sheet_png']})" in text
    for name in ("report", "contact_sheet", "images"):
        assert f"]({links[name]})" in text, name
    assert links["expires_at"] in text and "link_expiry_s" in text
    assert SECRET not in text
    assert links_markdown({}) == []


def test_a_session_token_goes_into_the_link_but_the_secret_does_not():
    temporary = S3Settings(region="eu-west-1", addressing_style="virtual",
                           access_key_id="ASIAEXAMPLE", secret_access_key=SECRET,
                           session_token="FQoGZXIvYXdzEXAMPLETOKEN")
    url = presigner(temporary, LOCATION, 60).url("cat/v1/runs/r1/contact-sheet.png")
    assert urlsplit(url).scheme == "https" and urlsplit(url).netloc.startswith("shop-bucket.")
    assert _query(url)["X-Amz-Security-Token"] == "FQoGZXIvYXdzEXAMPLETOKEN"
    assert SECRET not in url


def test_no_credentials_means_no_links_rather_than_a_failure(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    anonymous = presigner(S3Settings(endpoint_url="http://127.0.0.1:8333"), LOCATION, 600)
    assert anonymous.url("cat/v1/runs/r1/report.json") is None
    assert summary_links(anonymous, "r1") == {}


@pytest.mark.parametrize("expiry", [59, 7 * 24 * 3600 + 1])
def test_link_expiry_is_bounded_by_what_s3_accepts(expiry):
    with pytest.raises(SettingsError, match="link_expiry_s"):
        RunSettings(catalog="c.csv", dest="s3://b/p", link_expiry_s=expiry)
    assert RunSettings(catalog="c.csv", dest="s3://b/p").link_expiry_s == 7 * 24 * 3600
