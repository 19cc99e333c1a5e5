"""DestinationLayout: the keys of a destination, and no key built anywhere else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import S3Location

REPO = Path(__file__).resolve().parents[3]
LAYOUT = DestinationLayout(S3Location.parse("s3://bkt/some/prefix"))
BARE = DestinationLayout(S3Location.parse("s3://bkt"))


@pytest.mark.parametrize(("mime", "ext"), [("image/png", "png"), ("image/jpeg", "jpg"),
                                          ("image/webp", "webp"), ("image/gif", "bin")])
def test_image_key_takes_its_extension_from_the_mime_type(mime: str, ext: str) -> None:
    assert LAYOUT.image_key("SKU-1", mime) == f"some/prefix/images/SKU-1.{ext}"
    assert BARE.image_key("SKU-1", mime) == f"images/SKU-1.{ext}"


@pytest.mark.parametrize("sku", ["abc.v2", "a b+c", "ünï", "x.png", "-", "a/b"])
def test_odd_skus_are_kept_verbatim(sku: str) -> None:
    assert LAYOUT.image_key(sku, "image/jpeg") == f"some/prefix/images/{sku}.jpg"
    assert LAYOUT.image_listing_prefix(sku) == f"some/prefix/images/{sku}."


def test_candidates_of_a_sku_exclude_the_skus_that_extend_it() -> None:
    candidates = LAYOUT.image_candidate_keys("abc")
    assert candidates == {f"some/prefix/images/abc.{e}" for e in ("png", "jpg", "webp")}
    longer = LAYOUT.image_key("abc.v2", "image/png")
    assert longer.startswith(LAYOUT.image_listing_prefix("abc"))  # listed, then filtered out
    assert longer not in candidates
    assert LAYOUT.image_key("abc.v2", "image/png") in LAYOUT.image_candidate_keys("abc.v2")


def test_contact_sheet_links_climb_out_of_the_run_folder() -> None:
    for layout in (LAYOUT, BARE):
        key = layout.image_key("a.b", "image/webp")
        link = layout.image_link_from_run_folder(key)
        run_file = layout.run_key("r1", "contact-sheet.html")
        folder = run_file.rsplit("/", 1)[0].split("/")
        resolved = folder[: len(folder) - link.count("../")] + [link.replace("../", "")]
        assert "/".join(p for p in resolved if p) == key
        assert link == "../../images/a.b.webp"
    assert LAYOUT.image_link_from_run_folder(LAYOUT.image_key("a b#?", "image/png")) == (
        "../../images/a%20b%23%3F.png")


def test_run_files_and_folders() -> None:
    assert LAYOUT.run_key("r1", "report.json") == "some/prefix/runs/r1/report.json"
    assert LAYOUT.run_uri("r1", "report.json") == "s3://bkt/some/prefix/runs/r1/report.json"
    assert LAYOUT.run_key("r1") == "some/prefix/runs/r1"
    assert LAYOUT.run_uri("r1") == "s3://bkt/some/prefix/runs/r1/"
    assert LAYOUT.runs_prefix() == "some/prefix/runs/"
    assert LAYOUT.is_ledger_row(LAYOUT.run_key("r1", "summary.json"))
    assert not LAYOUT.is_ledger_row(LAYOUT.run_key("r1", "report.json"))
    assert LAYOUT.shard_key("r1", 7, "stats.json") == "some/prefix/runs/r1/shards/007/stats.json"
    assert BARE.images_uri() == "s3://bkt/images/"
    assert LAYOUT.images_uri() == "s3://bkt/some/prefix/images/"


def test_state_keys() -> None:
    assert LAYOUT.lease_key() == "some/prefix/state/lease.json"
    assert LAYOUT.lease_uri() == "s3://bkt/some/prefix/state/lease.json"
    assert (LAYOUT.root_uri, BARE.root_uri) == ("s3://bkt/some/prefix", "s3://bkt")
    assert LAYOUT.batches_prefix() == "some/prefix/state/batches/"
    assert LAYOUT.batch_record_key("catalog-images-x-1") == (
        "some/prefix/state/batches/catalog-images-x-1.json")
    part = LAYOUT.index_part_key("run-9", 12)
    assert part == "some/prefix/state/parts/run-9/000012.parquet"
    assert part.startswith(LAYOUT.index_parts_prefix())
    assert LAYOUT.run_of_index_part(part) == "run-9"
    snapshot = LAYOUT.snapshot_key("run-9")
    assert snapshot == "some/prefix/state/snapshots/run-9.parquet"
    assert snapshot.startswith(LAYOUT.snapshots_prefix()) and LAYOUT.is_snapshot(snapshot)
    assert LAYOUT.snapshot_runs_key(snapshot) == "some/prefix/state/snapshots/run-9.json"
    assert not LAYOUT.is_snapshot(LAYOUT.snapshot_runs_key(snapshot))


# ---- no key composed outside layout.py ----------------------------------------------------
SCANNED = ("catalog_images", "flows", "tasks")
# Wire formats and the emulator build provider URLs (``/v1/images/generations``), not keys.
NOT_DESTINATION = ("catalog_images/providers/", "catalog_images/devtools/emulator/")
ALLOWED = {"catalog_images/destination/layout.py", "catalog_images/destination/storage.py"}
FOLDER = re.compile(r"(?:^|/|\.\./)(?:images|runs|state)/")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the Constant nodes that are docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def violations(source: str, name: str) -> list[str]:
    """Places in ``source`` that build a destination key themselves."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("key", "uri")):
            found.append(f"{name}:{node.lineno}: .{node.func.attr}(...) call")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docs and FOLDER.search(node.value)):
            found.append(f"{name}:{node.lineno}: {node.value!r}")
    return found


