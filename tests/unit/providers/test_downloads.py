"""Result downloads: no key, https only, no redirects, public addresses only, a byte cap.

Result URLs come from the provider (async-task relays, ``response_format=url``), so each
test plays a hostile relay naming a URL and checks what reached which host.
"""

from __future__ import annotations

import httpx
import pytest

from catalog_images.providers import downloads
from catalog_images.providers.downloads import DOWNLOAD_ATTEMPTS
from catalog_images.providers.downloads import system_resolver as real_resolver
from catalog_images.providers.errors import ErrorClass

from .conftest import PUBLIC_ADDRESS
from .hostile import endless, gzip_bomb, streamed
from .test_openai_images import failure, generate
from .wire import KEY, Wire, image_bytes, json_response, seen_url

GENERATIONS = "POST /v1/images/generations"


def relay(url: str, *downloads) -> Wire:
    """An OpenAI-style relay answering ``url``, then the result host's answers."""
    return Wire(json_response(200, {"data": [{"url": url}]}),
                *(downloads or [httpx.Response(200, content=image_bytes(32, 18))]))


def refused(wire: Wire, **overrides):
    error = failure(wire, response_format="url", **overrides)
    assert error.error_class is ErrorClass.REFUSED, error
    assert error.billed and not error.retryable  # paid: the row is never generated again
    return error


def test_the_download_goes_to_the_checked_address_with_the_host_named_and_no_key(fake_dns):
    fake_dns["cdn.example.net"] = [PUBLIC_ADDRESS, "2606:2800:220:1::1"]
    wire = relay("https://cdn.example.net:8443/out/1.png?sig=abc")
    generate(wire, response_format="url")
    download = wire.requests[1]
    assert download.url.host == PUBLIC_ADDRESS  # no second lookup between check and connect
    assert seen_url(download) == "https://cdn.example.net:8443/out/1.png?sig=abc"
    assert download.extensions["sni_hostname"] == "cdn.example.net"
    assert "authorization" not in download.headers and "x-goog-api-key" not in download.headers
    assert KEY not in str(download.headers.raw) and KEY not in str(download.url)


@pytest.mark.parametrize(
    "url", ["http://cdn.example.net/1.png", "ftp://cdn.example.net/1.png", "file:///etc/passwd",
            "//cdn.example.net/1.png", "data:image/png;base64,AAAA"])
def test_only_https_result_urls_are_fetched_by_default(url):
    wire = relay(url)
    error = refused(wire)
    assert "scheme" in error.message and wire.paths() == [GENERATIONS]


def test_plain_http_is_fetched_when_the_provider_allows_it():
    wire = relay("http://cdn.example.net/1.png")
    assert generate(wire, response_format="url", results_allow_http=True).width == 32


@pytest.mark.parametrize(
    "url", ["https://169.254.169.254/latest/meta-data/", "https://127.0.0.1/x.png",
            "https://[::1]/x.png", "https://10.1.2.3/x.png", "https://[::ffff:10.0.0.1]/x.png",
            "https://0.0.0.0/x.png", "https://100.64.0.1/x.png"])
def test_non_public_addresses_are_refused_without_a_request(url):
    wire = relay(url)
    error = refused(wire)
    assert "non-public address" in error.message and wire.paths() == [GENERATIONS]


@pytest.mark.parametrize("addresses", [["10.0.0.7"], [PUBLIC_ADDRESS, "169.254.169.254"],
                                       ["fe80::1"], ["::ffff:127.0.0.1"]])
def test_every_resolved_address_is_checked(fake_dns, addresses):
    fake_dns["cdn.evil.test"] = addresses
    wire = relay("https://cdn.evil.test/1.png")
    refused(wire)
    assert wire.paths() == [GENERATIONS]


def test_a_private_network_the_provider_allows_is_fetched(fake_dns):
    fake_dns["results.internal"] = ["10.0.0.7"]
    wire = relay("https://results.internal/1.png")
    image = generate(wire, response_format="url", results_private_networks=["10.0.0.0/8"])
    assert image.width == 32 and wire.requests[1].url.host == "10.0.0.7"
    refused(relay("https://169.254.169.254/x"), results_private_networks=["10.0.0.0/8"])


def test_redirects_are_not_followed(fast_sleep):
    redirect = httpx.Response(302, headers={"location": "https://169.254.169.254/latest/"})
    wire = relay("https://cdn.example.net/1.png", redirect)
    error = failure(wire, response_format="url")
    assert error.error_class is ErrorClass.BAD_RESPONSE and error.billed
    assert "redirect" in error.message
    assert [r.url.host for r in wire.requests[1:]] == [PUBLIC_ADDRESS] * DOWNLOAD_ATTEMPTS


@pytest.mark.parametrize("url", ["https://[::1/x", "https://", "https://a:b:c/x",
                                 "https://a..b/x\x00"])
def test_invalid_result_urls_are_refused(url):
    wire = relay(url)
    error = failure(wire, response_format="url")
    assert error.error_class in (ErrorClass.REFUSED, ErrorClass.BAD_RESPONSE) and error.billed
    assert wire.paths() == [GENERATIONS]


def test_an_unresolvable_host_is_a_billed_failure(monkeypatch):
    async def no_such_host(host, port):
        raise OSError("Name or service not known")

    monkeypatch.setattr(downloads, "system_resolver", no_such_host)
    error = failure(relay("https://nowhere.example/1.png"), response_format="url")
    assert error.error_class is ErrorClass.BAD_RESPONSE and error.billed


@pytest.mark.parametrize("body", ["endless", "bomb"])
def test_an_oversized_download_is_refused_at_the_cap_and_not_retried(body):
    if body == "endless":
        response, stream = streamed(endless())
    else:
        response, stream = streamed(gzip_bomb(64 * 1024 * 1024), {"content-encoding": "gzip"})
    wire = relay("https://cdn.example.net/1.png", response)
    refused(wire, max_response_bytes=1024 * 1024)
    assert len(wire.requests) == 2 and stream.sent < 40


def test_the_system_resolver_sees_localhost_as_loopback():
    from .wire import run

    assert "127.0.0.1" in run(real_resolver("localhost", 443))
