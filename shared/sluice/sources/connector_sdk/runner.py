"""Runs one Connector SDK connector in its own process and streams what it emits to the parent.

This file is a script for an interpreter that has `fivetran-connector-sdk` installed (it imports
nothing from `sluice`). The parent (`sluice.sources.connector_sdk.process`) starts it with the
unpacked package first on `sys.path`, writes one JSON request on stdin and reads JSON lines from
the file descriptor named by `--out`:

    {"t": "tables", "tables": [{"name", "primary_key": [...], "columns": {name: TYPE}}] | null}
    {"t": "upsert" | "update" | "delete", "table": ..., "row": {...}}
    {"t": "truncate", "table": ...}
    {"t": "checkpoint", "state": {...}}     then waits for one line on stdin (the parent's commit)
    {"t": "log", "level": "INFO" | "WARNING" | "SEVERE" | ..., "message": ...}
    {"t": "form", "missing": [...], "invalid": [...], "tests": [{"label", "passed", "message"}]}
                                            (command "test": the configuration form's checks)
    {"t": "failed", "message": ...}         the connector raised, or reported op.error()
    {"t": "done"}

The sink is the SDK's own runner hook: `fivetran_connector_sdk_cli.runtime.install(sink)` is what
the SDK's local tester does before it calls `update()`, so `op.upsert` and friends (and the older
generator style, whose yielded values are ignored) reach it exactly as they reach Fivetran's runner.
Anything the connector prints goes to stderr, never into the protocol.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import sys
import traceback
from typing import Any

_INTEGER = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")
_INT_TYPES = {"SHORT", "INT", "LONG"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}


class _Out:
    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 16)

    def send(self, message: dict[str, Any]) -> None:
        self._file.write(json.dumps(message, separators=(",", ":"), default=str))
        self._file.write("\n")

    def flush(self) -> None:
        self._file.flush()


def _scalar(text: str, declared: str | None) -> Any:
    """A text cell as the value it stands for: by the declared type, else inferred as the SDK's
    local tester infers it (booleans, integers, floats; everything else stays text)."""
    if declared in _INT_TYPES:
        return int(text)
    if declared in _FLOAT_TYPES:
        return float(text)
    if declared == "BOOLEAN":
        return text.lower() in ("true", "t", "1")
    if declared is not None:
        return text
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.fullmatch(text) and not (len(text.lstrip("-")) > 1 and text.lstrip("-")[0] == "0"):
        number = int(text)
        return number if -(1 << 63) <= number < (1 << 63) else text
    if "." in text and _FLOAT.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else None
    return text


def _decode(row_data: dict[str, bytes], types: dict[str, str]) -> dict[str, Any]:
    from fivetran_connector_sdk_core.cells import Json, decode_row_data

    row: dict[str, Any] = {}
    for name, cell in decode_row_data(row_data).items():
        declared = types.get(name)
        if cell is None:
            row[name] = None
        elif isinstance(cell, Json):
            row[name] = json.loads(cell)
        elif isinstance(cell, bytes):
            row[name] = base64.b64encode(cell).decode("ascii")
        elif isinstance(cell, float):
            row[name] = cell if math.isfinite(cell) else None
        else:
            row[name] = _scalar(cell, declared)
    return row


class _Failed(Exception):
    pass


class Sink:
    """The SDK's `Sink` protocol (fivetran_connector_sdk_core.protocol.Sink)."""

    def __init__(self, out: _Out, types: dict[str, dict[str, str]]) -> None:
        self.out = out
        self.types = types

    def record(self, record: Any) -> None:
        kind = {0: "upsert", 1: "update", 2: "delete"}[int(record.type)]
        row = _decode(record.row_data, self.types.get(record.table, {}))
        self.out.send({"t": kind, "table": record.table, "row": row})

    def truncate(self, truncate: Any) -> None:
        self.out.send({"t": "truncate", "table": truncate.table})

    def file_chunk(self, chunk: Any) -> None:
        raise _Failed("FileUpload is not supported by Sluice")

    def checkpoint(self, checkpoint: Any) -> None:
        self.out.send({"t": "checkpoint", "state": json.loads(checkpoint.state_json)})
        self.out.flush()
        # Returns once the parent has taken everything up to this checkpoint, as the SDK promises.
        if not sys.stdin.readline():
            raise SystemExit(0)  # the parent stopped reading (a continuation): end quietly

    def warning(self, warning: Any) -> None:
        self.out.send({"t": "log", "level": "WARNING", "message": json.loads(warning.message)["message"]})

    def task(self, task: Any) -> None:
        raise _Failed(json.loads(task.message)["message"])


