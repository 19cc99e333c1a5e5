"""A JSON answer read as a stream, its long strings (inline base64 images) decoded on the way.

A provider's image comes as base64 in a JSON string: 27 MB of text for a 20 MB 4K PNG. Read
whole it is held as the body, the parsed ``str`` and the decoded bytes at once (and copied
between them). ``InlineJsonReader`` takes the body piece by piece instead: everything outside
long strings is kept as JSON text (the skeleton: small), and each string longer than
``BLOB_MIN_CHARS`` is decoded from base64 as it arrives (JSON escapes resolved, ASCII
whitespace skipped, a ``data:...,`` prefix dropped) into a ``Base64Sink``; a token takes its
place in the skeleton. ``parse`` parses the skeleton with ``caps.parse_json`` (depth check
included) and puts a ``Blob`` where each token was: a ``str`` holding the string's first
characters (what text checks look at) whose ``data()`` is the decoded bytes, or raises when
the string was not valid base64. Only the decoded bytes of an image are ever held whole.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import secrets

import httpx

from catalog_images.providers.caps import capped_pieces, parse_json
from catalog_images.providers.errors import ErrorClass, ProviderError

BLOB_MIN_CHARS = 64 * 1024
HEAD_CHARS = 256  # the characters of a long string its Blob keeps as text
MAX_PREFIX_CHARS = 1024  # a data: URI's prefix ("data:image/png;base64,") ends within these
_WHITESPACE = b" \t\r\n"
_SIMPLE_ESCAPES = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b",
                   ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t"}
_HEX = frozenset(b"0123456789abcdefABCDEF")
NOT_BASE64 = "image data is not valid base64"


class Base64Sink:
    """Base64 text fed in pieces of any size, decoded as it comes (strictly: the alphabet,
    padding only at the end; ASCII whitespace is skipped)."""

    def __init__(self) -> None:
        self.head = bytearray()  # the first HEAD_CHARS bytes fed, as they came
        self.error: str | None = None
        self._prefix: bytearray | None = bytearray()  # until the start is known
        self._pending = bytearray()  # fewer than 4 base64 characters, or a whole group
        self._out = bytearray()
        self._padded = False

    def feed(self, text: bytes) -> None:
        """Take the next piece of the string's characters (escapes already resolved)."""
        if len(self.head) < HEAD_CHARS:
            self.head += text[: HEAD_CHARS - len(self.head)]
        if self.error is not None:
            return
        if self._prefix is not None:
            self._prefix += text
            text = self._start(final=False)
            if self._prefix is not None:
                return
        self._decode(text)

    def _start(self, final: bool) -> bytes:
        """Once the string's start is known, its base64 part so far (a ``data:`` prefix
        dropped); ``_prefix`` is None from then on."""
        lead = bytes(self._prefix).lstrip(_WHITESPACE)
        if len(lead) < 5 and not final:
            return b""
        if lead.startswith(b"data:"):
            comma = lead.find(b",")
            if comma < 0:
                if final or len(lead) > MAX_PREFIX_CHARS:
                    self._prefix, self.error = None, NOT_BASE64
                return b""
            lead = lead[comma + 1:]
        self._prefix = None
        return lead

    def _decode(self, text: bytes) -> None:
        text = text.translate(None, _WHITESPACE)
        if not text:
            return
        if self._padded:
            self.error = NOT_BASE64  # characters after the padding
            return
        self._pending += text
        whole = len(self._pending) // 4 * 4
        if not whole:
            return
        group = self._pending[:whole]
        if b"=" in group[-2:]:
            self._padded = True
        try:
            self._out += binascii.a2b_base64(group, strict_mode=True)
        except binascii.Error:
            self.error = NOT_BASE64
        del self._pending[:whole]
        if self._padded and self._pending:
            self.error = NOT_BASE64

    def finish(self) -> bytes | None:
        """The decoded bytes, or None when the text was not valid base64 (``error``)."""
        if self._prefix is not None:
            self._decode(self._start(final=True))
        if self._pending and self.error is None:
            self.error = NOT_BASE64  # not a whole number of 4-character groups
        if self.error is not None:
            self._out = bytearray()
            return None
        data, self._out = bytes(self._out), bytearray()
        return data


class Blob(str):
    """A long JSON string read as base64: its first characters as text, ``data()`` its bytes."""

    _data: bytes | None
    _error: str | None

    def data(self) -> bytes:
        """The decoded bytes; a ProviderError (BAD_RESPONSE) when they were not base64."""
        if self._data is None:
            raise ProviderError(ErrorClass.BAD_RESPONSE, self._error or NOT_BASE64)
        return self._data


def _blob(sink: Base64Sink) -> Blob:
    data = sink.finish()
    blob = Blob(bytes(sink.head).decode("utf-8", "replace"))
    blob._data, blob._error = data, sink.error
    return blob


