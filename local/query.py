"""Query a DuckDB destination file, read-only, without the DuckDB command-line tool:

python -m local.query "SELECT count(*) FROM shop.items"
python -m local.query --db .sluice/default.duckdb "SELECT * FROM shop.items LIMIT 5"
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DATA_DIR = Path(os.environ.get("SLUICE_DATA_DIR") or ".sluice")  # as the stack picks it


def default_db() -> Path:
    """The local stack's default group's file, as the stack recorded it (`make run` from here)."""
    import json

    kept = DATA_DIR / "control-plane.json"
    if kept.exists():
        recorded = json.loads(kept.read_text()).get("meta", {}).get("duckdb_file")
        if recorded:
            return Path(recorded)
    return DATA_DIR / "default.duckdb"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.query", description=__doc__.splitlines()[0])
    parser.add_argument("sql", help="the query")
    parser.add_argument("--db", type=Path, help="the file (default: the local stack's default group's)")
    args = parser.parse_args(argv)
    args.db = args.db or default_db()
    if not args.db.exists():
        print(f"{args.db} does not exist yet: it appears with the first sync into it", file=sys.stderr)
        return 1
    import duckdb

    try:
        with duckdb.connect(str(args.db), read_only=True) as db:
            cursor = db.execute(args.sql)
            columns = [c[0] for c in cursor.description or []]
            rows = cursor.fetchall()
    except duckdb.IOException as exc:
        print(
            f"cannot open {args.db} now (a sync may be writing to it; retry when it ends): {exc}",
            file=sys.stderr,
        )
        return 1
    except duckdb.Error as exc:
        print(f"query failed: {exc}", file=sys.stderr)
        return 1
    _print_table(columns, rows)
    return 0


def _print_table(columns: list[str], rows: list[tuple[object, ...]]) -> None:
    cells = [columns] + [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


if __name__ == "__main__":
    raise SystemExit(main())
