"""Destination services (a group's destination): their config models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class DestinationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DuckDbConfig(DestinationConfig):
    # A DuckDB database file; relative paths are under the local stack's data folder.
    path: Annotated[str, Field(min_length=1, max_length=1024)]


class S3DestinationConfig(DestinationConfig):
    bucket: Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]+[a-z0-9]$")]
    prefix: str = ""


DESTINATION_CONFIGS: dict[str, type[DestinationConfig]] = {"duckdb": DuckDbConfig, "s3": S3DestinationConfig}
