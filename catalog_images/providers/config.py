"""Named provider configuration: built-in presets, an optional TOML file, key lookup.

A provider entry names where the key lives (an environment variable or a Prefect
``Secret`` block), never the key itself.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from catalog_images.providers.model_catalog import DEFAULT_MODEL
from catalog_images.providers.pricing import Priced, checked_rates
from catalog_images.secrets import register_secret

ProviderKind = Literal["gemini", "openai-images", "async-task", "emulator"]
AuthStyle = Literal["x-goog-api-key", "bearer", "none"]
PROVIDERS_FILE_ENV = "CATALOG_IMAGES_PROVIDERS_FILE"
EMULATOR_URL_ENV = "CATALOG_IMAGES_EMULATOR_URL"
DEFAULT_EMULATOR_URL = "http://127.0.0.1:8790"


class ConfigError(ValueError):
    """A configuration problem found before any request is sent."""


class ProviderFieldRenamed(FutureWarning):
    """A provider entry uses an old field name; it still works, under its new name."""


# Old provider field names, still accepted: "rpm" read as "per minute" though it meant per
# quota_window_s.
RENAMED_FIELDS: dict[str, str] = {
    "rpm": "requests_per_window", "quota_window_s": "window_s", "rpd": "requests_per_day",
}


def renamed_fields(entry: dict[str, Any], provider: str) -> dict[str, Any]:
    """``entry`` with old field names replaced by the new ones, warning once per old name.

    An entry that sets both names of one field, to different values, is an error.
    """
    entry = dict(entry)
    for old, new in RENAMED_FIELDS.items():
        if old not in entry:
            continue
        value = entry.pop(old)
        if new in entry and entry[new] != value:
            raise ValueError(f"set {new!r} only ({old!r} is its old name)")
        entry[new] = value
        hint = " (requests per window_s seconds, not per minute)" if old == "rpm" else ""
        warnings.warn(f"provider {provider!r}: field {old!r} is deprecated; use {new!r}{hint}",
                      ProviderFieldRenamed, stacklevel=3)
    return entry


class Prices(BaseModel):
    """USD per output image by resolution."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    k1: float = Field(0.134, alias="1K", ge=0)
    k2: float = Field(0.134, alias="2K", ge=0)
    k4: float = Field(0.24, alias="4K", ge=0)

    def for_resolution(self, resolution: str) -> float:
        """Price of one image at ``resolution``."""
        return {"1K": self.k1, "2K": self.k2, "4K": self.k4}[resolution]


