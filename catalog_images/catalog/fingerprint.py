"""What produced an image, as one hash: same fingerprint, same image, no need to pay again."""

from __future__ import annotations

import hashlib
import json


def sha256_hex(data: bytes | str) -> str:
    """Hex SHA-256 of bytes or UTF-8 text."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def fingerprint(
    prompt: str, resolution: str, aspect_ratio: str, model: str, reference_sha256: str | None
) -> str:
    """Hash of the templated prompt, reference image content, resolution, ratio and model."""
    material = json.dumps(
        [prompt, resolution, aspect_ratio, model, reference_sha256 or ""], ensure_ascii=False
    )
    return sha256_hex(material)
