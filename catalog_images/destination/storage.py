"""S3-compatible storage: locations, client settings, and the uploads of a run.

Settings come from the standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``...) or from a Prefect ``AwsCredentials``
block. Image uploads use aiobotocore inside the run's event loop (botocore, as boto3, but
without a thread per upload: measured four times cheaper in CPU beside asyncio, see
docs/architecture.md); catalog reads and report writes use boto3.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import boto3
import botocore.loaders
import botocore.session
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.secrets import redact, register_secret

AddressingStyle = Literal["auto", "path", "virtual"]
ADDRESSING_ENV = "CATALOG_IMAGES_S3_ADDRESSING"
AWS_BLOCK_ENV = "CATALOG_IMAGES_AWS_CREDENTIALS_BLOCK"
_BOTO3_CLIENTS: dict[tuple, object] = {}  # S3Settings.boto3_client's, by settings and options
_BOTO3_CLIENTS_LOCK = threading.Lock()


class StorageError(RuntimeError):
    """An S3 problem, with credentials removed from the message."""


@dataclass(frozen=True, slots=True)
class S3Location:
    """``s3://bucket/prefix`` split into its parts (prefix without slashes at the ends)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Parse ``s3://bucket[/prefix]``; raise ValueError naming the problem."""
        if not uri.startswith("s3://"):
            raise ValueError(f"{uri!r} is not an s3:// URI (expected s3://BUCKET/PREFIX)")
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise ValueError(f"{uri!r} has no bucket name (expected s3://BUCKET/PREFIX)")
        return cls(bucket=bucket, prefix=prefix.strip("/"))

    def key(self, *parts: str) -> str:
        """A key under the prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, *parts: str) -> str:
        """An ``s3://`` URI under the prefix."""
        return f"s3://{self.bucket}/{self.key(*parts)}"


@dataclass(frozen=True)
class S3Settings:
    """How to reach the store; secrets are kept out of ``repr``."""

    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: AddressingStyle = "auto"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def __repr__(self) -> str:
        return (
            f"S3Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r}, "
            f"addressing_style={self.addressing_style!r}, credentials="
            f"{'set' if self.access_key_id else 'default chain'})"
        )

    @classmethod
    def from_environment(cls, aws_credentials_block: str | None = None) -> S3Settings:
        """Settings from the AWS variables, with credentials from a block when named."""
        block = aws_credentials_block or os.environ.get(AWS_BLOCK_ENV)
        key_id = secret = token = None
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if block:
            key_id, secret, token, block_region = _credentials_from_block(block)
            region = region or block_region
        register_secret(os.environ.get("AWS_SECRET_ACCESS_KEY"))
        register_secret(os.environ.get("AWS_SESSION_TOKEN"))
        register_secret(secret)
        register_secret(token)
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        style = os.environ.get(ADDRESSING_ENV) or ("path" if endpoint else "auto")
        if style not in ("auto", "path", "virtual"):
            raise ValueError(f"{ADDRESSING_ENV}={style!r}: use auto, path or virtual")
        return cls(endpoint, region or "us-east-1", style, key_id, secret, token)  # type: ignore[arg-type]

    def client_kwargs(self) -> dict:
        """Keyword arguments shared by boto3 and aiobotocore ``create_client``."""
        kwargs: dict = {"region_name": self.region}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.access_key_id:
            kwargs["aws_access_key_id"] = self.access_key_id
            kwargs["aws_secret_access_key"] = self.secret_access_key
            kwargs["aws_session_token"] = self.session_token
        return kwargs

    def boto3_client(self, read_timeout: int = 60, max_attempts: int = 5):
        """A synchronous boto3 S3 client, one per settings and options in this process.

        Creating one reads the service model (0.3-0.7 s of CPU, seconds on a loaded machine,
        once per file of a report); a boto3 client is thread-safe, so it is shared.
        """
        key = (self, read_timeout, max_attempts)
        with _BOTO3_CLIENTS_LOCK:
            if key not in _BOTO3_CLIENTS:
                config = Config(
                    s3={"addressing_style": self.addressing_style},
                    retries={"max_attempts": max_attempts, "mode": "standard"},
                    connect_timeout=5, read_timeout=read_timeout,
                )
                _BOTO3_CLIENTS[key] = boto3_session().client(
                    "s3", config=config, **self.client_kwargs())
            return _BOTO3_CLIENTS[key]

    def aio_client_context(self, max_pool_connections: int):
        """An aiobotocore S3 client context manager with a pool of the given size."""
        config = AioConfig(
            s3={"addressing_style": self.addressing_style},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5, read_timeout=60,
            max_pool_connections=max_pool_connections,
        )
        session = AioSession()
        session.register_component("data_loader", _service_data())
        return session.create_client("s3", config=config, **self.client_kwargs())


