"""Benchmark: the same org on both engines, in one invocation, over the same Parquet files.

    .venv/bin/python bench/run_spark.py                        # 1,000,000 contacts, ~10,000,000 activities
    .venv/bin/python bench/run_spark.py --contacts 100000      # a quicker look
    .venv/bin/python bench/run_spark.py --reuse --master 'local[2]' --driver-memory 6g

The org is the one bench/run_local.py generates (bench/out/org-N, reused with --reuse). `crm_contact` and
`crm_activity` are exported to Parquet (not timed) with the trust fields emptied, so both engines plan a first
sync that changes every contact. Then, each in a fresh child process:

- DuckDB: the tables loaded from the Parquet, then `engine.compute` and `plan.build`, with the default `[engine]`
  memory limit (as a sync runs it); peak RSS of the child.
- Spark on `--master` (default local[2]): session start, then `SparkEngine.compute` (every pass, the plan
  included) over temp views on the Parquet; peak RSS of the Python driver and of the JVM (its VmHWM).

Each child writes the six fields of every contact out (not timed); the parent compares them: counts per
rung and flag, rows that differ, and an order-free digest of all rows. Last, how many contacts a daily and a weekly
sync would write after the first (DuckDB), for the Salesforce side of bench/README.md's cluster plan.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from connector.engine.spark import SparkEngine
from connector.ruleset.compiler import RuleSet

OUT = Path(__file__).resolve().parent / "out"
AS_OF = dt.date(2026, 11, 1)  # run_local.py's date, so the same org means the same placements
RULES = Path(__file__).resolve().parent.parent / "rules" / "ladder.yaml"
FIELDS = ["cid", "new_stage", "new_since", "new_flags", "new_next", "new_reason"]
CURRENT = ["cur_stage", "cur_since", "cur_flags", "cur_next", "cur_reason", "cur_version"]


def export(folder: Path, parquet: Path) -> dict[str, int]:
    """`crm_contact` and `crm_activity` as Parquet, trust fields emptied; returns rows and bytes of each."""
    from connector.config import ActivitiesSection, FieldsSection  # noqa: PLC0415 - after the child has forked
    from connector.crm.local.store import LocalCrm  # noqa: PLC0415

    parquet.mkdir(parents=True, exist_ok=True)
    crm = LocalCrm.open(folder / "crm.duckdb")
    try:
        crm.prepare(FieldsSection(), None, ActivitiesSection())
        emptied = ", ".join(f"CAST(NULL AS {'DATE' if c == 'cur_since' else 'VARCHAR'}) AS {c}" for c in CURRENT)
        queries = {
            "crm_contact": f"SELECT * REPLACE ({emptied}) FROM crm_contact",
            "crm_activity": "SELECT * FROM crm_activity",
        }
        out: dict[str, int] = {}
        for name, query in queries.items():
            path = parquet / f"{name}.parquet"
            crm.con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet)")
            row = crm.con.execute(f"SELECT count(*) FROM '{path}'").fetchone()
            out[f"{name}_rows"] = int(row[0]) if row else 0
            out[f"{name}_bytes"] = path.stat().st_size
    finally:
        crm.close()
    return out


def duckdb_child(parquet: Path, result: Path) -> dict[str, Any]:
    from connector.config import EngineSection  # noqa: PLC0415
    from connector.engine import compute, plan, session  # noqa: PLC0415
    from connector.ruleset.compiler import load  # noqa: PLC0415

    con = duckdb.connect()
    engine = EngineSection(temp_directory=parquet / "duckdb-tmp")
    session.tune(con, engine, lambda p: p)
    result.unlink(missing_ok=True)
    con.execute(f"ATTACH '{result}' AS placed")  # before compute locks the connection's file access
    t = time.perf_counter()
    for name in ("crm_contact", "crm_activity"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{parquet / name}.parquet')")
    loaded = time.perf_counter() - t
    rules = load(RULES)
    t, cpu = time.perf_counter(), _cpu_self()
    classified = compute(con, rules, AS_OF)
    changed = plan.build(con)
    computed, cpu = time.perf_counter() - t, _cpu_self() - cpu
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    con.execute(f"CREATE TABLE placed.tl_place AS SELECT {', '.join(FIELDS)} FROM tl_place")
    con.close()
    return {
        "load_s": loaded,
        "compute_s": computed,
        "cpu_s": cpu,
        "classified": classified,
        "changed": changed,
        "rss_kib": maxrss,
        "memory_limit": engine.memory_limit,
    }


def churn_child(parquet: Path) -> dict[str, Any]:
    """How many contacts a daily and a weekly sync write after the first: each rung and field carried from
    a sync one (seven) days before AS_OF, which saw that day's data (`day <= as_of`), to the sync on AS_OF. DuckDB
    only; it places contacts as Spark does."""
    from connector.commands.placement_figures import on  # noqa: PLC0415
    from connector.config import EngineSection  # noqa: PLC0415
    from connector.engine import compute, plan, session  # noqa: PLC0415
    from connector.ruleset.compiler import load  # noqa: PLC0415

    con = duckdb.connect()
    session.tune(con, EngineSection(temp_directory=parquet / "duckdb-tmp"), lambda p: p)
    for name in ("crm_contact", "crm_activity"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{parquet / name}.parquet')")
    con.execute("CREATE TABLE first_contact AS SELECT * FROM crm_contact")
    rules = load(RULES)
    out: dict[str, Any] = {}
    for days in (1, 7):
        con.execute("CREATE OR REPLACE TABLE crm_contact AS SELECT * FROM first_contact")
        compute(con, rules, AS_OF - dt.timedelta(days=days))
        con.execute(
            "CREATE OR REPLACE TABLE crm_contact AS SELECT c.* REPLACE (p.new_stage AS cur_stage, "
            "p.new_since AS cur_since, p.new_flags AS cur_flags, p.new_next AS cur_next, p.new_reason AS cur_reason, "
            '? AS cur_version) FROM first_contact c LEFT JOIN tl_place p ON p.cid = c."Id"',
            [rules.version],
        )
        compute(con, rules, AS_OF)
        out[f"after_{days}d"] = {"changed": plan.build(con), "fields": plan.field_counts(on(con))}
    return out


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a live process has used (Linux): a measure of work that a busy machine's
    other processes do not inflate, unlike wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _vm_hwm_kib(pid: int) -> int | None:
    """The peak resident set of a live process (Linux), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _stage_bytes(spark: Any) -> tuple[int, int]:
    """Shuffle bytes written and input bytes read (files and materialised relations) by every stage so far, from
    Spark's status store (Spark 4; (0, 0) where its signature differs)."""
    store = spark.sparkContext._jsc.sc().statusStore()  # noqa: SLF001 - the status store the UI would show
    try:
        quantiles = getattr(store, "stageList$default$4")()
        stages = store.stageList(None, False, False, quantiles, None).iterator()  # noqa: FBT003 - a JVM method
    except Exception:  # noqa: BLE001 - another Spark version: the figures are left out, the run goes on
        return 0, 0
    written = read = 0
    while stages.hasNext():
        stage = stages.next()
        written += int(stage.shuffleWriteBytes())
        read += int(stage.inputBytes())
    return written, read


