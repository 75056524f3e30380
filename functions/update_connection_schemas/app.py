"""The writes of a connection's schema config: POST/PATCH .../schemas, POST .../schemas/reload, PATCH of
one schema, table or column, DELETE of a column and POST .../schemas/drop-columns (Fivetran's shapes)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body

from sluice.api.request_models import (
    ColumnUpdate,
    DropColumnsBody,
    ReloadBody,
    SchemaConfigUpdate,
    SchemaUpdate,
    TableUpdate,
)
from sluice.api.resolver import current_caller, envelope, make_resolver
from sluice.observability import api_handler
from sluice.schema_config import operations as schemas
from sluice.schema_config import rules
from sluice.storage.store import get_store

app = make_resolver()


def _plain(body: Any) -> dict[str, Any]:
    return dict(body.model_dump(exclude_none=True))


@app.post("/v1/connections/<connection_id>/schemas")
def create_connection_schemas(
    connection_id: str, request: Annotated[SchemaConfigUpdate, Body()]
) -> dict[str, Any]:
    data = schemas.precreate(current_caller(app), connection_id, _plain(request), get_store())
    return envelope(data, "Schema configuration pre-created successfully")


@app.patch("/v1/connections/<connection_id>/schemas")
def update_connection_schemas(
    connection_id: str, request: Annotated[SchemaConfigUpdate, Body()]
) -> dict[str, Any]:
    body = _plain(request)
    done = schemas.modify(
        current_caller(app),
        connection_id,
        get_store(),
        lambda config, loaded, effects: rules.patch_config(
            config, body, loaded.source, loaded.modes, effects
        ),
        "Schema configuration has been modified",
    )
    return envelope(done.data, done.message)


@app.post("/v1/connections/<connection_id>/schemas/reload")
def reload_connection_schemas(connection_id: str, request: Annotated[ReloadBody, Body()]) -> dict[str, Any]:
    done = schemas.reload(current_caller(app), connection_id, get_store(), request.exclude_mode == "EXCLUDE")
    return envelope(done.data, done.message)


@app.patch("/v1/connections/<connection_id>/schemas/<schema>")
def update_schema(
    connection_id: str, schema: str, request: Annotated[SchemaUpdate, Body()]
) -> dict[str, Any]:
    body = _plain(request)
    done = schemas.modify(
        current_caller(app),
        connection_id,
        get_store(),
        lambda config, loaded, effects: rules.patch_schema(
            config, schema, body, loaded.source, loaded.modes, effects
        ),
        "Database schema configuration has been modified",
    )
    return envelope(done.data, done.message)


@app.patch("/v1/connections/<connection_id>/schemas/<schema>/tables/<table>")
def update_table(
    connection_id: str, schema: str, table: str, request: Annotated[TableUpdate, Body()]
) -> dict[str, Any]:
    body = _plain(request)
    done = schemas.modify(
        current_caller(app),
        connection_id,
        get_store(),
        lambda config, loaded, effects: rules.patch_table(
            config, schema, table, body, loaded.source, loaded.modes, effects
        ),
        "Table configuration has been modified",
    )
    return envelope(done.data, done.message)


@app.patch("/v1/connections/<connection_id>/schemas/<schema>/tables/<table>/columns/<column>")
def update_column(
    connection_id: str, schema: str, table: str, column: str, request: Annotated[ColumnUpdate, Body()]
) -> dict[str, Any]:
    body = _plain(request)
    done = schemas.modify(
        current_caller(app),
        connection_id,
        get_store(),
        lambda config, loaded, effects: rules.patch_column(
            config, schema, table, column, body, loaded.source, effects
        ),
        "Column configuration has been modified",
    )
    return envelope(done.data, done.message)


@app.delete("/v1/connections/<connection_id>/schemas/<schema>/tables/<table>/columns/<column>")
def drop_column(connection_id: str, schema: str, table: str, column: str) -> dict[str, Any]:
    done = schemas.modify(
        current_caller(app),
        connection_id,
        get_store(),
        lambda config, loaded, effects: rules.mark_columns_dropped(
            config, schema, table, [column], loaded.source
        ),
        "Column successfully marked for deletion",
    )
    return envelope(message=done.message)


@app.post("/v1/connections/<connection_id>/schemas/drop-columns")
def drop_columns(connection_id: str, request: Annotated[DropColumnsBody, Body()]) -> dict[str, Any]:
    def change(config: Any, loaded: schemas.Loaded, effects: rules.Effects) -> None:
        for schema, schema_body in request.schemas.items():
            for table, table_body in schema_body.tables.items():
                rules.mark_columns_dropped(config, schema, table, table_body.columns, loaded.source)

    done = schemas.modify(
        current_caller(app), connection_id, get_store(), change, "Column(s) successfully marked for deletion"
    )
    return envelope(message=done.message)


lambda_handler = api_handler(app)
