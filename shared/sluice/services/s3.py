"""The `s3` source: CSV or JSON-lines files in a bucket, one table per connection."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from sluice.services.base import Service, ServiceConfig, secret_paths
from sluice.services.rest_api import Name


class S3Config(ServiceConfig):
    schema_: Name = Field(alias="schema")
    table: Name
    bucket: Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]+[a-z0-9]$")]
    prefix: str = ""
    pattern: str | None = None
    file_type: Literal["csv", "jsonl"] = "csv"
    primary_key: list[str] = Field(default_factory=list)
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    role_arn: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


SERVICE = Service(
    name="s3",
    title="Amazon S3",
    description="CSV or JSON-lines files in an S3 bucket",
    config_model=S3Config,
    naming_keys=("schema", "table"),
    secret_paths=frozenset(secret_paths(S3Config)),
)