class _Measured(SparkEngine):
    """The engine, noting each statement's wall time, shuffle bytes written and input bytes read."""

    def __init__(self, spark: Any, rules: RuleSet) -> None:
        super().__init__(spark, rules)
        self.passes: list[tuple[str, float, int, int]] = []

    def run(self, tree: exp.Expr, params: Mapping[str, object] | None = None) -> Any:
        before, t = _stage_bytes(self.spark), time.perf_counter()
        frame = super().run(tree, params)
        after = _stage_bytes(self.spark)
        name = tree.this.name if isinstance(tree, exp.Create) else "query"
        self.passes.append((name, time.perf_counter() - t, after[0] - before[0], after[1] - before[1]))
        return frame


def spark_child(parquet: Path, result: Path, master: str, conf: dict[str, str]) -> dict[str, Any]:
    from connector.config import EngineSection  # noqa: PLC0415
    from connector.engine import spark as spark_engine  # noqa: PLC0415
    from connector.ruleset.compiler import load  # noqa: PLC0415

    engine = EngineSection(kind="spark", master=master, app_name="trust-ladder-bench", spark_conf=conf)
    t = time.perf_counter()
    spark = spark_engine.session(engine)
    started = time.perf_counter() - t
    jvm_pid = int(spark.sparkContext._gateway.proc.pid)  # type: ignore[union-attr]  # noqa: SLF001 - the JVM
    rules = load(RULES)
    t, cpu = time.perf_counter(), _cpu_of(jvm_pid) + _cpu_self()
    for name in ("crm_contact", "crm_activity"):
        spark.read.parquet(str(parquet / f"{name}.parquet")).createOrReplaceTempView(name)
    runner = _Measured(spark, rules)
    runner.compute(AS_OF)
    changed = spark.table("tl_plan").count()
    computed, cpu = time.perf_counter() - t, _cpu_of(jvm_pid) + _cpu_self() - cpu
    classified = spark.table("tl_act").count()
    jvm_kib = _vm_hwm_kib(jvm_pid)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    spark.table("tl_place").select(*FIELDS).write.mode("overwrite").parquet(str(result))
    settings = spark_engine.settings(engine)
    spark.stop()
    return {
        "start_s": started,
        "compute_s": computed,
        "cpu_s": cpu,
        "classified": classified,
        "changed": changed,
        "rss_kib": maxrss,
        "jvm_kib": jvm_kib,
        "settings": {k: v for k, v in settings.items() if k != "spark.ui.enabled"},
        "passes": runner.passes,
    }


