"""Where a sync's CPU goes: one `trust-ladder sync` in this process, with the CPU seconds (user + system of the
process, DuckDB's threads included) and wall seconds of every engine statement, summed by the table it makes.

    .venv/bin/python bench/profile_sync.py bench/out/org-100000/trust-ladder.toml [--as-of 2026-11-01] [--top 20]
    .venv/bin/python bench/profile_sync.py bench/out/org-100000/trust-ladder.toml --command calibrate
    .venv/bin/python bench/profile_sync.py bench/out/org-100000/trust-ladder.toml --explain tl_t_q   # plan, timed

Run it on an org `bench/run_local.py` generated (its `trust-ladder.toml`); copy `generated.duckdb` over
`crm.duckdb` and delete `state.duckdb` first to profile a first sync. Statements are timed one by one, so the
figures add up to a little less than the process total printed first.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import re
import resource
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from connector import sql
from connector.cli import main as cli

_TARGET = re.compile(r'^(?:CREATE[^(]*?(?:TABLE|VIEW)\s+"?(\w+)"?|(\w+(?:\s+INTO)?\s+"?\w+"?))')


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--command", choices=["sync", "calibrate"], default="sync", help="the command to profile")
    parser.add_argument("--explain", metavar="TABLE", help="write the timed plan of the first statement making TABLE")
    args = parser.parse_args()

    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    run = sql.run

    def timed(
        con: duckdb.DuckDBPyConnection, stmt: sql.Statement, params: Mapping[str, Any] | None = None
    ) -> duckdb.DuckDBPyConnection:
        done = stmt if isinstance(stmt, sql.Rendered) else sql.rendered(stmt)
        match = _TARGET.match(done.text)
        key = (match.group(1) or match.group(2)) if match else "other"
        if key == args.explain and key not in totals:  # run once more under EXPLAIN ANALYZE, untimed
            bound = {k: v for k, v in (params or {}).items() if k in done.params}
            rows = con.execute("EXPLAIN ANALYZE " + done.text, bound).fetchall()
            Path(f"{key}.plan.txt").write_text("\n".join(str(r[-1]) for r in rows))
        cpu, wall = _cpu(), time.perf_counter()
        try:
            return run(con, done, params)
        finally:
            entry = totals[key]
            entry[0] += _cpu() - cpu
            entry[1] += time.perf_counter() - wall
            entry[2] += 1

    sql.run = timed
    cpu, wall = _cpu(), time.perf_counter()
    try:
        as_of = args.as_of.isoformat()
        cli(["--config", args.config, "--log-format", "json", args.command, "--as-of", as_of, "--json"])
    except SystemExit as stop:
        if stop.code:
            raise
    finally:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
        out = sys.stderr
        print(
            f"{args.command}: {_cpu() - cpu:.1f} CPU-s, {time.perf_counter() - wall:.1f} s wall, "
            f"peak RSS {peak:.2f} GiB",
            file=out,
        )
        ranked = sorted(totals.items(), key=lambda kv: -kv[1][0])
        for name, (c, w, n) in ranked[: args.top]:
            print(f"{c:8.2f} CPU-s {w:8.2f} s wall  x{int(n):<3d} {name}", file=out)


if __name__ == "__main__":
    main()
