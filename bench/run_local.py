"""Benchmark: a local org of a million contacts (generation not timed) through four syncs, each in a process of
its own: a first sync (every contact placed from its whole history, every one written), a same-day rerun (nothing
new), a next-day sync after 1% of the contacts got a new activity, and a sync after a rule edit (every contact
computed again, with the trust texts of the syncs before on each record).

    .venv/bin/python bench/run_local.py                      # 1,000,000 contacts, ~10,000,000 activities
    .venv/bin/python bench/run_local.py --contacts 100000    # a quicker look
    .venv/bin/python bench/run_local.py --shapes             # with EmailMessage and relation rows (issue 8)

Prints the CPU seconds of a hand-written single query that places every contact (bench/floor.py: the floor no
sync can go below), then, for each sync, CPU seconds (user + system of the sync's process, DuckDB's threads
included: the figure a busy machine does not inflate), wall seconds and peak RSS, and how many contacts it wrote.
Then `calibrate` over the same org (its demo deals included, generated with it), with its CPU seconds beside the
first sync's (issue 20: within 2x a sync's CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import duckdb

from connector.cli import main as cli
from connector.commands import demo_outcomes
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm
from connector.ruleset import compiler

OUT = Path(__file__).resolve().parent / "out"
RULES = Path(__file__).resolve().parent.parent / "rules" / "ladder.yaml"
AS_OF = dt.date(2026, 11, 1)


def generate(folder: Path, contacts: int, per_contact: float, seed: int, *, shapes: bool) -> None:
    crm = LocalCrm.create(folder / "crm.duckdb", replace=True)
    try:
        t = time.perf_counter()
        stats = demo.generate(
            crm, contacts=contacts, seed=seed, as_of=AS_OF, activities_per_contact=per_contact, shapes=shapes
        )
        deals = demo_outcomes.add(crm, compiler.load(RULES), seed=seed, as_of=AS_OF)
        crm.set_meta("origin", "demo")
        counts = crm.counts()
    finally:
        crm.close()
    (folder / "state.duckdb").unlink(missing_ok=True)
    print(
        f"generated {stats.contacts:,} contacts, {stats.tasks + stats.events:,} activities, "
        f"{counts['EmailMessage']:,} EmailMessage, {counts['TaskRelation'] + counts['EventRelation']:,} "
        f"relations, {deals:,} deals in {time.perf_counter() - t:.1f} s (not part of the timing)"
    )


def timed_sync(config: Path, as_of: dt.date, command: str = "sync") -> tuple[dict[str, object], float, float, float]:
    """One `trust-ladder sync` (or `calibrate`) in a fresh child that reports its own CPU time and peak RSS
    (RUSAGE_SELF)."""
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, f"--{command}-child", str(config), as_of.isoformat()],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{command} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["summary"], wall, out["cpu_s"], out["maxrss_kib"] / 1024 / 1024


def sync_child(config: str, as_of: str, command: str = "sync") -> None:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cli(["--config", config, "--log-format", "json", command, "--as-of", as_of, "--json"], standalone_mode=False)
    summary = json.loads(buf.getvalue())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"summary": summary, "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss}))


def add_new_activities(database: Path, share: float, day: dt.date, seed: int) -> int:
    """A reply logged on `day` for `share` of the contacts, chosen at random: what a day brings a busy org."""
    con = duckdb.connect(str(database))
    try:
        con.execute(
            'INSERT INTO "Task" ("Id", "WhoId", "Subject", "ActivityDate", "Status", "TaskSubtype", "IsClosed", '
            '"IsDeleted", "CreatedDate", "SystemModstamp") '
            "SELECT '00Tbench' || lpad(CAST(row_number() OVER () AS VARCHAR), 11, '0'), \"Id\", 'Re: Following up', "
            "?, 'Completed', 'Email', true, false, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP) "
            'FROM "Contact" WHERE hash("Id", ?) % 10000 < ?',
            [day, day, day, seed, round(share * 10_000)],
        )
        row = con.execute('SELECT count(*) FROM "Task" WHERE "Id" LIKE \'00Tbench%\'').fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def run(args: argparse.Namespace) -> None:
    folder = OUT / f"org-{args.contacts}{'-shapes' if args.shapes else ''}"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "trust-ladder.toml"
    config.write_text(f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n[rules]\npath = "{RULES}"\n')
    pristine = folder / "generated.duckdb"
    if not (args.reuse and pristine.exists()):
        # In a child process, so that the generator's memory is not counted against the syncs.
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--generate-only",
                str(folder),
                str(args.contacts),
                str(args.activities_per_contact),
                str(args.seed),
                str(int(args.shapes)),
            ],
            check=True,
        )
        shutil.copy(folder / "crm.duckdb", pristine)
    shutil.copy(pristine, folder / "crm.duckdb")
    (folder / "state.duckdb").unlink(missing_ok=True)
    # The floor first, in a process of its own, on the same data: the same machine and load as the syncs.
    floor = Path(__file__).resolve().parent / "floor.py"
    subprocess.run([sys.executable, str(floor), str(pristine), "--as-of", AS_OF.isoformat()], check=True)
    steps: list[tuple[str, dt.date]] = [("first sync", AS_OF), ("same-day rerun", AS_OF)]
    first_cpu = 0.0
    for label, day in [*steps, ("next day, 1% new activities", AS_OF + dt.timedelta(days=1))]:
        if label.startswith("next day"):
            added = add_new_activities(folder / "crm.duckdb", 0.01, AS_OF + dt.timedelta(days=1), args.seed)
            print(f"  (added {added:,} replies dated {AS_OF + dt.timedelta(days=1)})")
        summary, wall, cpu, peak_gib = timed_sync(config, day)
        print(
            f"{label}: {cpu:.1f} CPU-s, {wall:.1f} s wall, peak RSS {peak_gib:.2f} GiB; "
            f"{summary['contacts']:,} contacts, {summary['activities']:,} activities classified, "
            f"{summary['changed']:,} written"
        )
        print(f"  rungs: {summary['per_rung']}  flags: {summary['flags']}")
        first_cpu = first_cpu or cpu
    # An admin's rule edit recomputes every contact, now with the trust texts of the syncs before on each record
    # (a first sync starts from empty fields). One threshold moved: the rules version changes, the cache is unused.
    edited = folder / "ladder-edited.yaml"
    text = RULES.read_text()
    if "older_than_days: 7" not in text:
        sys.exit(f"{RULES}: the rule edit this benchmark makes (older_than_days: 7 -> 8) no longer applies")
    edited.write_text(text.replace("older_than_days: 7", "older_than_days: 8", 1))
    edit_config = folder / "trust-ladder-edited.toml"
    edit_config.write_text(config.read_text().replace(f'path = "{RULES}"', f'path = "{edited}"'))
    next_day = AS_OF + dt.timedelta(days=1)
    summary, wall, cpu, peak_gib = timed_sync(edit_config, next_day)
    print(
        f"rule edit, next day: {cpu:.1f} CPU-s, {wall:.1f} s wall, peak RSS {peak_gib:.2f} GiB; "
        f"{summary['contacts']:,} contacts, {summary['changed']:,} written"
    )
    if args.no_calibrate:
        return
    result, wall, cpu, peak_gib = timed_sync(config, AS_OF, "calibrate")
    outcomes = cast("list[dict[str, object]]", result["outcomes"])
    months = len(cast("list[str]", result["days"]))
    print(
        f"calibrate: {cpu:.1f} CPU-s, {wall:.1f} s wall, peak RSS {peak_gib:.2f} GiB; {months} months "
        f"x {len(outcomes)} outcomes; {cpu / first_cpu:.2f}x the first sync's CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--activities-per-contact", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="reuse orgs already generated in bench/out")
    parser.add_argument("--shapes", action="store_true", help="with EmailMessage and relation rows (issue 8)")
    parser.add_argument("--no-calibrate", action="store_true", help="the syncs only, without `calibrate`")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d}, load average {os.getloadavg()[0]:.1f}"
    )
    run(args)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--sync-child":
        sync_child(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "--calibrate-child":
        sync_child(sys.argv[2], sys.argv[3], "calibrate")
    elif len(sys.argv) == 7 and sys.argv[1] == "--generate-only":
        generate(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), shapes=sys.argv[6] == "1")
    else:
        main()
