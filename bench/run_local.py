"""Benchmark: a full local sync of a large demo org (generation not timed), then a no-change rerun; twice, on
the org without and with the issue-8 shapes (EmailMessage, TaskRelation and EventRelation rows: about 3M and 2M
at a million contacts), and the ratio of the two.

    .venv/bin/python bench/run_local.py                      # 1,000,000 contacts, ~10,000,000 activities
    .venv/bin/python bench/run_local.py --contacts 100000    # a quicker look

Each sync runs as its own `trust-ladder sync` process, so its peak RSS is measured alone (getrusage of the
child). Prints wall seconds, contacts/s, activities/s and peak RSS for each run, and the with/without ratios.
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
import subprocess
import sys
import time
from pathlib import Path

from connector.cli import main as cli
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm

OUT = Path(__file__).resolve().parent / "out"
AS_OF = dt.date(2026, 11, 1)


def generate(folder: Path, contacts: int, per_contact: float, seed: int, *, shapes: bool) -> None:
    crm = LocalCrm.create(folder / "crm.duckdb", replace=True)
    try:
        t = time.perf_counter()
        stats = demo.generate(
            crm, contacts=contacts, seed=seed, as_of=AS_OF, activities_per_contact=per_contact, shapes=shapes
        )
        crm.set_meta("origin", "demo")
        counts = crm.counts()
    finally:
        crm.close()
    (folder / "state.duckdb").unlink(missing_ok=True)
    print(
        f"generated {stats.contacts:,} contacts, {stats.tasks + stats.events:,} activities, "
        f"{counts['EmailMessage']:,} EmailMessage, {counts['TaskRelation'] + counts['EventRelation']:,} "
        f"relations in {time.perf_counter() - t:.1f} s (not part of the timing)"
    )


def timed_sync(config: Path) -> tuple[dict[str, object], float, float]:
    """One `trust-ladder sync` in a fresh child that reports its own peak RSS (RUSAGE_SELF)."""
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--sync-child", str(config)], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"sync failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["summary"], wall, out["maxrss_kib"] / 1024 / 1024


def sync_child(config: str) -> None:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cli(
            ["--config", config, "--log-format", "json", "sync", "--as-of", AS_OF.isoformat(), "--json"],
            standalone_mode=False,
        )
    summary = json.loads(buf.getvalue())
    print(json.dumps({"summary": summary, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def run_variant(args: argparse.Namespace, *, shapes: bool) -> list[tuple[float, float]]:
    """Generate (or reuse) one org, then time a full sync and a no-change rerun: [(wall, peak GiB), ...]."""
    folder = OUT / f"org-{args.contacts}{'-shapes' if shapes else ''}"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "trust-ladder.toml"
    rules = Path(__file__).resolve().parent.parent / "rules" / "ladder.yaml"
    config.write_text(f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n[rules]\npath = "{rules}"\n')
    print(f"-- {'with' if shapes else 'without'} EmailMessage and relation rows")
    if not (args.reuse and (folder / "crm.duckdb").exists()):
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
                str(int(shapes)),
            ],
            check=True,
        )
    else:
        (folder / "state.duckdb").unlink(missing_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-c",
                (
                    "import duckdb,sys; c=duckdb.connect(sys.argv[1]); "
                    "c.execute('UPDATE Contact SET Trust_Stage__c=NULL, Trust_Stage_Since__c=NULL, "
                    "Trust_Flags__c=NULL, "
                    "Trust_Next_Step__c=NULL, Trust_Reason__c=NULL, Trust_Rules_Version__c=NULL')"
                ),
                str(folder / "crm.duckdb"),
            ],
            check=True,
        )
    out = []
    for label in ("full sync (every contact written)", "no-change rerun"):
        summary, wall, peak_gib = timed_sync(config)
        contacts = int(summary["contacts"])  # type: ignore[call-overload]
        activities = int(summary["activities"])  # type: ignore[call-overload]
        print(
            f"{label}: {wall:.1f} s wall, {contacts / wall:,.0f} contacts/s, {activities / wall:,.0f} "
            f"activities/s (classified), changed {summary['changed']:,}, peak RSS {peak_gib:.2f} GiB"
        )
        print(f"  rungs: {summary['per_rung']}  flags: {summary['flags']}")
        out.append((wall, peak_gib))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--activities-per-contact", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="reuse orgs already generated in bench/out")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d}, load average {os.getloadavg()[0]:.1f}"
    )
    plain = run_variant(args, shapes=False)
    shaped = run_variant(args, shapes=True)
    for i, label in enumerate(("full sync", "no-change rerun")):
        print(
            f"{label}: with/without = {shaped[i][0] / plain[i][0]:.2f}x wall (target <= 1.5x), "
            f"peak RSS with {shaped[i][1]:.2f} GiB (target <= 2 GiB)"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sync-child":
        sync_child(sys.argv[2])
    elif len(sys.argv) == 7 and sys.argv[1] == "--generate-only":
        generate(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), shapes=sys.argv[6] == "1")
    else:
        main()