class ProviderConfig(Priced, BaseModel):
    """One named provider: where it is, how to authenticate, what it costs, its limits."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: ProviderKind
    base_url: str
    auth: AuthStyle = "x-goog-api-key"
    api_key_env: str | None = None
    api_key_block: str | None = Field(None, description="name of a Prefect Secret block")
    model: str = DEFAULT_MODEL
    family: str | None = Field(
        None, description="the underlying model when the provider's own name for it differs "
        "(e.g. nano-banana-pro is gemini-3-pro-image): same family, same image")
    model_names: dict[str, str] = Field(
        default_factory=dict, description="this provider's names for other models, for rows "
        "and runs that choose one: {gemini-3.1-flash-image = 'nano-banana-2'}")
    billing: Literal["usage", "per_image"] = Field(
        "per_image", description="usage: billed by usageMetadata tokens at the model's rate "
        "card (Google); per_image: the flat price of prices (relays)")
    prices: Prices | None = Field(
        None, description="USD per image by resolution; unset: the model's list price")
    rates: dict[str, dict[str, float | str]] = Field(
        default_factory=dict, description="changes to a model's rate card: {gemini-3-pro-image"
        " = {output_text = 12.0, as_of = '2026-12-01'}} (USD per million tokens)")
    batch_prices: Prices | None = None
    requests_per_window: int | None = Field(
        None, gt=0, description="requests the provider accepts per window_s seconds (a sliding "
        "window); e.g. 300 with window_s 60 for 300 per minute")
    window_s: float = Field(60.0, gt=0, description="length of the requests_per_window window")
    requests_per_day: int | None = Field(None, gt=0, description="requests per day, per run")
    max_concurrency: int = Field(64, gt=0)
    timeout_s: float = Field(180.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    typical_latency_s: float = Field(
        12.0, gt=0, description="seconds per image, for duration estimates only")
    response_format: Literal["b64_json", "url"] = "b64_json"  # openai-images
    poll_initial_s: float = Field(2.5, gt=0)  # async-task
    poll_max_s: float = Field(15.0, gt=0)
    task_deadline_s: float = Field(900.0, gt=0)
    max_response_bytes: int = Field(
        160 * 1024 * 1024, gt=0, description="cap on one answer's bytes, after decompression "
        "(a 4K PNG in base64 is tens of MB); a batch result line has the same cap")
    results_allow_http: bool = Field(
        False, description="result URLs (async-task, response_format=url) may be plain http")
    results_private_networks: list[str] = Field(
        default_factory=list, description="CIDRs of private/loopback/link-local addresses a "
        "result URL may resolve to (none by default: such URLs are refused)")

    @model_validator(mode="before")
    @classmethod
    def _old_field_names(cls, data: Any) -> Any:
        return renamed_fields(data, str(data.get("name", "?"))) if isinstance(data, dict) else data

    def _old_name(self, old: str) -> Any:
        new = RENAMED_FIELDS[old]
        warnings.warn(f"ProviderConfig.{old} is deprecated; use .{new}", DeprecationWarning,
                      stacklevel=3)
        return getattr(self, new)

    # Old attribute names, for code written before the rename; each warns.
    rpm = property(lambda self: self._old_name("rpm"), doc="Old name of requests_per_window.")
    quota_window_s = property(lambda self: self._old_name("quota_window_s"),
                              doc="Old name of window_s.")
    rpd = property(lambda self: self._old_name("rpd"), doc="Old name of requests_per_day.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("results_private_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("rates")
    @classmethod
    def _known_rates(cls, value: dict[str, dict[str, float | str]]) -> dict:
        return checked_rates(value)

    def resolve_api_key(self) -> str | None:
        """Read the key from its environment variable or Prefect Secret block."""
        key: str | None = None
        if self.api_key_env:
            key = os.environ.get(self.api_key_env) or None
        if key is None and self.api_key_block:
            key = _secret_block_value(self.api_key_block)
        if key is None and self.auth != "none" and self.kind != "emulator":
            where = self.api_key_env or f"Prefect Secret block {self.api_key_block!r}"
            raise ConfigError(
                f"provider {self.name!r}: no API key; set {where} (field api_key_env / "
                "api_key_block)"
            )
        register_secret(key)
        return key


def _secret_block_value(block_name: str) -> str | None:
    from prefect.blocks.system import Secret

    try:
        return str(Secret.load(block_name).get())
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"Prefect Secret block {block_name!r} could not be loaded: {exc}"
        ) from None


def builtin_presets() -> dict[str, dict]:
    """The provider landscape of the seed document, with its prices as editable defaults."""
    emulator_url = os.environ.get(EMULATOR_URL_ENV, DEFAULT_EMULATOR_URL)
    return {
        "emulator": {
            "kind": "emulator", "base_url": emulator_url, "auth": "x-goog-api-key",
            "api_key_env": "CATALOG_IMAGES_EMULATOR_KEY", "max_concurrency": 64,
            "timeout_s": 60.0, "typical_latency_s": 0.5,
            "results_allow_http": True, "results_private_networks": ["127.0.0.1/32"],
        },
        "google": {
            "kind": "gemini", "base_url": "https://generativelanguage.googleapis.com",
            "auth": "x-goog-api-key", "api_key_env": "GEMINI_API_KEY", "billing": "usage",
            "requests_per_window": 300, "requests_per_day": 1500, "max_concurrency": 32,
        },
        "openai-relay": {
            "kind": "openai-images", "base_url": "https://openai-relay.example.com",
            "auth": "bearer", "api_key_env": "OPENAI_RELAY_API_KEY", "max_concurrency": 64,
            "prices": {"1K": 0.05, "2K": 0.05, "4K": 0.05},
        },
        "async-task-relay": {
            "kind": "async-task", "base_url": "https://async-relay.example.com",
            "auth": "bearer", "api_key_env": "ASYNC_RELAY_API_KEY", "model": "nano-banana-pro",
            "family": "gemini-3-pro-image",
            "model_names": {"gemini-3-pro-image": "nano-banana-pro",
                            "gemini-3-pro-image-preview": "nano-banana-pro"},
            "requests_per_window": 20, "window_s": 10.0, "max_concurrency": 200,
            "typical_latency_s": 60.0,
            "prices": {"1K": 0.09, "2K": 0.09, "4K": 0.12},
        },
        "gemini-relay": {
            "kind": "gemini", "base_url": "https://relay.example.com", "auth": "bearer",
            "api_key_env": "GEMINI_RELAY_API_KEY", "max_concurrency": 64,
            "prices": {"1K": 0.05, "2K": 0.05, "4K": 0.05},
        },
    }


def _build(name: str, entry: dict) -> ProviderConfig:
    try:
        return ProviderConfig(name=name, **entry)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"provider {name!r}: {problems}") from None


def load_providers(path: str | Path | None = None) -> dict[str, ProviderConfig]:
    """Built-in presets overlaid with ``[providers.NAME]`` tables from a TOML file.

    The file comes from ``path`` or the ``CATALOG_IMAGES_PROVIDERS_FILE`` variable; a table
    for an existing preset name overrides only the fields it sets.
    """
    entries = builtin_presets()
    path = path or os.environ.get(PROVIDERS_FILE_ENV)
    if path:
        try:
            document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"provider file {path}: {exc}") from None
        for name, table in (document.get("providers") or {}).items():
            if not isinstance(table, dict):
                raise ConfigError(f"provider file {path}: [providers.{name}] must be a table")
            try:
                table = renamed_fields(table, name)
            except ValueError as exc:
                raise ConfigError(f"provider file {path}: [providers.{name}]: {exc}") from None
            entries[name] = {**entries.get(name, {}), **table}
    return {name: _build(name, entry) for name, entry in entries.items()}


def get_provider(name: str, path: str | Path | None = None) -> ProviderConfig:
    """The named provider, or a ConfigError listing the known names."""
    providers = load_providers(path)
    if name not in providers:
        raise ConfigError(f"unknown provider {name!r}; known: {', '.join(sorted(providers))}")
    return providers[name]
