"""The template checks cfn-lint cannot do on a SAM template: every Ref/GetAtt/Sub names a real resource,
every function's CodeUri/Handler names a real module and function, runtimes are real, and the API
routes are exactly sluice.api.routes.ROUTES (+ their /v1/connectors aliases and the catch-all), alarms
watch metrics the code emits and every asynchronous target has somewhere to put what fails.

    python -m local.check_template      (part of `make lint`)
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from typing import Any

from local.template import ROOT, Tag, api_routes, load_template

PSEUDO = {
    "AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region",
    "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}  # fmt: skip
RUNTIMES = {"python3.11", "python3.12", "python3.13"}


def _tags(node: Any) -> Iterator[Tag]:
    if isinstance(node, Tag):
        yield node
        yield from _tags(node.value)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("Ref", "Fn::GetAtt", "Fn::Sub"):
                yield Tag({"Ref": "Ref", "Fn::GetAtt": "GetAtt", "Fn::Sub": "Sub"}[key], value)
            yield from _tags(value)
    elif isinstance(node, list):
        for item in node:
            yield from _tags(item)


def _names(tag: Tag) -> list[str]:
    if tag.name == "Ref":
        return [str(tag.value)]
    if tag.name == "GetAtt":
        target = tag.value[0] if isinstance(tag.value, list) else str(tag.value).split(".")[0]
        return [str(target)]
    if tag.name == "Sub":
        text = tag.value[0] if isinstance(tag.value, list) else tag.value
        local = set(tag.value[1]) if isinstance(tag.value, list) and len(tag.value) > 1 else set()
        return [
            n.split(".")[0]
            for n in re.findall(r"\$\{([^!][^}]*)\}", str(text))
            if n.split(".")[0] not in local
        ]
    return []


def reference_errors(template: dict[str, Any]) -> list[str]:
    known = set(template.get("Resources", {})) | set(template.get("Parameters", {})) | PSEUDO
    errors = []
    for tag in _tags(template):
        for name in _names(tag):
            # SAM generates these (ServerlessRestApi, <Function>Role, ...): a reference to one is fine
            # only when its base resource exists.
            base = re.sub(r"(Role|Alias|Version|Stage|Deployment)$", "", name)
            if name not in known and base not in known:
                errors.append(f"!{tag.name} names '{name}', which is not a resource or parameter")
    return errors


def _module_defines(path: Any, function: str) -> bool:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return True
        # `lambda_handler = api_handler(app)`: the API functions' one entry point
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == function for t in node.targets
        ):
            return True
    return False


def function_errors(template: dict[str, Any]) -> list[str]:
    errors = []
    defaults = template.get("Globals", {}).get("Function", {})
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            runtime = props.get("Runtime", defaults.get("Runtime"))
            if runtime not in RUNTIMES:
                errors.append(f"{name}: Runtime {runtime!r} is not one of {sorted(RUNTIMES)}")
            code_dir = ROOT / str(props.get("CodeUri", ""))
            module_name, _, function = str(props.get("Handler", "")).rpartition(".")
            module = code_dir / f"{module_name.replace('.', '/')}.py"
            if not code_dir.is_dir():
                errors.append(f"{name}: CodeUri {props.get('CodeUri')!r} is not a folder")
            elif not module.is_file():
                errors.append(
                    f"{name}: Handler {props.get('Handler')!r} names no module in {props.get('CodeUri')}"
                )
            elif not _module_defines(module, function):
                errors.append(f"{name}: {module.relative_to(ROOT)} defines no function {function!r}")
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            content = ROOT / str(props.get("ContentUri", ""))
            if not (content / "requirements.txt").is_file():
                errors.append(f"{name}: ContentUri {props.get('ContentUri')!r} has no requirements.txt")
    return errors


def expected_routes() -> set[tuple[str, str, str]]:
    sys.path.insert(0, str(ROOT / "shared"))
    from sluice.api.routes import ROUTES

    expected = set()
    for method, path, function in ROUTES:
        logical = "".join(part.capitalize() for part in function.split("_")) + "Function"
        expected.add((method, path, logical))
        if path.startswith(("/v1/connections", "/v1/groups/")) and "/connections" in path:
            expected.add((method, path.replace("/connections", "/connectors"), logical))
    expected.add(("ANY", "/{proxy+}", "RouteNotFoundFunction"))
    return expected


def route_errors() -> list[str]:
    declared = {(r.method, r.path, r.function) for r in api_routes()}
    expected = expected_routes()
    return [
        f"template routes {m} {p} to {f}, which sluice.api.routes does not list"
        for m, p, f in declared - expected
    ] + [
        f"sluice.api.routes lists {m} {p} -> {f}, which template.yaml does not route"
        for m, p, f in expected - declared
    ]


ASYNC_EVENTS = ("EventBridgeRule", "Schedule", "ScheduleV2")


def _dashboard_errors(name: str, body: Any, namespace: str, emitted: frozenset[str]) -> list[str]:
    """A dashboard body (JSON in a !Sub) must parse, and its widgets on `namespace` show emitted metrics."""
    import json

    text = str(
        body.value[0]
        if isinstance(body, Tag) and isinstance(body.value, list)
        else getattr(body, "value", body)
    )
    try:
        widgets = json.loads(re.sub(r"\$\{[^}]*\}", "x", text))["widgets"]
    except (ValueError, KeyError, TypeError):
        return [f"{name}'s DashboardBody is not JSON with widgets"]
    shown = [m[1] for w in widgets for m in w.get("properties", {}).get("metrics", []) if m[0] == namespace]
    return [
        f"{name} shows {namespace}/{metric}, which nothing emits" for metric in shown if metric not in emitted
    ]


def operations_errors(template: dict[str, Any]) -> list[str]:
    """Every alarm on Sluice's own namespace names a metric the code emits (sluice.metrics.EMITTED),
    and every asynchronous target keeps what fails: a rule or schedule event has a dead-letter queue,
    and its function an on-failure destination for invocations that keep failing."""
    from sluice.metrics import EMITTED, NAMESPACE

    errors = []
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        alarm = resource["Type"] == "AWS::CloudWatch::Alarm" and props.get("Namespace") == NAMESPACE
        if alarm and props.get("MetricName") not in EMITTED:
            errors.append(f"{name} watches {NAMESPACE}/{props.get('MetricName')}, which nothing emits")
        if resource["Type"] == "AWS::CloudWatch::Dashboard":
            errors += _dashboard_errors(name, props.get("DashboardBody"), NAMESPACE, EMITTED)
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        events = {k: e for k, e in (props.get("Events") or {}).items() if e["Type"] in ASYNC_EVENTS}
        for event_name, event in events.items():
            if not (event.get("Properties") or {}).get("DeadLetterConfig"):
                errors.append(f"{name}.{event_name} has no DeadLetterConfig")
        on_failure = ((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure")
        if events and not on_failure:
            errors.append(f"{name} is invoked asynchronously but has no OnFailure destination")
    return errors


def main() -> int:
    template = load_template()
    errors = (
        reference_errors(template) + function_errors(template) + route_errors() + operations_errors(template)
    )
    for error in errors:
        print(f"template.yaml: {error}", file=sys.stderr)
    if not errors:
        print("template.yaml: references, handlers, routes, alarms and dead-letter queues check out")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
