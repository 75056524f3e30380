"""`make bench`: measures the budgets of DESIGN.md and prints each figure, its budget and PASS/OVER.

    python -m bench.run [--only cold,warm,sync,e2e,iceberg,postgres,sdk,schema] [--rows 100000] [--runs 3]

Exit status 1 when any figure is over its budget. Everything listens on 127.0.0.1 and stops itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Figure

PARTS = ("cold", "warm", "sync", "e2e", "iceberg", "postgres", "sdk", "schema")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS))
    parser.add_argument("--imports", type=int, default=5, help="fresh processes per cold import")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per side, warm API")
    parser.add_argument("--rows", type=int, default=100_000, help="rows synced per throughput run")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs per side")
    parser.add_argument(
        "--e2e-rows", default="1000,100000,1000000", help="comma-separated sizes of the end-to-end syncs"
    )
    parser.add_argument("--e2e-runs", type=int, default=3, help="end-to-end rounds per side and size")
    parser.add_argument(
        "--e2e-s3-rows", type=int, default=100_000, help="end-to-end rows into the s3 destination"
    )
    parser.add_argument("--lake-rows", type=int, default=1_000_000, help="iceberg historical rows")
    parser.add_argument("--lake-merge", type=int, default=10_000, help="iceberg merge rows")
    parser.add_argument("--lake-runs", type=int, default=1, help="iceberg runs per side")
    parser.add_argument("--pg-rows", type=int, default=1_000_000, help="postgres historical rows")
    parser.add_argument("--pg-changed", type=int, default=10_000, help="postgres WAL incremental rows")
    parser.add_argument("--pg-runs", type=int, default=1, help="postgres historical runs per side")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    shared = str(ROOT / "shared")
    if shared not in sys.path:
        sys.path.insert(0, shared)
    # This process is the bench, not an AWS client of anything real: never reach an account.
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        del os.environ[var]

    started = time.monotonic()
    figures: list[Figure] = []
    print(f"Sluice bench ({sys.executable}, Python {sys.version.split()[0]})", flush=True)

    def out(line: str) -> None:
        print(line, flush=True)

    if "cold" in parts:
        from bench import cold_start

        out(
            "\n== 1. cold start: import of each function's app module / import boto3 "
            f"(median of {args.imports})"
        )
        figures += cold_start.run(args.imports, out=out)

    if {"warm", "sync", "sdk", "schema"} & set(parts):
        from bench import moto_env

        # One moto for these parts: Sluice's clients and key box are made once per process.
        with tempfile.TemporaryDirectory(prefix="sluice-bench-") as folder:
            env = moto_env.start(Path(folder))
            try:
                if "warm" in parts:
                    from bench import warm_api

                    out("\n== 2. warm API call on moto: GET /v1/connections/{id} handler / one raw GetItem")
                    figures += warm_api.run(env, calls=args.calls, out=out)
                if "sync" in parts:
                    from bench import throughput

                    out(
                        "\n== 3. sync throughput: SyncEngine rest_api -> duckdb / bare requests + DuckDB loop"
                    )
                    figures += throughput.run(env, rows=args.rows, runs=args.runs, out=out)
                if "sdk" in parts:
                    from bench import connector_sdk

                    out("\n== 7. connector_sdk sync throughput: SyncEngine -> duckdb / fivetran debug")
                    figures += connector_sdk.run(env, rows=args.rows, runs=args.runs, out=out)
                if "schema" in parts:
                    from bench import schema_config

                    out(
                        "\n== 8. schema config: 50-column sync with 10 columns disabled and 5 hashed / "
                        "everything enabled"
                    )
                    figures += schema_config.run(env, rows=args.rows, runs=args.runs, out=out)
            finally:
                env.stop()

    if "e2e" in parts:
        from bench import end_to_end

        sizes = [int(size) for size in args.e2e_rows.split(",") if size.strip()]
        out(
            "\n== 4. sync end to end: POST /resync -> succeeded_at over the local stack's HTTP API "
            f"/ bare requests + JSON lines + one DuckDB merge (medians of {args.e2e_runs}, interleaved)"
        )
        figures += end_to_end.run(sizes, args.e2e_runs, out=out, s3_rows=args.e2e_s3_rows)

    if "iceberg" in parts:
        from bench import iceberg

        out(
            f"\n== 5. iceberg lake: {args.lake_rows:,}-row historical sync and {args.lake_merge:,}-row merge "
            "/ bare pyiceberg doing the same commits"
        )
        figures += iceberg.run(args.lake_rows, args.lake_merge, args.lake_runs, out=out)

    if "postgres" in parts:
        from bench import postgres

        out(
            f"\n== 6. postgres -> postgres: {args.pg_rows:,}-row historical sync / bare psycopg COPY, COPY, "
            f"merge; {args.pg_changed:,} changed rows through the WAL"
        )
        figures += postgres.run(args.pg_rows, args.pg_changed, args.pg_runs, out=out)

    over = [f for f in figures if not f.passed]
    out(
        f"\n== summary ({time.monotonic() - started:.0f} s): "
        f"{len(figures) - len(over)} PASS, {len(over)} OVER"
    )
    for figure in over:
        out(figure.line())
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
