"""The interface every provider client implements."""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Protocol

from catalog_images.images import ImageCheckError, ImageTooLarge, inspect_image, max_pixels
from catalog_images.models import GeneratedImage, ImageRequest
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.inline_json import Blob

_NO_WHITESPACE = str.maketrans("", "", " \t\r\n")


class StopSignal(Protocol):
    """What a long provider wait (a batch poll) asks of the run's stop request."""

    @property
    def requested(self) -> bool:
        """True once the run is stopping."""
        ...

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when a stop is requested meanwhile."""
        ...

class ImageProvider(Protocol):
    """A client that turns one ImageRequest into one verified image, or a ProviderError."""

    name: str
    model: str

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """Generate one image; raise ProviderError (classified) on any failure."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def decode_base64_image(data: str) -> bytes:
    """Decode base64 image data (a bare string or a ``data:`` URI; a Blob was decoded as it
    was read: ``inline_json``). ASCII whitespace is skipped, as in a Blob."""
    if isinstance(data, Blob):
        return data.data()
    data = data.strip()
    if data.startswith("data:"):
        data = data.split(",", 1)[1] if "," in data else ""
    try:
        return b64decode(data.translate(_NO_WHITESPACE), validate=True)
    except (binascii.Error, ValueError):
        raise ProviderError(ErrorClass.BAD_RESPONSE, "image data is not valid base64") from None


def verified_image(
    data: bytes, request: ImageRequest, *, usage: dict | None = None,
    model_version: str | None = None, response_id: str | None = None,
) -> GeneratedImage:
    """Check the bytes are a whole image and wrap them.

    A truncated or corrupt image is retryable (it was never a usable delivery); an image
    over the pixel cap of its resolution is final (refused unread: a likely bomb). Its shape
    is not judged here: an intact image of another shape was paid for, and what to do with
    it is the run's policy (``wrong_shape``, generation/shape.py).
    """
    try:
        info = inspect_image(data, max_pixels(request.resolution))
    except ImageTooLarge as exc:
        raise ProviderError(ErrorClass.REFUSED, str(exc), billed=True) from None
    except ImageCheckError as exc:
        raise ProviderError(ErrorClass.BAD_RESPONSE, str(exc)) from None
    return GeneratedImage(
        data=data, mime_type=info.mime_type, width=info.width, height=info.height,
        usage=usage or {}, model_version=model_version, response_id=response_id,
    )
