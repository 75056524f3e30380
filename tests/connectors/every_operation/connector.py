"""Every operation the SDK has, in pages that resume from the state.

configuration: {"rows": "<total>", "page": "<rows per page>"}; state: {"next": <first id to emit>}.
"""

from fivetran_connector_sdk import Connector
from fivetran_connector_sdk import Logging as log
from fivetran_connector_sdk import Operations as op
from pages import page_rows


def schema(configuration: dict):
    return [
        {
            "table": "items",
            "primary_key": ["id"],
            "columns": {"id": "INT", "price": "DOUBLE", "name": "STRING"},
        },
        {"table": "events"},
    ]


def update(configuration: dict, state: dict):
    total, page = int(configuration["rows"]), int(configuration["page"])
    start = int(state.get("next", 1))
    log.info(f"starting at {start} of {total}")
    if start == 1:
        op.truncate("events")
    while start <= total:
        count = min(page, total - start + 1)
        for row in page_rows(start, count):
            op.upsert("items", row)
        op.upsert("events", {"kind": "page", "first": start})
        start += count
        op.checkpoint({"next": start})
    # After the last page: rename the first item, update the third's price, delete the second.
    op.update("items", {"id": 1, "name": "renamed", "price": 1.5, "active": False})
    if total >= 3:
        op.update("items", {"id": 3, "price": 9.0})  # a partial update: names only the price
    op.delete("items", {"id": 2})
    log.warning("finished with a warning")
    op.checkpoint({"next": start})


connector = Connector(update=update, schema=schema)
