"""Loads function modules (functions/<op>/app.py) the way Lambda does: by CodeUri and Handler."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from types import ModuleType
from typing import Any

from local.template import ROOT, resources


@cache
def load_module(code_dir: str) -> ModuleType:
    shared = str(ROOT / "shared")
    if shared not in sys.path:
        sys.path.insert(0, shared)
    name = code_dir.strip("/").replace("/", ".") + ".app"
    path = ROOT / code_dir / "app.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, f"no module at {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def handler_for(logical_id: str) -> Any:
    props = resources()[logical_id]["Properties"]
    module_file, _, attribute = str(props["Handler"]).rpartition(".")
    assert module_file == "app", "handlers live in app.py"
    return getattr(load_module(str(props["CodeUri"]).rstrip("/")), attribute)
