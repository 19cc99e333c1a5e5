"""The parameters of one run, validated before anything is read or sent."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tasks.storage import S3Location
from tasks.validate import template_fields


class SettingsError(ValueError):
    """A run parameter is wrong; the message names it and says what to do."""


class RunSettings(BaseModel):
    """Validated run parameters (the flow's and the CLI's)."""

    model_config = ConfigDict(extra="forbid")

    catalog: str = Field(description="CSV or Parquet catalog: a local path or s3:// URI")
    dest: str = Field(description="s3://BUCKET/PREFIX where images and reports go")
    provider: str = Field("emulator", description="provider name (see providers file)")
    concurrency: int = Field(16, ge=1, le=1024, description="requests in flight at most")
    prompt_template: str | None = Field(None, description="e.g. 'Studio photo of {title}'")
    report_path: str | None = Field(None, description="also write the JSON report here")
    chunk_size: int = Field(100, ge=1, le=5000, description="rows per Prefect task run")
    max_attempts: int = Field(6, ge=1, le=20, description="provider attempts per row")
    providers_file: str | None = None
    aws_credentials_block: str | None = None

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
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: "
                f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
            )
            raise SettingsError(f"invalid run settings: {problems}") from None
