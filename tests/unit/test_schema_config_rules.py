"""The schema config's rules, without AWS: capture, PATCH semantics, the wire shape and the row policy."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.errors import InvalidInput
from sluice.schema_config.model import SchemaConfig
from sluice.schema_config.policy import hash_value
from sluice.schema_config.rules import (
    ColumnNotFound,
    Effects,
    SchemaNotFound,
    SourceTables,
    TableNotFound,
    capture,
    patch_column,
    patch_config,
    patch_table,
    render,
)

MODES = frozenset({"SOFT_DELETE", "LIVE", "HISTORY"})


def source(
    seen: dict[str, list[str]] | None = None, tables: tuple[str, ...] = ("orders", "refunds")
) -> SourceTables:
    return SourceTables("shop", {t: ("id",) for t in tables}, seen or {})


def test_the_first_capture_is_no_change_and_later_new_tables_follow_the_handling() -> None:
    config, changes = capture(None, source())
    assert changes == [] and config.captured
    assert {t: s.enabled for t, s in config.schemas["shop"].tables.items()} == {
        "orders": True,
        "refunds": True,
    }
    config.schema_change_handling = "ALLOW_COLUMNS"
    again, changes = capture(config, source(tables=("orders", "refunds", "payouts")))
    assert [(c.table, c.enabled) for c in changes] == [("payouts", False)]
    assert again.schemas["shop"].tables["payouts"].enabled is False
    assert capture(again, source(tables=("orders", "refunds", "payouts")))[1] == []  # known now


def test_a_precreated_block_all_config_keeps_what_it_named_and_disables_the_rest() -> None:
    pre = SchemaConfig.model_validate(
        {
            "schema_change_handling": "BLOCK_ALL",
            "schemas": {"shop": {"tables": {"orders": {"enabled": True}}}},
        }
    )
    config, changes = capture(pre, source())
    assert changes == []
    assert (
        config.schemas["shop"].tables["orders"].enabled
        and not config.schemas["shop"].tables["refunds"].enabled
    )


def test_exclude_disables_every_schema_and_table() -> None:
    config, _ = capture(None, source(), exclude=True)
    assert not config.schemas["shop"].enabled
    assert not any(t.enabled for t in config.schemas["shop"].tables.values())


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"schemas": {"nope": {"enabled": True}}}, SchemaNotFound),
        ({"schemas": {"shop": {"tables": {"nope": {"enabled": True}}}}}, TableNotFound),
        (
            {"schemas": {"shop": {"tables": {"orders": {"columns": {"nope": {"enabled": True}}}}}}},
            ColumnNotFound,
        ),
    ],
)
def test_unknown_names_are_not_found(body, error) -> None:
    config, _ = capture(None, source())
    with pytest.raises(error):
        patch_config(config, body, source(), MODES, Effects())


def test_a_primary_key_cannot_be_disabled_or_hashed_but_can_be_named() -> None:
    config, _ = capture(None, source())
    for body in ({"enabled": False}, {"hashed": True}):
        with pytest.raises(InvalidInput):
            patch_column(config, "shop", "orders", "id", body, source(), Effects())
    patch_column(
        config, "shop", "orders", "id", {"enabled": True, "is_primary_key": True}, source(), Effects()
    )
    with pytest.raises(InvalidInput, match="is_primary_key"):
        patch_column(config, "shop", "orders", "id", {"is_primary_key": False}, source(), Effects())


def test_which_changes_ask_for_a_table_resync() -> None:
    seen = source({"orders": ["id", "email", "phone"]})
    config, _ = capture(None, seen)
    effects = Effects()
    patch_column(config, "shop", "orders", "email", {"enabled": False}, seen, effects)
    assert effects.resync == set()  # disabling needs none
    patch_column(config, "shop", "orders", "email", {"enabled": True}, seen, effects)
    assert effects.resync == {"orders"}
    effects = Effects()
    patch_column(config, "shop", "orders", "phone", {"hashed": True}, seen, effects)
    patch_table(config, "shop", "refunds", {"sync_mode": "HISTORY"}, seen, MODES, effects)
    assert effects.resync == {"orders"}  # refunds has no data yet


def test_a_mode_the_destination_lacks_is_refused() -> None:
    config, _ = capture(None, source())
    with pytest.raises(InvalidInput, match="HISTORY is not supported"):
        patch_table(
            config,
            "shop",
            "orders",
            {"sync_mode": "HISTORY"},
            source(),
            frozenset({"SOFT_DELETE"}),
            Effects(),
        )


def test_render_has_every_key_fivetran_clients_read() -> None:
    seen = source({"orders": ["id", "email"]})
    config, _ = capture(None, seen)
    data = render(config, seen, MODES)
    table = data["schemas"]["shop"]["tables"]["orders"]
    assert set(table) == {
        "name_in_destination",
        "enabled",
        "sync_mode",
        "enabled_patch_settings",
        "supports_columns_config",
        "supports_history_mode",
        "columns",
    }
    assert set(table["columns"]["email"]) == {
        "name_in_destination",
        "enabled",
        "hashed",
        "is_primary_key",
        "enabled_patch_settings",
    }


@given(st.one_of(st.text(), st.integers(), st.booleans(), st.floats(allow_nan=False)), st.binary(min_size=1))
def test_a_hash_is_the_salted_sha256_of_the_values_text(value, salt) -> None:
    import json

    text = value if isinstance(value, str) else json.dumps(value)
    assert hash_value(salt, value) == hashlib.sha256(salt + text.encode()).hexdigest()
    assert hash_value(salt + b"x", value) != hash_value(salt, value)


def test_null_stays_null() -> None:
    assert hash_value(b"salt", None) is None
