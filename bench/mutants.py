"""1,000 mutated rule files through `rules check`, `sync --dry-run` and `simulate --weeks 2` on a small demo org.

Not a unit test (tests/journeys/test_mutants.py runs 60): this prints the counts issue 9 asks for. Mutants run in
worker processes, a batch each, so Python and DuckDB start once per batch; a worker that stops reporting for longer
than the per-command limit allows is killed, and the mutant it was on counts as timed out. RSS is each worker's
high-water mark (getrusage), so it bounds every mutant the worker ran.

    .venv/bin/python bench/mutants.py [--count 1000] [--seed 1] [--batch 50]
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LIMIT_S = 60.0


def worker(first: int, count: int, seed: int) -> None:
    """Run mutants first..first+count-1 of the seeded stream; one JSON line per mutant on stdout."""
    from tests.mutator import DemoOrg, mutants  # noqa: PLC0415 - only the worker needs the engine

    org = DemoOrg(Path(tempfile.mkdtemp(prefix="tl-mutants-")))
    for i, mutant in enumerate(mutants(first + count, seed)):
        if i < first:
            continue
        verdict = org.run(mutant, timeout=LIMIT_S)
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            json.dumps(
                {
                    "index": i,
                    "steps": mutant.steps,
                    "problems": verdict.problems,
                    "wrote": verdict.wrote,
                    "exits": {o.command: o.exit_code for o in verdict.outcomes},
                    "tracebacks": sum(o.traceback for o in verdict.outcomes),
                    "seconds": max(o.seconds for o in verdict.outcomes),
                    "rss_mib": rss_mib,
                }
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.seed)
        return

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    lost: list[int] = []
    nxt = 0
    while nxt < args.count:
        size = min(args.batch, args.count - nxt)
        proc = subprocess.Popen(
            [sys.executable, __file__, "--seed", str(args.seed), "--worker", str(nxt), str(size)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        got = 0
        for line in proc.stdout:
            rows.append(json.loads(line))
            got += 1
        proc.wait()
        if got < size:  # the worker died on mutant nxt + got: count it, and go on after it
            lost.append(nxt + got)
            got += 1
        nxt += got
        print(f"{nxt}/{args.count} mutants, {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)

    exits: collections.Counter[str] = collections.Counter()
    for r in rows:
        for command, code in r["exits"].items():
            exits[f"{command}: {code}"] += 1
    check_passed = [r for r in rows if r["exits"]["rules check"] == 0]
    summary = {
        "mutants": args.count,
        "seed": args.seed,
        "exit_codes": dict(sorted(exits.items())),
        "passed_check": len(check_passed),
        "exit_70": sum(code == 70 for r in rows for code in r["exits"].values()),
        "timed_out": sum(code == -1 for r in rows for code in r["exits"].values()),
        "tracebacks": sum(int(r["tracebacks"]) for r in rows),
        "check_pass_but_sync_fail": sum(r["exits"]["sync --dry-run"] != 0 for r in check_passed),
        "check_pass_but_simulate_fail": sum(r["exits"]["simulate --weeks 2"] != 0 for r in check_passed),
        "wrote_to_crm": sum(bool(r["wrote"]) for r in rows),
        "workers_lost": lost,
        "max_seconds_per_command": round(max(float(r["seconds"]) for r in rows), 2),
        "max_rss_mib": round(max(float(r["rss_mib"]) for r in rows)),
        "wall_seconds": round(time.perf_counter() - started),
        "problems": [f"mutant {r['index']} {r['steps']}: {p}" for r in rows for p in r["problems"]],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
