"""Runs the real dagster-fivetran client against a Sluice base URL; prints one JSON summary line.

Run with the dagster client's own interpreter (.venv-clients/dagster/bin/python), never the project's:

    python dagster_client.py client    BASE_URL KEY SECRET CONNECTION_ID
    python dagster_client.py workspace BASE_URL KEY SECRET CONNECTION_ID

`client` is the low-level `FivetranClient.sync_and_poll`; `workspace` is the path users write:
`FivetranWorkspace` + `@fivetran_assets` + `dagster.materialize`. Neither client takes a base URL, so
the module constant `FIVETRAN_API_BASE` is patched (it is read at call time).
"""

import json
import sys
import time
import warnings


def _timestamps(details: dict) -> dict:
    status = details.get("status") or {}
    return {
        "succeeded_at": details.get("succeeded_at"),
        "failed_at": details.get("failed_at"),
        "sync_state": status.get("sync_state"),
        "setup_state": status.get("setup_state"),
        "schedule_type": details.get("schedule_type"),
    }


def run_client(connection_id: str, key: str, secret: str) -> dict:
    from dagster_fivetran.resources import FivetranClient

    client = FivetranClient(
        api_key=key,
        api_secret=secret,
        request_max_retries=0,
        request_retry_delay=0.1,
        request_backoff_factor=1.0,
        disable_schedule_on_trigger=True,
        retry_on_reschedule=False,
    )
    started = time.monotonic()
    output = client.sync_and_poll(connection_id, poll_interval=0.2, poll_timeout=120)
    if output is None:
        return {"ok": False, "error": "sync_and_poll returned None (the connection is paused)"}
    schemas = output.schema_config.get("schemas") or {}
    return {
        "ok": True,
        "seconds": round(time.monotonic() - started, 3),
        **_timestamps(output.connector_details),
        "schemas": sorted(schemas),
        "tables": {name: sorted(schema.get("tables") or {}) for name, schema in schemas.items()},
    }


def run_workspace(connection_id: str, key: str, secret: str) -> dict:
    import dagster as dg
    import dagster_fivetran.resources as resources
    from dagster_fivetran import FivetranWorkspace, fivetran_assets

    workspace = FivetranWorkspace(
        account_id="sluice-local",
        api_key=key,
        api_secret=secret,
        request_max_retries=0,
        retry_on_reschedule=False,
    )
    started = time.monotonic()

    # Building the definition fetches the workspace (groups, destinations, connectors, schemas).
    @fivetran_assets(connector_id=connection_id, workspace=workspace, name="sluice_assets")
    def sluice_assets(context: dg.AssetExecutionContext, fivetran: FivetranWorkspace):
        yield from fivetran.sync_and_poll(context=context).fetch_column_metadata()

    keys = sorted(k.to_user_string() for k in sluice_assets.keys)
    loaded = time.monotonic() - started
    # FivetranWorkspace always polls every 10 s (the default bound at definition time): poll fast.
    resources.FivetranClient.sync_and_poll.__defaults__ = (0.2, 120)
    result = dg.materialize([sluice_assets], resources={"fivetran": workspace}, raise_on_error=False)
    materialized = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = materialization.metadata
        materialized[materialization.asset_key.to_user_string()] = {
            "sync_completed_at": metadata["dagster-fivetran/sync_completed_at"].value,
            "storage_kind": metadata["dagster/storage_kind"].value
            if "dagster/storage_kind" in metadata
            else None,
            "has_column_schema": "dagster/column_schema" in metadata,
        }
    failures = [
        str(event.event_specific_data.error.message)
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    ]
    return {
        "ok": bool(result.success),
        "seconds": round(time.monotonic() - started, 3),
        "definition_seconds": round(loaded, 3),
        "asset_keys": keys,
        "materialized": materialized,
        "failures": failures,
    }


def main(argv: list[str]) -> int:
    mode, base_url, key, secret, connection_id = argv
    warnings.simplefilter("ignore")
    import dagster_fivetran.resources as resources

    resources.FIVETRAN_API_BASE = base_url.rstrip("/")  # a bare origin: the client adds /v1/...
    try:
        summary = (run_client if mode == "client" else run_workspace)(connection_id, key, secret)
    except Exception as exc:  # dagster.Failure and friends: report them as data
        summary = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(summary))
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