def child(kind: str, *args: str) -> dict[str, Any]:
    """Run one engine in a fresh process; returns what it reports (its last stdout line, JSON)."""
    proc = subprocess.run(
        [sys.executable, __file__, f"--{kind}-child", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"{kind} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = out.pop("_wall")
    return out


def compare(duck: Path, spark: Path) -> dict[str, Any]:
    """Counts per rung and flag on each side, rows that differ, and an order-free digest of every row."""
    con = duckdb.connect()
    cols = ", ".join(FIELDS)
    con.execute(f"ATTACH '{duck}' AS placed (READ_ONLY)")
    con.execute(f"CREATE VIEW d AS SELECT {cols} FROM placed.tl_place")
    con.execute(f"CREATE VIEW s AS SELECT {cols} FROM read_parquet('{spark}/*.parquet')")
    out: dict[str, Any] = {}
    for side in ("d", "s"):
        rungs = con.execute(f"SELECT new_stage, count(*) FROM {side} GROUP BY ALL ORDER BY 2 DESC").fetchall()
        flags = con.execute(
            f"SELECT f, count(*) FROM (SELECT unnest(string_split(new_flags, ';')) AS f FROM {side}) "
            "GROUP BY ALL ORDER BY 2 DESC"
        ).fetchall()
        digest = con.execute(f"SELECT count(*), bit_xor(hash({cols})) FROM {side}").fetchone()
        out[side] = {"rungs": dict(rungs), "flags": dict(flags), "rows": digest[0] if digest else 0}
        out[side]["digest"] = f"{digest[1]:016x}" if digest and digest[1] is not None else None
    differ = con.execute("SELECT count(*) FROM (SELECT * FROM d EXCEPT ALL SELECT * FROM s)").fetchone()
    other = con.execute("SELECT count(*) FROM (SELECT * FROM s EXCEPT ALL SELECT * FROM d)").fetchone()
    out["differing_rows"] = (differ[0] if differ else -1) + (other[0] if other else -1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--activities-per-contact", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="reuse the org (and its Parquet) in bench/out")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument(
        "--driver-memory",
        default=None,
        help="spark.driver.memory, e.g. 6g (default: the engine's, a quarter of this machine's memory)",
    )
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="another Spark setting (repeatable)"
    )
    args = parser.parse_args()
    conf = dict(item.split("=", 1) for item in args.conf)
    if args.driver_memory:
        conf["spark.driver.memory"] = args.driver_memory
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d}, load average {os.getloadavg()[0]:.1f}"
    )
    folder = OUT / f"org-{args.contacts}"
    parquet = folder / "parquet"
    if not (args.reuse and (folder / "crm.duckdb").exists()):
        folder.mkdir(parents=True, exist_ok=True)
        generator = Path(__file__).resolve().parent / "run_local.py"
        subprocess.run(
            [
                sys.executable,
                str(generator),
                "--generate-only",
                str(folder),
                str(args.contacts),
                str(args.activities_per_contact),
                str(args.seed),
                "0",
            ],
            check=True,
        )
    if not (args.reuse and (parquet / "crm_activity.parquet").exists()):
        t = time.perf_counter()
        sizes = export(folder, parquet)
        print(f"exported to Parquet in {time.perf_counter() - t:.1f} s (not timed)")
    else:
        sizes = {f"{n}_bytes": (parquet / f"{n}.parquet").stat().st_size for n in ("crm_contact", "crm_activity")}
        for n in ("crm_contact", "crm_activity"):
            row = duckdb.connect().execute(f"SELECT count(*) FROM '{parquet / n}.parquet'").fetchone()
            sizes[f"{n}_rows"] = int(row[0]) if row else 0
    for n in ("crm_contact", "crm_activity"):
        rows, size = sizes[f"{n}_rows"], sizes[f"{n}_bytes"]
        print(f"  {n}: {rows:,} rows, {size / 1024**2:,.1f} MiB, {size / max(rows, 1):.0f} bytes/row")
    duck_out, spark_out = parquet / "placed-duckdb.duckdb", parquet / "placed-spark"
    duck = child("duckdb", str(parquet), str(duck_out))
    spark = child("spark", str(parquet), str(spark_out), args.master, json.dumps(conf))
    report(args, sizes, duck, spark, compare(duck_out, spark_out))
    churn = child("churn", str(parquet))
    for key, label in (("after_1d", "a daily sync"), ("after_7d", "a weekly sync")):
        changed, fields = churn[key]["changed"], churn[key]["fields"]
        print(
            f"after the first sync, {label} writes {changed:,} contacts ({changed / contacts_of(sizes):.2%}); {fields}"
        )


