"""The parameters of one run, validated before anything is read or sent."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SHARD_DEPLOYMENT = "catalog-refresh-shard/shard"
RunMode = Literal["standard", "batch"]
WrongShape = Literal["quarantine", "accept", "fail"]
MAX_LINK_EXPIRY_S = 7 * 24 * 3600  # S3 refuses presigned URLs valid for longer


class SettingsError(ValueError):
    """A run parameter is wrong; the message names it and says what to do."""


class RunSettings(BaseModel):
    """Validated run parameters (the flow's and the CLI's)."""

    model_config = ConfigDict(extra="forbid")

    catalog: str = Field(description="CSV or Parquet catalog: a local path or s3:// URI")
    dest: str = Field(description="s3://BUCKET/PREFIX where images, reports and the index go")
    provider: str = Field(
        "emulator", description="provider name (a built-in preset or one from the providers file)")
    fallback_providers: list[str] = Field(
        default_factory=list, description="providers to fail over to, in order")
    priority_providers: list[str] = Field(
        default_factory=list,
        description="route for rows with priority=high (default: the same as the others)")
    model: str | None = Field(
        None, description="model for rows without a 'model' column value, e.g. "
        "gemini-3.1-flash-image (default: each provider's own model)")
    concurrency: int = Field(16, ge=1, le=1024, description="requests in flight at most")
    prompt_template: str | None = Field(
        None, description="e.g. 'Studio photo of a {color} {title}'; catalog columns in braces")
    report_path: str | None = Field(None, description="also write the JSON report to this path")
    link_expiry_s: int = Field(
        MAX_LINK_EXPIRY_S, ge=60, le=MAX_LINK_EXPIRY_S,
        description="seconds the summary's presigned links (report, contact sheet, images "
        "listing) stay valid; at most 604800 (7 days, S3's limit)")
    # Each task run is states, events and a log line for the client and the Prefect API.
    # One pair of 10,000-row runs gave 43.0 s of CPU at 250 rows against 48.9 s at 100;
    # later measurements found no difference between 250 and 2,000 (docs/benchmarks.md).
    chunk_size: int = Field(250, ge=1, le=5000, description="rows per Prefect task run")
    max_attempts: int = Field(6, ge=1, le=20, description="provider attempts per row")
    providers_file: str | None = Field(
        None, description="TOML file with provider URLs, prices, limits and key locations")
    aws_credentials_block: str | None = Field(
        None, description="name of a Prefect AwsCredentials block for S3")
    breaker_cooldown_s: float = Field(
        10.0, gt=0, description="seconds an open circuit breaker waits before a probe")
    max_provider_wait_s: float = Field(
        300.0, gt=0, description="how long a row waits for a provider whose breaker is open")
    max_retry_hint_s: float = Field(
        120.0, gt=0, description="longest server retry hint (Retry-After, RetryInfo) obeyed; a "
        "longer one puts the provider out for the run, like a spent daily quota")
    row_deadline_s: float = Field(
        3600.0, gt=0, description="seconds a row may take in all (queues, retries, waits); "
        "then it ends failed with reason row_deadline")
    max_cost_usd: float | None = Field(
        None, ge=0, description="USD cap: no request starts that could take spend over it")
    approve_above_usd: float | None = Field(
        None, ge=0, description="a run whose projected cost is above this many USD waits for "
        "approval before its first paid request (Prefect: paused for input; CLI: a question, "
        "or --yes); unset: no approval")
    approval_timeout_s: float = Field(
        3600.0, gt=0, le=86_400, description="seconds a run waits for spend approval; then it "
        "ends, having spent nothing")
    force: bool = Field(False, description="regenerate every row, even unchanged ones")
    force_skus: list[str] = Field(
        default_factory=list, description="regenerate these skus even if unchanged")
    wrong_shape: WrongShape = Field(
        "quarantine", description="a paid, intact image not of the asked aspect ratio or "
        "resolution: quarantine (kept under quarantine/, never paid for again unless forced), "
        "accept (kept as the row's image, with a note) or fail (discarded; the row fails)")
    mode: RunMode = Field(
        "standard", description="standard, or batch (Gemini Batch Mode: half price, results "
        "within 24 h)")
    batch_rows: int = Field(1000, ge=1, le=100_000, description="batch mode: rows per batch job")
    batch_deadline_s: float = Field(
        86_400.0, gt=0, description="batch mode: seconds a run waits for its batch jobs (the "
        "next run collects later ones)")
    batch_poll_s: float = Field(
        30.0, gt=0, description="batch mode: first poll interval of a batch job, in seconds")
    global_limits: bool = Field(
        False, description="share provider rate limits with other runs through Prefect global "
        "concurrency limits named catalog-images-PROVIDER")
    shards: int = Field(
        1, ge=1, le=256,
        description="split the rows into this many child flow runs of the shard deployment, "
        "picked up by any number of workers (rate limits are then shared through Prefect)")
    shard_deployment: str = Field(
        SHARD_DEPLOYMENT, description="the deployment that runs one shard")
    dask_address: str | None = Field(
        None, description="run the shards as Prefect tasks on the dask.distributed scheduler "
        "at this address (e.g. tcp://10.0.0.5:8786) instead of child flow runs")

    @field_validator("fallback_providers", "priority_providers", "force_skus", mode="before")
    @classmethod
    def _none_is_no_names(cls, value: list[str] | None) -> list[str]:
        return [] if value is None else value

    @field_validator("force_skus")
    @classmethod
    def _skus_as_the_catalog_reads_them(cls, value: list[str]) -> list[str]:
        import unicodedata

        return [unicodedata.normalize("NFC", sku.strip()) for sku in value]  # as normal_sku

    @model_validator(mode="after")
    def _shards_run_standard_mode(self) -> RunSettings:
        if self.shards > 1 and self.mode == "batch":
            raise ValueError("shards: batch mode runs in one flow (the provider does the "
                             "scaling); use shards=1 with mode=batch")
        if self.dask_address and self.shards < 2:
            raise ValueError("dask_address: the Dask cluster runs shards; set shards to 2 or "
                             "more (e.g. the number of Dask workers), or leave dask_address out")
        return self

    @property
    def routes(self) -> dict[str, list[str]]:
        """Ordered provider names per row class."""
        bulk = list(dict.fromkeys([self.provider, *self.fallback_providers]))
        routes = {"bulk": bulk}
        if self.priority_providers:
            routes["priority"] = list(dict.fromkeys(self.priority_providers))
        return routes

    @property
    def provider_names(self) -> list[str]:
        """Every provider the run may call."""
        return list(dict.fromkeys(name for names in self.routes.values() for name in names))

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        from catalog_images.providers.model_catalog import family_of, known_models

        value = (value or "").strip() or None
        if value is not None and family_of(value) is None:
            raise ValueError(f"unknown model {value!r}; use one of {', '.join(known_models())} "
                             "(a provider's own name for it goes in its model_names)")
        return value

    @field_validator("dest")
    @classmethod
    def _dest_is_s3(cls, value: str) -> str:
        from catalog_images.destination.storage import S3Location  # boto3: only when validating

        S3Location.parse(value)
        return value

    @field_validator("prompt_template")
    @classmethod
    def _template_parses(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None:
            from catalog_images.catalog.validate import template_fields

            template_fields(value)
        return value

    def __init__(self, **data) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = "; ".join(
                ": ".join(part for part in (
                    ".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, "),
                ) if part) for e in exc.errors()
            )
            raise SettingsError(f"invalid run settings: {problems}") from None


# Each optional parameter's default, for the flow signature and the CLI options; a list
# parameter defaults to None (no names, which RunSettings reads as an empty list).
RUN_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    name: None if field.default_factory is list else field.default
    for name, field in RunSettings.model_fields.items() if not field.is_required()
})
