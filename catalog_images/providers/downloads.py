"""Result downloads (async-task result URLs, ``response_format=url``): a client of their own.

A result URL is chosen by the provider, so it is treated as hostile: it is fetched by a
separate client that carries no credentials (real relays serve results from a CDN host, and
a presigned URL breaks with an extra header), over https only unless the provider's config
says ``results_allow_http``, without following redirects, under the answer byte cap. Its host
is resolved first and every address checked: private, loopback, link-local and other
non-public addresses are refused unless one of ``results_private_networks`` holds them; the
request then goes to the checked address (no second lookup an attacker could answer
differently).

Every failure is a ProviderError whose ``billed`` is True: the provider already charged for
the image whose URL it named, so the row must not be generated again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

import httpx

from catalog_images.providers.caps import ACCEPT_ENCODING, read_capped
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.http import tls_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
DOWNLOAD_ATTEMPTS = 3


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _address(text: str) -> IPAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ResultDownloader:
    """Fetch result URLs named by one provider, under its download policy."""

    def __init__(self, config: ProviderConfig, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 resolver: Resolver | None = None) -> None:
        self._allow_http = config.results_allow_http
        self._networks = [ipaddress.ip_network(n, strict=False)
                          for n in config.results_private_networks]
        self._max_bytes = config.max_response_bytes
        self._deadline_s = config.timeout_s + config.connect_timeout_s
        self._resolver = resolver or system_resolver
        self._client = httpx.AsyncClient(  # no auth headers, no cookies kept, no redirects
            headers={"accept-encoding": ACCEPT_ENCODING}, follow_redirects=False,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            transport=transport, trust_env=False, verify=tls_context(trust_env=False))

    async def fetch(self, url: str, what: str,
                    check: Callable[[bytes], object] | None = None) -> bytes:
        """The bytes at ``url``, retried on transient failures and while ``check`` raises
        ValueError (e.g. a truncated image); a billed ProviderError at the end."""
        target, headers, extensions = await self._checked(url, what)
        problem = ""
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                data = await self._get(target, headers, extensions)
                if check is not None:
                    check(data)
                return data
            except ValueError as exc:
                problem = str(exc)
            except ProviderError as exc:
                if exc.error_class is ErrorClass.REFUSED:
                    raise ProviderError(exc.error_class, f"{what}: {exc.message}",
                                        status=exc.status, billed=True) from None
                problem = str(exc)
            await asyncio.sleep(0.5 * (attempt + 1))
        raise ProviderError(ErrorClass.BAD_RESPONSE, f"{what} could not be downloaded: {problem}",
                            billed=True)

    async def _checked(self, url: str, what: str) -> tuple[httpx.URL, dict, dict]:
        """The URL to send (host replaced by a checked address), its headers and extensions
        (the Host header and TLS server name of the URL's own host)."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise self._refused(what, "the result URL is not a valid URL") from None
        allowed = ("https", "http") if self._allow_http else ("https",)
        if parsed.scheme not in allowed or not parsed.host:
            raise self._refused(what, f"result URL scheme {parsed.scheme[:10]!r} is not allowed "
                                f"(allowed: {', '.join(allowed)})")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        address = await self._public_address(parsed.host, port, what)
        headers = {"host": parsed.netloc.decode("ascii")}
        extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
        return parsed.copy_with(host=address, username=None, password=None), headers, extensions

    async def _public_address(self, host: str, port: int, what: str) -> str:
        """The first address of ``host`` once every one is checked against the policy."""
        try:
            addresses = [_address(host)]
        except ValueError:
            try:
                addresses = [_address(a) for a in await self._resolver(host, port)]
            except (OSError, ValueError, UnicodeError):
                raise ProviderError(ErrorClass.BAD_RESPONSE,
                                    f"{what}: the result host does not resolve",
                                    billed=True) from None
        if not addresses:
            raise self._refused(what, "the result host has no address")
        for address in addresses:
            if not address.is_global and not any(address in n for n in self._networks):
                raise self._refused(what, f"the result URL points at a non-public address "
                                    f"({address}); allow its network in "
                                    "results_private_networks if that is intended")
        return str(addresses[0])

    async def _get(self, target: httpx.URL, headers: dict, extensions: dict) -> bytes:
        try:
            async with asyncio.timeout(self._deadline_s):
                request = self._client.build_request(
                    "GET", target, headers=headers, extensions=extensions)
                response = await self._client.send(request, stream=True)
                try:
                    if response.status_code != 200:
                        kind = "a redirect (not followed)" if response.is_redirect else "HTTP"
                        raise ProviderError(ErrorClass.BAD_RESPONSE,
                                            f"answered {kind} {response.status_code}",
                                            status=response.status_code)
                    return await read_capped(response, self._max_bytes)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise ProviderError(ErrorClass.TIMEOUT, "download took too long") from None
        except httpx.HTTPError as exc:
            raise ProviderError(ErrorClass.CONNECTION, type(exc).__name__) from None

    @staticmethod
    def _refused(what: str, why: str) -> ProviderError:
        return ProviderError(ErrorClass.REFUSED, f"{what}: {why}", billed=True)

    async def aclose(self) -> None:
        """Close the download connections."""
        await self._client.aclose()