class InlineJsonReader:
    """A JSON text fed in pieces; long strings go to Base64Sinks, the rest is kept."""

    def __init__(self, what: str, blob_min_chars: int = BLOB_MIN_CHARS) -> None:
        self.what = what
        self._blob_min = blob_min_chars
        self._skeleton = bytearray()
        self._in_string = False
        self._string = bytearray()  # the current string's raw text while it is short
        self._sink: Base64Sink | None = None  # the current string's, once it is long
        self._escape = bytearray()  # an escape sequence cut by the end of a piece
        self._sinks: list[Base64Sink] = []
        self._token = f"\u0000blob:{secrets.token_hex(8)}:"

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the answer (any size, cut anywhere)."""
        pos, end = 0, len(chunk)
        quote = backslash = -1  # next positions in chunk (-1: look again; end: none)
        while pos < end:
            if self._escape:
                pos = self._finish_escape(chunk, pos)
                continue
            if not self._in_string:
                quote = chunk.find(b'"', pos)
                if quote < 0:
                    self._skeleton += chunk[pos:]
                    return
                self._skeleton += chunk[pos:quote + 1]
                self._in_string, pos = True, quote + 1
                quote = backslash = -1
                continue
            if quote < pos:
                quote = _find(chunk, b'"', pos, end)
            if backslash < pos:
                backslash = _find(chunk, b"\\", pos, end)
            stop = min(quote, backslash)
            self._string_text(chunk[pos:stop])
            if stop == end:
                return
            if stop == quote:
                self._close_string()
            else:
                self._escape += b"\\"
            pos = stop + 1

    def _finish_escape(self, chunk: bytes, pos: int) -> int:
        """Complete a pending escape from ``chunk`` at ``pos``; the position after it."""
        if len(self._escape) == 1:  # its kind: u (4 hex digits follow) or one character
            self._escape.append(chunk[pos])
            pos += 1
        need = 6 if self._escape[1] == ord("u") else 2
        take = min(need - len(self._escape), len(chunk) - pos)
        self._escape += chunk[pos:pos + take]
        pos += take
        if len(self._escape) == need:
            escape, self._escape = bytes(self._escape), bytearray()
            if self._sink is None:
                self._string_text(escape)  # short strings keep their raw JSON text
            else:
                self._sink.feed(self._resolve(escape))
        return pos

    def _resolve(self, escape: bytes) -> bytes:
        """The character an escape stands for (a non-ASCII one: as UTF-8, never base64)."""
        if escape[1] == ord("u"):
            if not all(c in _HEX for c in escape[2:]):
                raise self.invalid()
            return chr(int(escape[2:], 16)).encode("utf-8", "surrogatepass")
        if escape[1] not in _SIMPLE_ESCAPES:
            raise self.invalid()
        return _SIMPLE_ESCAPES[escape[1]]

    def _string_text(self, text: bytes) -> None:
        if self._sink is not None:
            self._sink.feed(text)
            return
        self._string += text
        if len(self._string) > self._blob_min:
            try:
                start = json.loads(b'"' + bytes(self._string) + b'"')
            except ValueError:
                raise self.invalid() from None
            self._sink, self._string = Base64Sink(), bytearray()
            self._sink.feed(start.encode("utf-8", "surrogatepass"))

    def _close_string(self) -> None:
        if self._sink is not None:
            self._skeleton += json.dumps(f"{self._token}{len(self._sinks)}")[1:-1].encode()
            self._sinks.append(self._sink)
            self._sink = None
        else:
            self._skeleton += self._string
            self._string = bytearray()
        self._skeleton += b'"'
        self._in_string = False

    def invalid(self) -> ProviderError:
        """The error of an answer that is not JSON."""
        return ProviderError(ErrorClass.BAD_RESPONSE, f"{self.what}: invalid JSON")

    def parse(self) -> object:
        """The whole answer: its JSON with a Blob in place of each long string."""
        if self._in_string or self._escape:
            raise self.invalid()  # cut inside a string
        payload = parse_json(bytes(self._skeleton), self.what)
        if not self._sinks:
            return payload
        blobs = [_blob(sink) for sink in self._sinks]
        self._sinks = []
        return _put_blobs(payload, self._token, blobs)


async def read_inline_json(response: httpx.Response, max_bytes: int, what: str,
                           blob_min_chars: int = BLOB_MIN_CHARS) -> object:
    """The JSON of a streamed ``response`` read under ``max_bytes``, long strings as Blobs.

    An answer no longer than ``blob_min_chars`` can hold no long string: it is parsed whole
    (the same result at a fraction of the streaming reader's CPU, for small images)."""
    held: list[bytes] = []
    size, reader = 0, None
    async with contextlib.aclosing(capped_pieces(response, max_bytes)) as pieces:
        async for piece in pieces:
            if reader is not None:
                reader.feed(piece)
                continue
            held.append(piece)
            size += len(piece)
            if size > blob_min_chars:
                reader = InlineJsonReader(what, blob_min_chars)
                for each in held:
                    reader.feed(each)
                held = []
    if reader is None:
        return parse_json(b"".join(held), what)
    return reader.parse()


def _find(chunk: bytes, needle: bytes, start: int, end: int) -> int:
    found = chunk.find(needle, start)
    return end if found < 0 else found


def _put_blobs(payload: object, token: str, blobs: list[Blob]) -> object:
    """``payload`` with each token string replaced by its Blob (in place; depth is capped)."""

    def swap(value: object) -> object:
        if isinstance(value, str) and value.startswith(token):
            index = value[len(token):]
            return blobs[int(index)] if index.isdigit() and int(index) < len(blobs) else value
        return value

    todo = [payload]
    while todo:
        node = todo.pop()
        items = node.items() if isinstance(node, dict) else (
            enumerate(node) if isinstance(node, list) else ())
        for key, value in list(items):
            if isinstance(value, dict | list):
                todo.append(value)
            else:
                node[key] = swap(value)
    return swap(payload)
