"""Turn catalog rows into generation jobs, or into rejections with a reason.

Nothing here calls a provider: every check runs before money is spent.
"""

from __future__ import annotations

import os
import re
import stat
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from catalog_images.catalog.fingerprint import fingerprint, sha256_hex
from catalog_images.catalog.read import (
    BAD_CELLS,
    BAD_LINE,
    LONG_CELLS,
    ROW_NUMBER,
    CatalogError,
    Columns,
    printable,
)
from catalog_images.catalog.references import OUTSIDE, ReferencePolicy
from catalog_images.destination.storage import S3Settings, StorageError, read_object
from catalog_images.images import ImageCheckError, inspect_image
from catalog_images.models import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_RESOLUTION,
    RESOLUTIONS,
)
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.model_catalog import family_of, known_models

# Room for a sku in a key of a destination without a prefix (DestinationLayout.sku_key_room).
DEFAULT_SKU_KEY_ROOM = 1024 - len("quarantine/.webp")
# Invisible or layout characters a SKU must not hold: controls (Cc), format characters (Cf,
# such as bidi overrides) but the zero-width (non-)joiners that some scripts need, surrogates,
# private use, unassigned code points, line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
_JOINERS = frozenset("\u200c\u200d")
_PLAIN_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9_ -]*(?:\.[A-Za-z0-9_ -]+)*")  # the fast path
MAX_PROMPT_CHARS = 20_000
MAX_REFERENCE_BYTES = 7 * 1024 * 1024  # Gemini's limit per inline image
PRIORITIES = ("high", "normal", "low")
OPTION_COLUMNS = ("resolution", "aspect_ratio", "reference_image", "priority", "model")
JOB_FIELDS = ("sku", "prompt", "resolution", "aspect_ratio", "reference_image", "priority", "row",
              "fingerprint", "model")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A catalog row that will not be generated, and why."""

    row: int
    sku: str | None
    reason: str


def template_fields(template: str) -> list[str]:
    """Column names used as ``{column}`` placeholders; CatalogError when malformed.

    Only plain ``{column}`` placeholders are allowed: ``{}``, ``{0}``, ``{a.b}``, ``{a[0]}``,
    ``{a!r}`` and ``{a:>9}`` would make str.format_map fail (or run away) on the first row.
    """
    try:
        parsed = [(field, spec, conversion)
                  for _, field, spec, conversion in string.Formatter().parse(template)
                  if field is not None]
    except ValueError as exc:
        raise CatalogError(f"prompt_template is malformed: {exc}") from None
    for field, spec, conversion in parsed:
        problem = _placeholder_problem(field, spec, conversion)
        if problem:
            raise CatalogError(f"prompt_template placeholder {problem}; use plain {{column}} "
                               "placeholders such as {title}")
    return [field for field, _, _ in parsed]


def _placeholder_problem(field: str, spec: str | None, conversion: str | None) -> str | None:
    shown = printable(field)
    if not field or field.isdecimal():
        return f"{{{shown}}} is positional, not a column name"
    if conversion:
        return f"{{{shown}!{printable(conversion)}}} has a conversion"
    if spec:
        return f"{{{shown}:{printable(spec)}}} has a format spec"
    if not re.fullmatch(r"[\w -]+", field):
        return f"{{{shown}}} is not a column name (letters, digits, '_', '-' and spaces only)"
    return None


def used_columns(prompt_template: str | None) -> list[str]:
    """The columns a run reads: sku, the prompt (or the template's columns) and the options."""
    prompt = template_fields(prompt_template) if prompt_template else ["prompt"]
    return ["sku", *prompt, *OPTION_COLUMNS]


def check_columns(columns: list[str], prompt_template: str | None) -> None:
    """Stop the run when a required column or a template's column is missing or unreadable.

    With ``columns`` from read_columns, the messages name the catalog file.
    """
    where = "catalog"
    if isinstance(columns, Columns) and columns.uri:
        where = f"catalog {printable(columns.uri)}"
    if "sku" not in columns:
        raise CatalogError(f"{where} has no 'sku' column (columns: {_listed(columns)}); "
                           "name the column of unique product ids 'sku'")
    if prompt_template:
        missing = [f for f in template_fields(prompt_template) if f not in columns]
        if missing:
            raise CatalogError(
                f"{where}: prompt_template uses {', '.join('{' + m + '}' for m in missing)} "
                f"but the catalog has no such column (columns: {_listed(columns)})"
            )
    elif "prompt" not in columns:
        raise CatalogError(
            f"{where} has no 'prompt' column; add one or pass a prompt template "
            "(--prompt-template 'Studio photo of {title}')"
        )
    unreadable = columns.unreadable if isinstance(columns, Columns) else {}
    for name in used_columns(prompt_template):
        if name in unreadable:
            raise CatalogError(
                f"{where}: column '{name}' holds {printable(unreadable[name])} values, which "
                "cannot be read as text; store it as a string column"
            )


def _listed(columns: list[str], limit: int = 50) -> str:
    """Column names for a message: escaped, and cut short when there are many."""
    shown = ", ".join(printable(name[:80]) for name in columns[:limit])
    return shown + (f", ... ({len(columns)} columns)" if len(columns) > limit else "")


def _too_long(long: dict[str, int]) -> str:
    """The reason of a row whose cells were cut on reading (catalog/bounds.py)."""
    name, length = next(iter(long.items()))
    if name == "prompt":
        return f"prompt is {length} characters, over the {MAX_PROMPT_CHARS} limit"
    return f"column '{printable(name)}' is {length} characters, longer than any usable value"


def _clean(value: object) -> str:
    return "" if value is None else str(value).strip()


def normal_sku(value: object) -> str:
    """A catalog cell as a sku: stripped, in Unicode NFC, so two spellings of ``café`` (a
    composed é, or e + a combining accent) are one sku with one key."""
    text = _clean(value)
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def sku_problem(sku: str, key_room: int = DEFAULT_SKU_KEY_ROOM) -> str | None:
    """Why ``sku`` cannot be an object name under the key prefix, or None when it can.

    Any script is welcome (``café-mug``, ``Kaffeetasse-groß``, ``茶杯-01``); what is refused
    would escape the prefix, hide characters, or make a key longer than S3 allows
    (``key_room``: UTF-8 bytes left for the sku in the longest key built from it).
    """
    if not sku:
        return "missing sku"
    if _PLAIN_SKU.fullmatch(sku) and len(sku) <= key_room:
        return None  # ASCII letters, digits, '_', '-', spaces and single dots: safe
    shown = repr(sku[:80])  # escapes control and invisible characters
    if "/" in sku or "\\" in sku or ".." in sku:
        return f"sku {shown} would escape the key prefix (no '/', backslash or '..')"
    unsafe = next((ch for ch in sku if ch not in _JOINERS and (
        unicodedata.category(ch) in _UNSAFE_CATEGORIES or (ch.isspace() and ch != " "))), None)
    if unsafe is not None:
        return (f"sku {shown} is not a safe object name: it holds the invisible or control "
                f"character U+{ord(unsafe):04X}; remove it from the catalog cell")
    if not sku[0].isalnum():
        return (f"sku {shown} is not a safe object name: start it with a letter or digit "
                "(of any script)")
    size = len(sku.encode("utf-8"))
    if size > key_room:
        return (f"sku {repr(sku[:40])}... is not a safe object name: {size} bytes in UTF-8, "
                f"over the {key_room} its object key has room for under this destination (S3 "
                "keys are at most 1024 bytes); shorten it")
    return None


class RowValidator:
    """Checks rows one by one, remembering SKUs seen and reference images checked."""

    def __init__(
        self, prompt_template: str | None, catalog_base: str, s3: S3Settings | None,
        provider: ProviderConfig | None = None, model: str | None = None,
        references: ReferencePolicy | None = None, sku_key_room: int = DEFAULT_SKU_KEY_ROOM,
    ) -> None:
        self.prompt_template = prompt_template
        self.sku_key_room = sku_key_room
        self.catalog_base = catalog_base
        self.s3 = s3
        self.references = references or ReferencePolicy.for_catalog(catalog_base)
        self.provider = provider or ProviderConfig(name="default", kind="gemini",
                                                   base_url="http://unused")
        self.model = model  # the run's model (None: the provider's own)
        self._template_fields = template_fields(prompt_template) if prompt_template else []
        self._used = set(used_columns(prompt_template))
        self.seen: set[str] = set()
        self._references: dict[str, tuple[str | None, str | None]] = {}

    def check(self, row: dict) -> dict | Rejection:
        """A job dict (JOB_FIELDS) for a good row, a Rejection for a bad one."""
        number = int(row[ROW_NUMBER])
        if row.get(BAD_LINE):
            return Rejection(number, None, f"malformed CSV {row[BAD_LINE]}")
        bad_cells = [name for name in row.get(BAD_CELLS, ()) if name in self._used]
        if bad_cells:
            return Rejection(number, _clean(row.get("sku")) or None, (
                f"column '{printable(bad_cells[0])}' is not valid UTF-8 text on this row; "
                "re-write the file with UTF-8 strings"))
        long = {name: n for name, n in row.get(LONG_CELLS, {}).items() if name in self._used}
        if long:
            return Rejection(number, normal_sku(row.get("sku"))[:200] or None, _too_long(long))
        sku = normal_sku(row.get("sku"))
        problem = sku_problem(sku, self.sku_key_room)
        if problem:
            return Rejection(number, sku or None, problem)
        if sku in self.seen:
            return Rejection(number, sku, f"duplicate sku {sku!r} (first seen on an earlier row)")
        self.seen.add(sku)
        job_or_reason = self._job(sku, row, number)
        if isinstance(job_or_reason, str):
            return Rejection(number, sku, job_or_reason)
        return job_or_reason

    def _job(self, sku: str, row: dict, number: int) -> dict | str:
        if self.prompt_template:
            empty = [f for f in self._template_fields if not _clean(row.get(f))]
            if empty:
                return (f"prompt_template placeholder {{{empty[0]}}} is empty on this row "
                        "(fill the column or use a prompt column)")
        prompt = self._prompt(row)
        if not prompt:
            return "empty prompt"
        if len(prompt) > MAX_PROMPT_CHARS:
            return f"prompt is {len(prompt)} characters, over the {MAX_PROMPT_CHARS} limit"
        options = self._options(row)
        if isinstance(options, str):
            return options
        resolution, ratio, priority, model = options
        reference = _clean(row.get("reference_image"))
        reference_sha = None
        if reference:
            problem, reference, reference_sha = self._checked_reference(reference)
            if problem:
                return problem
        return {
            "sku": sku, "prompt": prompt, "resolution": resolution, "aspect_ratio": ratio,
            "reference_image": reference or None, "priority": priority, "row": number,
            "fingerprint": fingerprint(prompt, resolution, ratio,
                                       self.provider.fingerprint_model(model), reference_sha),
            "model": model,
        }

    def _options(self, row: dict) -> tuple[str, str, str, str | None] | str:
        """(resolution, aspect ratio, priority, model) of a row, or why one is wrong."""
        resolution = _clean(row.get("resolution")).upper() or DEFAULT_RESOLUTION
        if resolution not in RESOLUTIONS:
            return f"unknown resolution {resolution!r} (use {', '.join(RESOLUTIONS)})"
        ratio = _clean(row.get("aspect_ratio")) or DEFAULT_ASPECT_RATIO
        if ratio not in ASPECT_RATIOS:
            return f"unknown aspect_ratio {ratio!r} (use one of {' '.join(ASPECT_RATIOS)})"
        priority = _clean(row.get("priority")).lower() or "normal"
        if priority not in PRIORITIES:
            return f"unknown priority {priority!r} (use {', '.join(PRIORITIES)})"
        model = _clean(row.get("model")) or self.model
        if model and family_of(model) is None and model != self.model:
            return (f"unknown model {printable(model[:80])!r} (use one of "
                    f"{', '.join(known_models())}, or leave the cell empty)")
        return resolution, ratio, priority, model or None

    def _prompt(self, row: dict) -> str:
        if not self.prompt_template:
            return _clean(row.get("prompt"))
        values = {k: _clean(v) for k, v in row.items() if isinstance(k, str)}
        return self.prompt_template.format_map(values).strip()

    def resolve_reference(self, value: str) -> str:
        """An absolute local path or s3:// URI for a reference_image cell."""
        if value.startswith("s3://") or Path(value).is_absolute():
            return value
        if self.catalog_base.startswith("s3://"):
            return f"{self.catalog_base}/{value}"
        return str(Path(self.catalog_base) / value)

    def _checked_reference(self, value: str) -> tuple[str | None, str, str | None]:
        """(problem, resolved reference, content sha256) for a reference_image cell.

        A reference outside the policy gets one reason whether or not a file is there.
        """
        reference = self.resolve_reference(value)
        if not self.references.allows(reference):
            return f"unreadable reference image {printable(value)}: {OUTSIDE}", reference, None
        problem, sha = self._reference(reference)
        return problem, reference, sha

    def _reference(self, reference: str) -> tuple[str | None, str | None]:
        """(problem, content sha256) of a reference image, checked once per run."""
        if reference not in self._references:
            self._references[reference] = self._check_reference(reference)
        return self._references[reference]

    def _check_reference(self, reference: str) -> tuple[str | None, str | None]:
        shown = printable(reference)
        try:
            data = load_reference_bytes(reference, self.s3, self.references)
            inspect_image(data)
        except FileNotFoundError:
            return f"unreadable reference image {shown}: no such file", None
        except (OSError, StorageError, ImageCheckError, ValueError) as exc:
            return f"unreadable reference image {shown}: {printable(str(exc))}", None
        return None, sha256_hex(data)


def load_reference_bytes(reference: str, s3: S3Settings | None,
                         policy: ReferencePolicy | None = None) -> bytes:
    """Read a reference image (local or s3://), refusing files over Gemini's 7 MB limit.

    A local reference must be a regular file: a FIFO or a device such as /dev/zero would block
    or never end, so it is opened without blocking and read no further than the limit. With a
    ``policy``, a reference outside it is refused unread (ValueError).
    """
    if policy is not None and not policy.allows(reference):
        raise ValueError(OUTSIDE)
    if reference.startswith("s3://"):
        if s3 is None:
            raise StorageError("no S3 settings to read an s3:// reference image")
        return read_object(s3, reference, MAX_REFERENCE_BYTES)
    with open(reference, "rb", opener=_open_nonblocking) as handle:
        if policy is not None and not policy.allows_opened(handle.fileno()):
            raise ValueError(OUTSIDE)
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file (a pipe, device or socket)")
        if info.st_size > MAX_REFERENCE_BYTES:
            raise ValueError(f"{info.st_size} bytes, over the 7 MB limit")
        data = handle.read(MAX_REFERENCE_BYTES + 1)
    if len(data) > MAX_REFERENCE_BYTES:
        raise ValueError("over the 7 MB limit (the file grew while being read)")
    return data


def _open_nonblocking(path: str, flags: int) -> int:
    """os.open for open(opener=...): a FIFO without a writer opens at once instead of waiting."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
