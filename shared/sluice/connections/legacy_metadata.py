"""The legacy metadata routes (`GET /v1/metadata/connectors/{id}/tables` and `.../columns`) that
Airflow's OpenLineage support and fivetran-mcp read: the schema config, flattened into items with
opaque ids and `parent_id` links (schema -> table -> column)."""

from __future__ import annotations

import base64
from typing import Any

from sluice.api.caller import Caller
from sluice.schema_config.operations import effective_schemas as schemas
from sluice.storage.store import Store


def metadata_id(*names: str) -> str:
    """A stable opaque id for a schema, table or column (url-safe base64 of its dotted path)."""
    return base64.urlsafe_b64encode(".".join(names).encode()).decode().rstrip("=")


def tables(caller: Caller, connection_id: str, store: Store) -> dict[str, Any]:
    connection = store.get_connection(caller.account_id, connection_id)
    items = [
        {
            "id": metadata_id(schema, table),
            "parent_id": metadata_id(schema),
            "name_in_source": table,
            "name_in_destination": config["name_in_destination"],
        }
        for schema, schema_config in schemas(connection, store).items()
        for table, config in schema_config["tables"].items()
    ]
    return {"items": items, "next_cursor": None}


def columns(caller: Caller, connection_id: str, store: Store) -> dict[str, Any]:
    connection = store.get_connection(caller.account_id, connection_id)
    items = [
        {
            "id": metadata_id(schema, table, column),
            "parent_id": metadata_id(schema, table),
            "name_in_source": column,
            "name_in_destination": config["name_in_destination"],
            "type_in_source": None,
            "type_in_destination": None,
            "is_primary_key": config["is_primary_key"],
            "is_foreign_key": False,
        }
        for schema, schema_config in schemas(connection, store).items()
        for table, table_config in schema_config["tables"].items()
        for column, config in table_config["columns"].items()
    ]
    return {"items": items, "next_cursor": None}