def boto3_session() -> boto3.session.Session:
    """A fresh boto3 session (credentials resolved afresh) on the process's one data loader."""
    botocore_session = botocore.session.Session()
    botocore_session.register_component("data_loader", _service_data())
    return boto3.session.Session(botocore_session=botocore_session)


@functools.cache
def _service_data() -> botocore.loaders.Loader:
    """One botocore data loader per process, shared by every client's fresh session.

    Each new session otherwise re-reads and parses the S3 service model and endpoint rules
    (measured: most of a small run's S3 time); sessions stay per client, so credentials
    are still resolved afresh each time.
    """
    return botocore.loaders.create_loader()


def _credentials_from_block(name: str) -> tuple[str | None, str | None, str | None, str | None]:
    from prefect_aws import AwsCredentials

    try:
        block = AwsCredentials.load(name)
    except (ValueError, RuntimeError) as exc:
        raise StorageError(f"AwsCredentials block {name!r} could not be loaded: {exc}") from None
    secret = block.aws_secret_access_key
    token = block.aws_session_token
    return (
        block.aws_access_key_id,
        secret.get_secret_value() if secret else None,
        token.get_secret_value() if token else None,
        block.region_name,
    )


def describe_s3_error(exc: BaseException) -> str:
    """A short, secret-free description of a boto error."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return redact(f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".strip(": "))
    if isinstance(exc, BotoCoreError):
        return redact(f"{type(exc).__name__}: {exc}")
    return redact(f"{type(exc).__name__}: {exc}")


def check_bucket(settings: S3Settings, location: S3Location) -> None:
    """Fail early, with a clear message, when the destination bucket cannot be reached."""
    try:
        settings.boto3_client().head_bucket(Bucket=location.bucket)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(
            f"destination bucket {location.bucket!r} is not usable: {describe_s3_error(exc)} "
            "(check the bucket name, AWS_ENDPOINT_URL and credentials)"
        ) from None


def read_object(settings: S3Settings, uri: str, max_bytes: int) -> bytes:
    """Read a small object fully; raise StorageError when missing or larger than max_bytes."""
    loc = S3Location.parse(uri)
    client = settings.boto3_client()
    try:
        head = client.head_object(Bucket=loc.bucket, Key=loc.prefix)
        if head["ContentLength"] > max_bytes:
            raise StorageError(f"{uri} is {head['ContentLength']} bytes, over {max_bytes}")
        return client.get_object(Bucket=loc.bucket, Key=loc.prefix)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot read {uri}: {describe_s3_error(exc)}") from None


def capped_read(body, max_bytes: int, what: str) -> bytes:
    """Read a streamed object body, but no more than ``max_bytes``; StorageError past that."""
    data = body.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise StorageError(f"{what} is over {max_bytes} bytes")
    return data


def put_file(settings: S3Settings, location: S3Location, key: str, path: Path, content_type: str):
    """Upload a local file (report, manifest) under ``key``."""
    try:
        settings.boto3_client().upload_file(
            str(path), location.bucket, key, ExtraArgs={"ContentType": content_type}
        )
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot write s3://{location.bucket}/{key}: "
                           f"{describe_s3_error(exc)}") from None
