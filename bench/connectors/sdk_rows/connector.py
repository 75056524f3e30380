"""The bench's Connector SDK connector: `rows` upserts into one keyed table, a checkpoint every
10,000 rows. configuration: {"rows": "<total>"}; state: {"next": <first id to emit>}."""

from fivetran_connector_sdk import Connector
from fivetran_connector_sdk import Operations as op

CHECKPOINT_EVERY = 10_000


def schema(configuration: dict):
    return [
        {
            "table": "rows",
            "primary_key": ["id"],
            "columns": {"id": "LONG", "name": "STRING", "amount": "DOUBLE", "active": "BOOLEAN"},
        }
    ]


def update(configuration: dict, state: dict):
    total = int(configuration["rows"])
    start = int(state.get("next", 1))
    for n in range(start, total + 1):
        op.upsert("rows", {"id": n, "name": f"row {n}", "amount": n * 0.5, "active": n % 2 == 0})
        if n % CHECKPOINT_EVERY == 0:
            op.checkpoint({"next": n + 1})
    op.checkpoint({"next": total + 1})


connector = Connector(update=update, schema=schema)
