"""What the store answered about a destination's lease: a lease as read, and the
conditional-write refusals told apart (409 conflict, 412 precondition, 501 unsupported)."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from catalog_images.destination.lease_holder import Holder


def status(exc: ClientError) -> int:
    """The HTTP status of a refused request (0 when the answer has none)."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def conflict(exc: ClientError) -> bool:
    """409: a concurrent conditional write to the key (AWS); worth another try."""
    return status(exc) == 409 or _code(exc) == "ConditionalRequestConflict"


def precondition_failed(exc: ClientError) -> bool:
    """412: the lease is not (any more) as the condition said."""
    return status(exc) == 412 or _code(exc) == "PreconditionFailed"


def unsupported(exc: ClientError) -> bool:
    """501: the store refuses conditional writes."""
    return status(exc) == 501 or _code(exc) == "NotImplemented"


@dataclass(frozen=True)
class Seen:
    """A lease as read from the store."""

    holder: Holder
    etag: str
    age_s: float  # seconds since it was written, by the store's clock
    stamp: int | None  # the ``written`` stamp of that write
