"""Columns of every type `schema()` can declare, sent as an SDK user sends them (text, or the Python
values the SDK takes for each type).

configuration: none; two rows, then a checkpoint.
"""

import datetime

from fivetran_connector_sdk import Connector
from fivetran_connector_sdk import Operations as op


def schema(configuration: dict):
    return [
        {
            "table": "typed",
            "primary_key": ["id"],
            "columns": {
                "id": "INT",
                "big": "LONG",
                "ratio": "FLOAT",
                "score": "DOUBLE",
                "flag": "BOOLEAN",
                "day": "NAIVE_DATE",
                "moment": "NAIVE_DATETIME",
                "instant": "UTC_DATETIME",
                "amount": {"type": "DECIMAL", "precision": 12, "scale": 2},
                "doc": "JSON",
                "blob": "BINARY",
                "code": "STRING",
            },
        }
    ]


def update(configuration: dict, state: dict):
    op.upsert(
        "typed",
        {
            "id": "1",
            "big": "9000000000",
            "ratio": 0.5,
            "score": "2.25",
            "flag": "1",
            "day": "2024-02-29",
            "moment": "2024-02-29T13:14:15",
            "instant": "2024-02-29T13:14:15Z",
            "amount": "1234.50",
            "doc": {"a": [1, 2]},
            "blob": b"\x00\x01binary",
            "code": "007",
        },
    )
    op.upsert(
        "typed",
        {
            "id": 2,
            "big": 2,
            "ratio": 1.0,
            "score": 3.0,
            "flag": False,
            "day": datetime.date(2024, 3, 1),
            "moment": datetime.datetime(2024, 3, 1, 0, 0, 1),
            "instant": datetime.datetime(2024, 3, 1, 0, 0, 1, tzinfo=datetime.UTC),
            "amount": 10,
            "doc": [{"b": None}],
            "blob": b"",
            "code": "42",
        },
    )
    op.checkpoint({"done": True})


connector = Connector(update=update, schema=schema)
