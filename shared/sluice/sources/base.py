"""What every source service provides: its config model, naming keys and secret fields."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from sluice.contract import Operation, TableSpec

if TYPE_CHECKING:
    from sluice.config_secrets import Scrubber

# A secret config field. Marked once here; masking, encryption and the Connect Card form
# all find secret fields through this marker.
Secret = Annotated[str, Field(json_schema_extra={"secret": True, "format": "password"})]

# A config field most setups leave at its default: the hosted Connect Card shows it only when the card
# was created with `connect_card_config.all_fields: true` (a hidden field keeps its stored value).
ADVANCED = Field(json_schema_extra={"advanced": True})

SecretPath = tuple[str, ...]  # "[]" stands for every item of an array
EACH = "[]"

# A name in the destination (schema, table): a plain identifier.
Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


@dataclass(frozen=True)
class SecretDestination:
    """Marks a config field that decides where the secrets are sent (`base_url`). A change of it must
    bring the secrets again: a stored secret never follows a config to a new place.

    `compare` says what counts as a change: the whole value, or only a URL's origin (scheme, host,
    port), since credentials go to the origin whatever the path."""

    compare: Literal["value", "origin"] = "value"

    def place(self, value: Any) -> Any:
        if self.compare == "origin" and isinstance(value, str):
            parts = urlsplit(value)
            scheme = parts.scheme.lower()
            try:
                port = parts.port
            except ValueError:
                port = None
            return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)
        return value


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class TunnelFields(BaseModel):
    """Fivetran's SSH tunnel fields, used when the connection's networking_method is SshTunnel: the
    bastion the source is reached through. The tunnel decides where the secrets travel, so moving it
    brings them again."""

    tunnel_host: Annotated[str | None, Field(min_length=1, max_length=255), SecretDestination(), ADVANCED] = (
        None
    )
    tunnel_port: Annotated[int | None, Field(ge=1, le=65535), SecretDestination(), ADVANCED] = None
    tunnel_user: Annotated[str | None, Field(min_length=1, max_length=255), ADVANCED] = None


def _is_secret(info: Any) -> bool:
    extra = getattr(info, "json_schema_extra", None)
    return isinstance(extra, dict) and bool(extra.get("secret"))


def _models_in(annotation: Any) -> list[tuple[bool, type[BaseModel]]]:
    """The models an annotation can hold, each with whether it sits inside a list."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    if origin in (list, tuple):
        return [(True, m) for _, m in _models_in(typing.get_args(annotation)[0])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(False, annotation)]
    return []


def secret_paths(model: type[BaseModel], prefix: SecretPath = ()) -> set[SecretPath]:
    paths: set[SecretPath] = set()
    for name, info in model.model_fields.items():
        if _is_secret(info) or any(_is_secret(m) for m in info.metadata):
            paths.add((*prefix, name))
        for in_list, sub in _models_in(info.annotation):
            paths |= secret_paths(sub, (*prefix, name, EACH) if in_list else (*prefix, name))
    return paths


def secret_destinations(
    model: type[BaseModel], prefix: SecretPath = ()
) -> tuple[tuple[SecretPath, SecretDestination], ...]:
    """The fields of a config model marked `SecretDestination`, with their paths."""
    found: list[tuple[SecretPath, SecretDestination]] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        found.extend(((*prefix, key), m) for m in info.metadata if isinstance(m, SecretDestination))
        for in_list, sub in _models_in(info.annotation):
            found.extend(secret_destinations(sub, (*prefix, key, EACH) if in_list else (*prefix, key)))
    return tuple(found)


# Every method a source reached through sluice.outbound supports.
ALL_NETWORKING_METHODS = frozenset({"Directly", "SshTunnel", "ProxyAgent", "PrivateLink"})


class SourceError(Exception):
    """The source failed for good (after retries); the message is safe to show to the user."""


class SourceAuthError(SourceError):
    """The source refused the credentials (HTTP 401/403, AccessDenied)."""


