"""Cold start: importing each function's `app` module in a fresh process, against `import boto3` alone.

Each import runs in its own interpreter with the function laid out as Lambda lays it out: the layer
(`shared/`) and the function's own folder on the path, the module named `app`, the template's
environment. Only the import is timed (perf_counter around it), not interpreter start-up. One
untimed run first writes the bytecode caches, so both sides are measured with warm caches.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.common import ROOT, Figure, median, ms

BUDGET = 2.0
_TIMED = (
    "import time, sys\nt = time.perf_counter()\nimport {module}\n"
    "sys.stdout.write(repr(time.perf_counter() - t))"
)


def lambda_env(function: str, path: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "PYTHONPATH": path,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "TABLE_NAME": "sluice-Table",
            "EVENT_BUS_NAME": "sluice-bus",
            "KMS_KEY_ID": "alias/sluice",
            "POWERTOOLS_SERVICE_NAME": "sluice",
            "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
    )
    return env


def _import_once(module: str, env: dict[str, str], cwd: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", _TIMED.format(module=module)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"import {module} failed:\n{result.stderr[-2000:]}")
    return float(result.stdout)


def time_import(module: str, env: dict[str, str], runs: int, cwd: str) -> list[float]:
    _import_once(module, env, cwd)  # untimed: writes bytecode caches
    return [_import_once(module, env, cwd) for _ in range(runs)]


def functions() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "functions").glob("*/app.py"))


def import_offenders(module: str, env: dict[str, str], cwd: str, top: int = 8) -> list[str]:
    """`-X importtime` for one import: the heaviest packages (sum of self time) and direct imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    by_package: dict[str, int] = defaultdict(int)
    direct: list[tuple[int, str]] = []
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not match:
            continue
        self_us, cumulative_us, indent, name = int(match[1]), int(match[2]), len(match[3]), match[4]
        by_package[name.split(".")[0]] += self_us
        if indent == 3:  # imported by `app` itself (app is at depth 1)
            direct.append((cumulative_us, name))
    lines = [
        "by package (self time): "
        + ", ".join(
            f"{name} {us / 1000:.0f} ms"
            for name, us in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]
        )
    ]
    lines.append(
        "imported by app (cumulative): "
        + ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in sorted(direct, reverse=True)[:top])
    )
    return lines


def run(runs: int = 5, out=print) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as cwd:  # nothing importable from the working folder
        shared = str(ROOT / "shared")
        boto3_env = lambda_env("boto3", shared)
        boto3_times = time_import("boto3", boto3_env, runs, cwd)
        boto3_median = median(boto3_times)
        out(f"      import boto3 alone: median {ms(boto3_median)} of {runs} fresh processes")
        over: list[tuple[str, dict[str, str]]] = []
        for folder in functions():
            env = lambda_env(folder.name, f"{shared}:{folder}")
            value = median(time_import("app", env, runs, cwd))
            figure = Figure(
                f"cold import {folder.name}",
                value / boto3_median,
                BUDGET,
                detail=f"{ms(value)} vs boto3 {ms(boto3_median)}",
            )
            out(figure.line())
            figures.append(figure)
            if not figure.passed:
                over.append((folder.name, env))
        for name, env in over:
            out(f"      {name} is over budget; -X importtime:")
            for line in import_offenders("app", env, cwd):
                out(f"        {line}")
    return figures
