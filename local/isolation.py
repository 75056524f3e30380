"""What Lambda gives each concurrent invocation and one process of threads does not, rebuilt for the
local stack: the function's own copy of its module (an execution environment), its own API router
state and its own logger keys (function name, correlation id).

On Lambda one environment serves one invocation at a time, so Powertools keeps the current event as
a class attribute of its router and the logger's keys in one dict per process. The local stack serves
many invocations at once on threads: without this module they would share both, one tenant's slow
call would hold every other one, and log records would carry another thread's function name.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from local.template import ROOT, resources

_state = threading.local()
_installed = False
_install_lock = threading.Lock()


def _thread_attribute(name: str) -> property:
    def get(_owner: Any) -> Any:
        try:
            return getattr(_state, name)
        except AttributeError:
            raise AttributeError(name) from None

    def set_(_owner: Any, value: Any) -> None:
        setattr(_state, name, value)

    return property(get, set_)


def per_thread_router_state() -> None:
    """Powertools' resolvers write `BaseRouter.current_event` and `.lambda_context` on the class:
    make both per thread, for reads through the class and through any resolver."""
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    if isinstance(BaseRouter.__dict__.get("current_event"), property):
        return
    # Instance reads (`app.current_event`) find these properties in the class dict...
    for name in ("current_event", "lambda_context"):
        setattr(BaseRouter, name, _thread_attribute(name))

    # ...and class writes (`BaseRouter.current_event = ...`) reach the same per-thread slots through
    # the metaclass, whose data descriptors win over the class dict.
    class PerThreadRouterMeta(type(BaseRouter)):  # type: ignore[misc]
        current_event = _thread_attribute("current_event")
        lambda_context = _thread_attribute("lambda_context")

    BaseRouter.__class__ = PerThreadRouterMeta


def per_thread_logger_keys(logger: Any) -> None:
    """A Powertools Logger keeps its keys (function_name, correlation_id, ...) in its formatter's
    `log_format` dict: give each thread its own, starting from the keys set before any invocation."""
    formatter = logger.registered_formatter
    base_class = type(formatter)
    if getattr(base_class, "_per_thread", False):
        return
    initial = dict(formatter.__dict__.pop("log_format"))
    local = threading.local()

    def get(_self: Any) -> dict[str, Any]:
        if not hasattr(local, "log_format"):
            local.log_format = dict(initial)
        return local.log_format  # type: ignore[no-any-return]

    def set_(_self: Any, value: dict[str, Any]) -> None:
        local.log_format = value

    formatter.__class__ = type(
        base_class.__name__, (base_class,), {"log_format": property(get, set_), "_per_thread": True}
    )


def install() -> None:
    """Once per process, before the first invocation."""
    global _installed
    with _install_lock:
        if _installed:
            return
        per_thread_router_state()
        from sluice.observability import logger

        per_thread_logger_keys(logger)
        _installed = True


def _load_copy(code_dir: str, copy: int) -> Any:
    shared = str(ROOT / "shared")
    if shared not in sys.path:
        sys.path.insert(0, shared)
    name = f"{code_dir.strip('/').replace('/', '.')}.app__instance{copy}"
    path = ROOT / code_dir / "app.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, f"no module at {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class FunctionInstances:
    """Execution environments of one function: each a separate copy of its module, serving one
    invocation at a time; at most `limit` at once (the function's concurrency), the rest wait."""

    def __init__(self, logical_id: str, limit: int) -> None:
        props = resources()[logical_id]["Properties"]
        module_file, _, self._attribute = str(props["Handler"]).rpartition(".")
        assert module_file == "app", "handlers live in app.py"
        self._code_dir = str(props["CodeUri"]).rstrip("/")
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._created = 0

    @contextmanager
    def handler(self) -> Iterator[Callable[..., Any]]:
        with self._slots:
            with self._lock:
                module = self._idle.pop() if self._idle else None
                if module is None:
                    self._created += 1
                    copy = self._created
            if module is None:
                module = _load_copy(self._code_dir, copy)
            try:
                yield getattr(module, self._attribute)
            finally:
                with self._lock:
                    self._idle.append(module)


class Functions:
    """Every function's environments, created on first use; `limit` is the function's concurrency."""

    def __init__(self) -> None:
        install()
        self._pools: dict[str, FunctionInstances] = {}
        self._lock = threading.Lock()

    def instances(self, logical_id: str, limit: int) -> FunctionInstances:
        with self._lock:
            pool = self._pools.get(logical_id)
            if pool is None:
                pool = self._pools[logical_id] = FunctionInstances(logical_id, limit)
            return pool

    def invoke(self, logical_id: str, limit: int, event: dict[str, Any], context: Any) -> Any:
        with self.instances(logical_id, limit).handler() as handler:
            return handler(event, context)