class SourceRateLimited(SourceError):
    """The source asked us to wait longer than this run has left."""

    def __init__(self, retry_at: datetime, message: str = "The source rate limit outlasts this run") -> None:
        super().__init__(message)
        self.retry_at = retry_at


@dataclass(frozen=True)
class SetupTestOptions:
    trust_certificates: bool = False
    trust_fingerprints: bool = False
    # Seconds the whole set of tests may take.
    timeout: float = 20.0


# extract(config with secrets revealed, state, deadline as a time.monotonic() value) -> operations
Extract = Callable[[dict[str, Any], dict[str, Any], float], Iterator[Operation]]
# tables(config) -> the tables this connection syncs
Tables = Callable[[dict[str, Any]], list[TableSpec]]
# setup_tests(config with secrets revealed, options) -> results (sluice.connections.model.SetupTestResult)
SetupTests = Callable[[dict[str, Any], SetupTestOptions], list[Any]]
# check_references(store, account id, config): raise a NotFound (sluice.errors) when the config
# names something (a Connector SDK package, ...) that is not the account's own
CheckReferences = Callable[[Any, str, dict[str, Any]], None]


def _no_other_forms(_config: dict[str, Any]) -> list[str]:
    return []


def _not_built(*_: Any) -> Any:
    raise NotImplementedError("this service has no such step yet")


def _references_nothing(*_: Any) -> None:
    return None


def _reads_every_table(config: dict[str, Any], _enabled: set[str]) -> dict[str, Any]:
    return config


@dataclass(frozen=True)
class Service:
    """A source service: `rest_api`, `s3`, ..."""

    name: str
    title: str
    description: str
    config_model: type[ServiceConfig]
    # Config keys that name the destination schema (and table); they are not returned in `config`.
    naming_keys: tuple[str, ...] = ("schema",)
    secret_paths: frozenset[SecretPath] = field(default_factory=frozenset)
    # Fields that decide where the secrets go (see SecretDestination).
    secret_destinations: tuple[tuple[SecretPath, SecretDestination], ...] = ()
    # Other forms the secrets of a (revealed) config take on the wire, for scrubbing (see Scrubber).
    secret_forms: Callable[[dict[str, Any]], list[str]] = _no_other_forms
    tables: Tables = _not_built
    # Whether `tables` asks the source (and so needs the config's secrets): the read API then shows the
    # tables the last capture recorded instead of calling it.
    tables_need_source: bool = False
    extract: Extract = _not_built
    setup_tests: SetupTests = _not_built
    # Called with the connection's account before its config is stored, tested, synced or read
    # for tables: a config may only name the account's own resources.
    check_references: CheckReferences = _references_nothing
    # The networking methods whose path the service's connections honour (sluice.network_path): a
    # source that opens no sockets through sluice.outbound (AWS APIs, Connector SDK code in its own
    # process) can't be sent through a proxy agent or a bastion.
    networking_methods: frozenset[str] = frozenset({"Directly"})
    # select_tables(config, enabled table names) -> the config that reads only those tables. Services
    # without it read every table; the engine then drops what a disabled table yields.
    select_tables: Callable[[dict[str, Any], set[str]], dict[str, Any]] = _reads_every_table
    # columns(config with secrets revealed, deadline) -> each table's columns as the source shows them
    # now (POST .../schemas/reload). None: columns are learnt by syncs only.
    columns: Callable[[dict[str, Any], float], dict[str, set[str]]] | None = None

    def schema_name(self, config: dict[str, Any]) -> str:
        return ".".join(str(config[key]) for key in self.naming_keys)

    def scrubber(self, plain_config: dict[str, Any]) -> Scrubber:
        """The `sluice.config_secrets.Scrubber` for a config with its secrets revealed."""
        from sluice.config_secrets import scrubber_for

        try:
            forms = self.secret_forms(plain_config)
        except Exception:  # an invalid config still has its plain secret values scrubbed
            forms = []
        return scrubber_for(plain_config, self.secret_paths, forms)
