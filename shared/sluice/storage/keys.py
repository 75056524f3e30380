"""Key shapes of the one table: the only place that knows them.

Main table: an aggregate's partition `CONN#<id>` / `GROUP#<id>` / `APIKEY#<key>` / `ACCOUNT#<id>`
holds the aggregate (sk `CONN`, `GROUP`, ...) and its children (`STATE#<seq>`, `RUN#<sync id>`,
`DEST`, `SCHEMA#<name>`, `SCHEMACFG`). Indexes: `gsi1` lists an account's connections and groups;
`schedule` and `timers` are the scheduler's sparse, sharded indexes.
"""

from __future__ import annotations


def connection_key(connection_id: str) -> dict[str, str]:
    return {"pk": f"CONN#{connection_id}", "sk": "CONN"}


def group_key(group_id: str) -> dict[str, str]:
    return {"pk": f"GROUP#{group_id}", "sk": "GROUP"}


def destination_key(group_id: str) -> dict[str, str]:
    return {"pk": f"GROUP#{group_id}", "sk": "DEST"}


def schema_guard_key(group_id: str, schema: str) -> dict[str, str]:
    return {"pk": f"GROUP#{group_id}", "sk": f"SCHEMA#{schema}"}


def duckdb_file_key(account_id: str, file_id: str) -> dict[str, str]:
    """Claims one duckdb file of an account for one group (two groups never share a file)."""
    return {"pk": f"DUCKDB#{account_id}#{file_id}", "sk": "DUCKDB"}


def api_key_key(api_key: str) -> dict[str, str]:
    return {"pk": f"APIKEY#{api_key}", "sk": "APIKEY"}


def state_key(connection_id: str, seq: int) -> dict[str, str]:
    return {"pk": f"CONN#{connection_id}", "sk": f"STATE#{seq:012d}"}


def state_part_prefix(seq: int) -> str:
    """The sort-key prefix of snapshot `seq`'s further parts (apart from STATE#, so that the newest
    STATE# item is still the newest snapshot)."""
    return f"STATEPART#{seq:012d}#"


def state_part_key(connection_id: str, seq: int, part: int) -> dict[str, str]:
    return {"pk": f"CONN#{connection_id}", "sk": f"{state_part_prefix(seq)}{part:04d}"}


COLUMNS_PREFIX = "COLS#"


def columns_key(connection_id: str, table: str, bucket: int) -> dict[str, str]:
    """One of a table's column-name buckets (columns seen by syncs grow with use: their own items)."""
    return {"pk": f"CONN#{connection_id}", "sk": f"{COLUMNS_PREFIX}{bucket:02d}#{table}"}


def schema_config_key(connection_id: str) -> dict[str, str]:
    """A connection's schema config (its tables' and columns' settings): one bounded item."""
    return {"pk": f"CONN#{connection_id}", "sk": "SCHEMACFG"}


def run_key(connection_id: str, sync_id: str) -> dict[str, str]:
    return {"pk": f"CONN#{connection_id}", "sk": f"RUN#{sync_id}"}


def connection_syncs_partition(connection_id: str) -> str:
    """The gsi1 partition of a connection's run records, sorted by start (the sync history)."""
    return f"CONN#{connection_id}#SYNCS"


def schedule_partition(shard: int) -> str:
    return f"SCHED#{shard}"


def retest_partition(shard: int) -> str:
    return f"RETEST#{shard}"


def delay_partition(shard: int) -> str:
    return f"DELAY#{shard}"


TRIAL_PARTITION = "TRIAL"
# Deleted connections whose children (snapshots, run records) are still being deleted.
PURGE_PARTITION = "PURGE"


def purge_key(connection_id: str) -> dict[str, str]:
    return {"pk": f"CONN#{connection_id}", "sk": "PURGE"}


def account_key(account_id: str) -> dict[str, str]:
    return {"pk": f"ACCOUNT#{account_id}", "sk": "ACCOUNT"}


def account_connections_partition(account_id: str) -> str:
    return f"ACCT#{account_id}#CONN"


def account_groups_partition(account_id: str) -> str:
    return f"ACCT#{account_id}#GROUP"


def package_key(package_id: str) -> dict[str, str]:
    return {"pk": f"PACKAGE#{package_id}", "sk": "PACKAGE"}


def account_packages_partition(account_id: str) -> str:
    return f"ACCT#{account_id}#PACKAGE"


def proxy_agent_key(agent_id: str) -> dict[str, str]:
    return {"pk": f"PROXY#{agent_id}", "sk": "PROXY"}


def proxy_agent_name_key(account_id: str, display_name: str) -> dict[str, str]:
    """Claims a proxy agent's display name within its account (Fivetran: 409 for a taken name)."""
    return {"pk": f"PROXYNAME#{account_id}#{display_name}", "sk": "PROXYNAME"}


def account_proxy_agents_partition(account_id: str) -> str:
    return f"ACCT#{account_id}#PROXY"


def group_ssh_key_key(group_id: str) -> dict[str, str]:
    return {"pk": f"GROUP#{group_id}", "sk": "SSHKEY"}


def webhook_key(webhook_id: str) -> dict[str, str]:
    return {"pk": f"WEBHOOK#{webhook_id}", "sk": "WEBHOOK"}


def account_webhooks_partition(account_id: str) -> str:
    return f"ACCT#{account_id}#WEBHOOK"


def webhook_delivery_key(webhook_id: str, event_id: str) -> dict[str, str]:
    """The record that one bus event was delivered to one webhook (a retry skips it)."""
    return {"pk": f"WEBHOOK#{webhook_id}", "sk": f"DELIVERED#{event_id}"}