def report(
    args: argparse.Namespace, sizes: dict[str, int], duck: dict[str, Any], spark: dict[str, Any], same: dict[str, Any]
) -> None:
    contacts = sizes["crm_contact_rows"]
    activities = sizes["crm_activity_rows"]
    gib = 1024**2
    print(f"Spark settings: {spark['settings']}")
    print()
    print("| engine | start | load | compute + plan | CPU | activities/s | activities per CPU-s | changed | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| DuckDB (memory_limit {duck['memory_limit']}) | | {duck['load_s']:.1f} s | {duck['compute_s']:.1f} s | "
        f"{duck['cpu_s']:.1f} s | {activities / duck['compute_s']:,.0f} | {activities / duck['cpu_s']:,.0f} | "
        f"{duck['changed']:,} | {duck['rss_kib'] / gib:.2f} GiB |"
    )
    print(
        f"| Spark {args.master} | {spark['start_s']:.1f} s | (in compute) | {spark['compute_s']:.1f} s | "
        f"{spark['cpu_s']:.1f} s | {activities / spark['compute_s']:,.0f} | {activities / spark['cpu_s']:,.0f} | "
        f"{spark['changed']:,} | driver {spark['rss_kib'] / gib:.2f} GiB + JVM {spark['jvm_kib'] / gib:.2f} GiB |"
    )
    print()
    print(f"contacts: {contacts:,}, activities: {activities:,}; load average now {os.getloadavg()[0]:.1f}")
    print()
    print("| Spark statement | wall | shuffle written | input read |")
    print("|---|---|---|---|")
    for name, wall, written, read in spark["passes"]:
        print(f"| {name} | {wall:.1f} s | {written / 1024**2:,.1f} MiB | {read / 1024**2:,.1f} MiB |")
    print()
    print(f"classified activities: DuckDB {duck['classified']:,}, Spark {spark['classified']:,}")
    print(f"rungs  DuckDB: {same['d']['rungs']}")
    print(f"rungs  Spark:  {same['s']['rungs']}")
    print(f"flags  DuckDB: {same['d']['flags']}")
    print(f"flags  Spark:  {same['s']['flags']}")
    print(
        f"digest of the six fields over {same['d']['rows']:,} / {same['s']['rows']:,} contacts: "
        f"DuckDB {same['d']['digest']}, Spark {same['s']['digest']}"
    )
    verdict = "identical" if same["differing_rows"] == 0 and same["d"] == same["s"] else "DIFFERENT"
    print(f"rows that differ: {same['differing_rows']:,}: placements {verdict}")


def contacts_of(sizes: dict[str, int]) -> int:
    return max(sizes["crm_contact_rows"], 1)


def _run_child(kind: str, argv: list[str]) -> None:
    t = time.perf_counter()
    if kind == "duckdb":
        out = duckdb_child(Path(argv[0]), Path(argv[1]))
    elif kind == "churn":
        out = churn_child(Path(argv[0]))
    else:
        out = spark_child(Path(argv[0]), Path(argv[1]), argv[2], json.loads(argv[3]))
    out["_wall"] = time.perf_counter() - t
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] in ("--duckdb-child", "--spark-child", "--churn-child"):
        _run_child(sys.argv[1][2:].removesuffix("-child"), sys.argv[2:])
    else:
        main()