def _install_logging(out: _Out) -> None:
    """The connector's `log.info/warning/severe/...` lines go to the parent, not to the terminal."""
    from fivetran_connector_sdk_common.logger import Logging

    def emitter(level: str) -> Any:
        def emit(message: str, exception: Exception | None = None) -> None:
            text = str(message) if exception is None else f"{message}: {exception}"
            out.send({"t": "log", "level": level, "message": text})

        return staticmethod(emit)

    for name in ("debug", "fine", "info", "warning", "error", "severe", "critical"):
        setattr(Logging, name, emitter(name.upper()))


def _load_connector(project: str) -> Any:
    import importlib.util

    from fivetran_connector_sdk import Connector

    path = os.path.join(project, "connector.py")
    if not os.path.exists(path):
        raise _Failed("The package has no connector.py")
    spec = importlib.util.spec_from_file_location("connector", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["connector"] = module
    spec.loader.exec_module(module)
    found = [v for v in vars(module).values() if isinstance(v, Connector)]
    if not found:
        raise _Failed("connector.py defines no Connector object")
    return found[0]


def _tables(connector: Any, configuration: dict[str, Any]) -> list[dict[str, Any]] | None:
    result = connector.get_schema(configuration)
    if result.not_supported:
        return None
    return [
        {
            "name": table.name,
            "primary_key": [c.name for c in table.columns if c.primary_key],
            "columns": {c.name: c.type.name for c in table.columns if c.type.value},
        }
        for table in result.tables
    ]


def _form_checks(connector: Any, configuration: dict[str, Any]) -> dict[str, Any] | None:
    """The configuration against the form of `configuration_form()`: required fields that are
    missing, dropdown values that are not options, and each test the form registers."""
    if connector.configuration_form_method is None:
        return None
    form = connector.get_configuration_form(configuration)
    missing = [f.name for f in form.fields if f.required and configuration.get(f.name) in (None, "")]
    invalid = [
        f.name
        for f in form.fields
        if f.dropdown_options is not None
        and configuration.get(f.name) not in (None, "")
        and configuration.get(f.name) not in {o.value for o in f.dropdown_options}
    ]
    tests = []
    for test in form.tests:
        try:
            response = connector.run_test(test.name, configuration)
            passed = bool(response.success) and not response.failure
            message = response.failure or ""
        except Exception as exc:
            passed, message = False, _message(exc)
        tests.append({"label": test.label, "passed": passed, "message": message})
    return {"missing": missing, "invalid": invalid, "tests": tests}


def _message(exc: BaseException) -> str:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return str(cause) or type(cause).__name__


def main() -> int:
    out_fd = int(sys.argv[sys.argv.index("--out") + 1])
    out = _Out(out_fd)
    # Whatever the connector prints lands on stderr; the protocol has its own descriptor.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    request = json.loads(sys.stdin.readline())
    project = request["project"]
    sys.path[:0] = [project, *request.get("paths", [])]
    os.chdir(project)
    try:
        from fivetran_connector_sdk_cli import runtime
        from fivetran_connector_sdk_common.logger import Logging

        Logging.LOG_LEVEL = Logging.Level.INFO
        _install_logging(out)
        connector = _load_connector(project)
        configuration = request.get("configuration") or {}
        tables = _tables(connector, configuration)
        out.send({"t": "tables", "tables": tables})
        if request["command"] == "test":
            checks = _form_checks(connector, configuration)
            if checks is not None:
                out.send({"t": "form", **checks})
        if request["command"] == "update":
            types = {t["name"]: t["columns"] for t in tables or []}
            runtime.install(Sink(out, types))
            try:
                connector.run_update(configuration, request.get("state") or {})
            finally:
                runtime.install(None)
        out.send({"t": "done"})
    except SystemExit:
        raise
    except BaseException as exc:
        traceback.print_exc()
        out.send({"t": "failed", "message": _message(exc)})
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
