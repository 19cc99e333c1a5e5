"""S3 user metadata values in any script: S3 sends metadata as HTTP headers, so a value must
be ASCII. A value that is not plain printable ASCII is stored as an RFC 2047 encoded word
(``=?UTF-8?B?...?=``), the convention S3 itself uses when it returns non-ASCII metadata; base64
keeps a long SKU inside S3's 2 KB metadata limit (percent-encoding could triple it).
Plain ASCII values, such as every SKU older versions accepted, are stored unchanged.
"""

from __future__ import annotations

import base64
from email.errors import HeaderParseError
from email.header import decode_header, make_header

_ENCODED_PREFIX = "=?"


def encode_value(text: str) -> str:
    """``text`` as an ASCII metadata value (unchanged when it already is plain ASCII)."""
    if text.isascii() and text.isprintable() and _ENCODED_PREFIX not in text:
        return text
    return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def decode_value(value: str) -> str:
    """The text of a metadata value written by ``encode_value`` (or by S3: B or Q words)."""
    if _ENCODED_PREFIX not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return value
