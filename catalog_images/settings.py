"""The parameters of one run, validated before anything is read or sent."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from catalog_images.catalog.validate import template_fields
from catalog_images.destination.storage import S3Location

SHARD_DEPLOYMENT = "catalog-refresh-shard/shard"


class SettingsError(ValueError):
    """A run parameter is wrong; the message names it and says what to do."""


class RunSettings(BaseModel):
    """Validated run parameters (the flow's and the CLI's)."""

    model_config = ConfigDict(extra="forbid")

    catalog: str = Field(description="CSV or Parquet catalog: a local path or s3:// URI")
    dest: str = Field(description="s3://BUCKET/PREFIX where images and reports go")
    provider: str = Field("emulator", description="provider name (see providers file)")
    fallback_providers: list[str] = Field(
        default_factory=list, description="providers to fail over to, in order")
    priority_providers: list[str] = Field(
        default_factory=list,
        description="route for rows with priority=high (default: the same as the others)")
    concurrency: int = Field(16, ge=1, le=1024, description="requests in flight at most")
    prompt_template: str | None = Field(None, description="e.g. 'Studio photo of {title}'")
    report_path: str | None = Field(None, description="also write the JSON report here")
    chunk_size: int = Field(100, ge=1, le=5000, description="rows per Prefect task run")
    max_attempts: int = Field(6, ge=1, le=20, description="provider attempts per row")
    providers_file: str | None = None
    aws_credentials_block: str | None = None
    breaker_cooldown_s: float = Field(10.0, gt=0, description="seconds before a probe")
    max_provider_wait_s: float = Field(
        300.0, gt=0, description="how long a row waits for a provider whose breaker is open")
    max_cost_usd: float | None = Field(
        None, ge=0, description="never start a request that could take spend over this")
    force: bool = Field(False, description="regenerate every row, even unchanged ones")
    force_skus: list[str] = Field(default_factory=list, description="regenerate these skus")
    mode: Literal["standard", "batch"] = Field(
        "standard", description="batch: Gemini Batch Mode, half price, results within 24 h")
    batch_rows: int = Field(1000, ge=1, le=100_000, description="rows per batch job")
    batch_deadline_s: float = Field(
        86_400.0, gt=0, description="how long a run waits for its batch jobs")
    batch_poll_s: float = Field(30.0, gt=0, description="first poll interval of a batch job")
    global_limits: bool = Field(
        False, description="share rpm limits across runs via Prefect global concurrency limits")
    shards: int = Field(
        1, ge=1, le=256,
        description="split the rows into this many child flow runs of the shard deployment, "
        "picked up by any number of workers (rpm limits are then shared through Prefect)")
    shard_deployment: str = Field(
        SHARD_DEPLOYMENT, description="the deployment that runs one shard")
    dask_address: str | None = Field(
        None, description="run the shards as Prefect tasks on the dask.distributed scheduler "
        "at this address (e.g. tcp://10.0.0.5:8786) instead of child flow runs")

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

    @field_validator("dest")
    @classmethod
    def _dest_is_s3(cls, value: str) -> str:
        S3Location.parse(value)
        return value

    @field_validator("prompt_template")
    @classmethod
    def _template_parses(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None:
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
