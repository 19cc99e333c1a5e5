"""Reference images stay in the catalog's folder, the operator's roots and allowed buckets."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from catalog_images.catalog.references import (
    OUTSIDE,
    REFERENCE_BUCKETS_ENV,
    REFERENCE_ROOTS_ENV,
    ReferencePolicy,
    catalog_base,
)
from catalog_images.catalog.validate import RowValidator, load_reference_bytes


def _png(path):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def _reason(validator: RowValidator, reference: str) -> str | None:
    outcome = validator.check({"sku": "A", "prompt": "p", "reference_image": reference,
                               "_row": 1})
    validator.seen.clear()
    return None if isinstance(outcome, dict) else outcome.reason


def test_local_references_are_confined_to_the_catalog_folder(tmp_path):
    folder = tmp_path / "catalog"
    (folder / "sub").mkdir(parents=True)
    _png(folder / "sub" / "ok.png")
    secret = _png(tmp_path / "secret.png")
    (folder / "link.png").symlink_to(secret)
    (folder / "dirlink").symlink_to(tmp_path)
    validator = RowValidator(None, str(folder), None, references=ReferencePolicy.for_catalog(
        str(folder), env={}))
    assert _reason(validator, "sub/ok.png") is None
    assert _reason(validator, str(folder / "sub" / "ok.png")) is None
    refused = {ref: _reason(validator, ref) for ref in (
        "../secret.png", str(secret), "link.png", "dirlink/secret.png", "sub/../../secret.png",
        "../missing.png", "/etc/passwd", "/nonexistent/x.png")}
    for ref, reason in refused.items():
        assert reason == f"unreadable reference image {ref}: {OUTSIDE}", reason
        assert "no such file" not in reason and "bytes" not in reason
    # inside the folder a missing file is still named as such (nothing outside is disclosed)
    assert "no such file" in _reason(validator, "sub/missing.png")


def test_operator_roots_extend_the_local_folders(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    ref = _png(shared / "logo.png")
    env = {REFERENCE_ROOTS_ENV: str(shared)}
    policy = ReferencePolicy.for_catalog(str(tmp_path / "catalog"), env=env)
    assert policy.allows(str(ref))
    assert not policy.allows(str(tmp_path / "other.png"))
    assert not policy.allows("relative.png")


def test_s3_references_only_in_allowed_buckets_or_the_catalog_folder():
    base = catalog_base("s3://cat-bucket/catalogs/spring/c.csv")
    policy = ReferencePolicy.for_catalog(base, "dest-bucket", env={REFERENCE_BUCKETS_ENV:
                                                                   "assets, more"})
    assert policy.allows("s3://cat-bucket/catalogs/spring/refs/a.png")
    assert policy.allows("s3://dest-bucket/anything/a.png")
    assert policy.allows("s3://assets/a.png")
    for uri in ("s3://cat-bucket/catalogs/other/a.png", "s3://cat-bucket/catalogs/spring/../x",
                "s3://dest-bucket/a/../../b.png", "s3://secrets/prod.png",
                "s3://cat-bucket/catalogs/spring//a.png", "/etc/passwd", "s3://"):
        assert not policy.allows(uri), uri


def test_an_s3_catalog_never_names_the_workers_disk(tmp_path):
    local = _png(tmp_path / "private.png")
    policy = ReferencePolicy.for_catalog("s3://bucket/catalogs",
                                         env={REFERENCE_ROOTS_ENV: str(tmp_path)})
    assert not policy.allows(str(local))


def test_a_swapped_symlink_is_caught_after_opening(tmp_path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    secret = _png(tmp_path / "secret.png")
    policy = ReferencePolicy.for_catalog(str(folder), env={})
    with open(secret, "rb") as handle:
        assert not policy.allows_opened(handle.fileno())


def test_generation_time_loads_outside_the_policy_are_refused(tmp_path):
    # A shard's jobs or a batch record come back from the bucket: checked again when read.
    folder = tmp_path / "catalog"
    folder.mkdir()
    inside = _png(folder / "ok.png")
    secret = _png(tmp_path / "secret.png")
    policy = ReferencePolicy.for_catalog(str(folder), "dest", env={})
    assert load_reference_bytes(str(inside), None, policy) == inside.read_bytes()
    for reference in (str(secret), "s3://other-bucket/x.png"):
        with pytest.raises(ValueError, match="not a file this run may read"):
            load_reference_bytes(reference, None, policy)