def _sources() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel not in ALLOWED and not rel.startswith(NOT_DESTINATION):
                files.append(path)
    return files


def test_no_module_but_layout_builds_keys() -> None:
    files = _sources()
    assert len(files) > 40  # the scan really covers the package, flows and tasks
    found = [v for path in files
             for v in violations(path.read_text(encoding="utf-8"), path.relative_to(REPO))]
    assert found == []


@pytest.mark.parametrize("snippet", [
    'key = location.key("images", f"{sku}.png")',
    'uri = loc.uri("runs", run_id)',
    'link = f"../../images/{sku}.png"',
    'key = f"{prefix}/state/lease.json"',
    'prefix = "runs/"',
    'key = prefix + "/runs/" + run_id',
    'key = "/".join([prefix, f"state/parts/{run_id}"])',
])
def test_the_scan_catches_each_kind_of_composition(snippet: str) -> None:
    assert violations(snippet, "x.py")


@pytest.mark.parametrize("snippet", [
    '"""Files under ``runs/{run_id}/``."""',
    'def f():\n    """Keys ``state/lease.json``."""',
    'print(f"{rate:.1f} images/s")',
    'text = "| cost | images/s |"',
    'meta = json.loads(body)["runs"]',
    'self.key = layout.lease_key()',
])
def test_the_scan_ignores_docstrings_and_prose(snippet: str) -> None:
    assert violations(snippet, "x.py") == []


def test_quarantine_keys_are_apart_from_the_images() -> None:
    key = LAYOUT.quarantine_key("MUG-1", "image/jpeg")
    assert key == "some/prefix/quarantine/MUG-1.jpg"
    assert BARE.quarantine_key("茶杯-01", "image/png") == "quarantine/茶杯-01.png"
    assert LAYOUT.is_quarantine_key(key) and BARE.is_quarantine_key("quarantine/x.png")
    assert not LAYOUT.is_quarantine_key(LAYOUT.image_key("MUG-1", "image/jpeg"))
    assert not LAYOUT.is_quarantine_key("some/prefix/images/quarantine/x.png")
    assert LAYOUT.quarantine_uri() == "s3://bkt/some/prefix/quarantine/"


def test_the_room_for_a_sku_keeps_every_key_within_1024_utf8_bytes() -> None:
    for layout in (LAYOUT, BARE):
        room = layout.sku_key_room()
        sku = "é" * (room // 2)  # two bytes each
        keys = [layout.quarantine_key(sku, "image/webp"), layout.image_key(sku, "image/gif")]
        assert max(len(k.encode()) for k in keys) <= 1024
        assert len(layout.quarantine_key(sku + "xx", "image/webp").encode()) > 1024
    assert LAYOUT.sku_key_room() == 1024 - len("some/prefix/quarantine/.webp")
