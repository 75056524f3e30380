"""Reads template.yaml the way the local stack, the tests and the template check need it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


@dataclass(frozen=True)
class Tag:
    """An intrinsic function (!Ref, !GetAtt, !Sub, ...) kept as written."""

    name: str
    value: Any


class _Loader(yaml.SafeLoader):
    pass


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tag:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return Tag(suffix, value)


_Loader.add_multi_constructor("!", _construct_tag)


@cache
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_Loader)


def resources(kind: str | None = None) -> dict[str, dict[str, Any]]:
    all_resources: dict[str, dict[str, Any]] = load_template()["Resources"]
    return {k: v for k, v in all_resources.items() if kind is None or v["Type"] == kind}


@dataclass(frozen=True)
class ApiRoute:
    method: str  # upper case, or ANY
    path: str  # API Gateway form: /v1/connections/{connection_id}, /{proxy+}
    function: str  # logical id
    module_dir: str  # functions/<op>
    authorized: bool = True  # False for `Auth: {Authorizer: NONE}` (pages with their own token)

    def matcher(self) -> re.Pattern[str]:
        pattern = re.sub(r"\{[^/]+\+\}", ".+", self.path)
        pattern = re.sub(r"\{([^/]+)\}", r"(?P<\1>[^/]+)", pattern)
        return re.compile("^" + pattern + "/?$")

    @property
    def specificity(self) -> tuple[int, int]:
        """API Gateway prefers literal segments, then parameters, then greedy paths."""
        greedy = "+}" in self.path
        return (1 if greedy else 0, self.path.count("{"))


def api_routes() -> list[ApiRoute]:
    routes = []
    for name, resource in resources("AWS::Serverless::Function").items():
        props = resource["Properties"]
        for event in (props.get("Events") or {}).values():
            if event["Type"] != "Api":
                continue
            routes.append(
                ApiRoute(
                    method=event["Properties"]["Method"].upper(),
                    path=event["Properties"]["Path"],
                    function=name,
                    module_dir=props["CodeUri"].rstrip("/"),
                    authorized=(event["Properties"].get("Auth") or {}).get("Authorizer") != "NONE",
                )
            )
    return sorted(routes, key=lambda r: r.specificity)


def function_dir(logical_id: str) -> str:
    return str(resources()[logical_id]["Properties"]["CodeUri"]).rstrip("/")


def authorizer_function() -> str:
    api = next(iter(resources("AWS::Serverless::Api").values()))
    auth = api["Properties"]["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]
    arn = authorizer["FunctionArn"]
    return str(arn.value).split(".")[0] if isinstance(arn, Tag) else str(arn)


def authorizer_cache_seconds() -> int:
    """How long API Gateway keeps an authorizer's decision for one Authorization header."""
    api = next(iter(resources("AWS::Serverless::Api").values()))
    auth = api["Properties"]["Auth"]
    identity = auth["Authorizers"][auth["DefaultAuthorizer"]].get("Identity") or {}
    return int(identity.get("ReauthorizeEvery", 300))  # API Gateway's default
